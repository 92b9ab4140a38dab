// An outside client of sekisho, written with the npm packages dpop and jose
// only (no sekisho code): it reads the RFC 8414 metadata, spends the
// bootstrap token on an Ed25519 admin key, creates a service principal whose
// P-256 key enrols, is approved, gets a token, writes and reads a record,
// and is refused with the right WWW-Authenticate when it should be. The
// server requires server nonces (serve --dpop-nonce), which the client
// learns from DPoP-Nonce as RFC 9449 says.
//
//   SEKISHO_URL=http://127.0.0.1:8700 SEKISHO_BOOTSTRAP_TOKEN_FILE=... node --test
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { webcrypto } from 'node:crypto'

// Node 18 (Debian 12's nodejs) has WebCrypto but not yet as a global; the
// packages use the global, so it is set before they load.
if (!globalThis.crypto) globalThis.crypto = webcrypto
if (!globalThis.CryptoKey) globalThis.CryptoKey = webcrypto.CryptoKey
const DPoP = await import('dpop')
const jose = await import('jose')

const base = process.env.SEKISHO_URL
const bootstrapToken = readFileSync(process.env.SEKISHO_BOOTSTRAP_TOKEN_FILE, 'utf8').trim()
const algs = 'algs="EdDSA Ed25519 ES256"'

let nonce // the latest DPoP-Nonce

// send makes one request with a fresh DPoP proof of keypair (when given),
// retrying once when the server asks for a new nonce.
async function send(keypair, method, path, { token, scheme = 'DPoP', body, form, headers = {}, proofURL } = {}) {
  const url = base + path.split('?')[0]
  for (let attempt = 0; ; attempt++) {
    const h = { ...headers }
    if (keypair) h.DPoP = await DPoP.generateProof(keypair, proofURL ?? url, method, nonce, token)
    if (token) h.Authorization = `${scheme} ${token}`
    let payload
    if (body !== undefined) { h['Content-Type'] = 'application/json'; payload = JSON.stringify(body) }
    if (form !== undefined) { h['Content-Type'] = 'application/x-www-form-urlencoded'; payload = new URLSearchParams(form).toString() }
    const res = await fetch(base + path, { method, headers: h, body: payload })
    const n = res.headers.get('dpop-nonce')
    const stale = n && n !== nonce
    if (n) nonce = n
    const text = await res.text()
    const json = text ? JSON.parse(text) : undefined
    const askedForNonce = (res.status === 401 && (res.headers.get('www-authenticate') ?? '').includes('use_dpop_nonce')) ||
      (res.status === 400 && json?.error === 'use_dpop_nonce')
    if (askedForNonce && stale && attempt === 0) continue
    return { res, json }
  }
}

async function token(keypair) {
  const { res, json } = await send(keypair, 'POST', '/v1/token', { form: { grant_type: 'client_credentials' } })
  return { res, json }
}

test('an npm dpop/jose client enrols, is approved, reads, and is refused as the standards say', async (t) => {
  const { res: mres, json: meta } = await send(null, 'GET', '/.well-known/oauth-authorization-server')
  assert.equal(mres.status, 200)
  assert.equal(meta.token_endpoint, base + '/v1/token')
  for (const alg of ['Ed25519', 'EdDSA', 'ES256']) assert.ok(meta.dpop_signing_alg_values_supported.includes(alg), alg)

  // The first admin: an Ed25519 key (dpop signs with alg "Ed25519", RFC 9864).
  const admin = await DPoP.generateKeyPair('Ed25519')
  const boot = await send(admin, 'POST', '/v1/bootstrap', { token: bootstrapToken, scheme: 'Bearer', body: { principal: 'npm-admin', device_name: 'node' } })
  assert.equal(boot.res.status, 201, JSON.stringify(boot.json))
  assert.ok(nonce, 'the server sent a DPoP-Nonce')

  const at = await token(admin)
  assert.equal(at.res.status, 200, JSON.stringify(at.json))
  assert.equal(at.json.token_type, 'DPoP')
  const adminToken = at.json.access_token
  assert.equal(jose.decodeJwt(adminToken).cnf.jkt, await DPoP.calculateThumbprint(admin.publicKey))

  // A service principal whose device is a P-256 key.
  const mk = await send(admin, 'POST', '/v1/principals', { token: adminToken, body: { id: 'npm-svc', org: 'operator', kind: 'service', roles: ['service'] } })
  assert.equal(mk.res.status, 201, JSON.stringify(mk.json))
  const svc = await DPoP.generateKeyPair('ES256')
  const enrol = await send(svc, 'POST', '/v1/devices', { body: { principal: 'npm-svc', name: 'node service' } })
  assert.equal(enrol.res.status, 201, JSON.stringify(enrol.json))
  assert.equal(enrol.json.status, 'pending')
  const jwk = await jose.exportJWK(svc.publicKey)
  assert.equal(enrol.json.id, await jose.calculateJwkThumbprint(jwk, 'sha256'))

  // Not approved yet: the token endpoint says invalid_grant (RFC 6749 §5.2, status 400).
  const early = await token(svc)
  assert.equal(early.res.status, 400)
  assert.equal(early.json.error, 'invalid_grant')

  const ok = await send(admin, 'POST', `/v1/devices/${enrol.json.id}/approve`, { token: adminToken })
  assert.equal(ok.res.status, 200, JSON.stringify(ok.json))
  const st = await token(svc)
  assert.equal(st.res.status, 200, JSON.stringify(st.json))
  const svcToken = st.json.access_token

  const created = await send(svc, 'POST', '/v1/collections/users/records', {
    token: svcToken, headers: { 'Sekisho-Purpose': 'ops' },
    body: { region: 'jp', fields: { display_name: 'Sakura Tanaka', phone: '090-1234-5678', email: 'Sakura@Example.JP' } },
  })
  assert.equal(created.res.status, 201, JSON.stringify(created.json))
  const read = await send(svc, 'GET', `/v1/collections/users/records/${created.json.id}?fields=phone,email`, { token: svcToken, headers: { 'Sekisho-Purpose': 'ops' } })
  assert.equal(read.res.status, 200, JSON.stringify(read.json))
  assert.equal(read.json.fields.phone, '+819012345678')
  assert.equal(read.json.fields.email, 'sakura@example.jp')

  // A proof made with jose directly, alg "EdDSA": accepted as well.
  const adminJwk = await jose.exportJWK(admin.publicKey)
  const ath = jose.base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(adminToken))))
  const proof = await new jose.SignJWT({ htm: 'GET', htu: base + '/v1/whoami', ath, nonce, jti: crypto.randomUUID() })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: adminJwk })
    .setIssuedAt()
    .sign(admin.privateKey)
  const who = await fetch(base + '/v1/whoami', { headers: { Authorization: `DPoP ${adminToken}`, DPoP: proof } })
  assert.equal(who.status, 200)
  assert.equal((await who.json()).principal, 'npm-admin')

  await t.test('refusals carry WWW-Authenticate', async () => {
    const cases = [
      ['no credential', null, {}, `DPoP error="invalid_request", ${algs}`],
      ['bearer', null, { token: svcToken, scheme: 'Bearer' }, `DPoP error="invalid_request", ${algs}`],
      ['proof by another key', admin, { token: svcToken }, `DPoP error="invalid_token", ${algs}`],
      ['proof for another URL', svc, { token: svcToken, proofURL: base + '/v1/orgs' }, `DPoP error="invalid_dpop_proof", ${algs}`],
    ]
    for (const [name, kp, opts, want] of cases) {
      const { res } = await send(kp, 'GET', '/v1/whoami', opts)
      assert.equal(res.status, 401, name)
      assert.equal(res.headers.get('www-authenticate'), want, name)
    }
    // The right request beside them.
    const { res } = await send(svc, 'GET', '/v1/whoami', { token: svcToken })
    assert.equal(res.status, 200)
  })

  await t.test('a proof without the server nonce is refused with use_dpop_nonce', async () => {
    const p = await DPoP.generateProof(svc, base + '/v1/whoami', 'GET', undefined, svcToken)
    const res = await fetch(base + '/v1/whoami', { headers: { Authorization: `DPoP ${svcToken}`, DPoP: p } })
    assert.equal(res.status, 401)
    assert.equal(res.headers.get('www-authenticate'), `DPoP error="use_dpop_nonce", ${algs}`)
    assert.ok(res.headers.get('dpop-nonce'))
  })
})
