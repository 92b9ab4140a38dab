// The client's own tests, against a real `sekisho serve` (e2e
// TestTypeScriptClient starts one that requires server nonces and runs
// `npm ci && npm run build && npm test` here):
//
//   SEKISHO_URL=http://127.0.0.1:8700 SEKISHO_BOOTSTRAP_TOKEN_FILE=sekisho-data/bootstrap-admin-token npm test
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { Client, ProblemError, UnreachableError, generateDeviceKey, proof, thumbprint } from '../dist/index.js'

const base = process.env.SEKISHO_URL
const tokenFile = process.env.SEKISHO_BOOTSTRAP_TOKEN_FILE
if (!base || !tokenFile) throw new Error('set SEKISHO_URL and SEKISHO_BOOTSTRAP_TOKEN_FILE')

// countingFetch counts the requests to each path that were answered 2xx
// (a first request without the server's nonce is refused and sent again).
function countingFetch() {
  const counts = {}
  const f = async (input, init) => {
    const res = await fetch(input, init)
    const p = new URL(String(input)).pathname
    if (res.ok) counts[p] = (counts[p] ?? 0) + 1
    return res
  }
  return { f, counts }
}

let admin // the first admin's client

test('bootstrap: the first admin with a non-extractable P-256 key; whoami says who', async () => {
  const key = await generateDeviceKey()
  assert.equal(key.privateKey.extractable, false)
  // The private key cannot be read, not even as a JWK.
  await assert.rejects(crypto.subtle.exportKey('jwk', key.privateKey))
  admin = new Client({ baseUrl: base, key })
  const boot = await admin.bootstrap(readFileSync(tokenFile, 'utf8').trim(), 'ts-admin', 'node test')
  assert.equal(boot.device.id, await thumbprint(key))
  assert.equal(boot.device.status, 'approved')
  const me = await admin.whoami()
  assert.equal(me.principal, 'ts-admin')
  assert.equal(me.device, await admin.deviceId())
  assert.ok(me.roles.includes('admin'))
})

test('a new device is refused a token until an admin approves it (typed problem), then works', async () => {
  await admin.json('POST', '/v1/principals', { body: { id: 'ts-person', org: 'operator', kind: 'person', roles: ['member'] } })
  const c = new Client({ baseUrl: base, key: await generateDeviceKey() })
  const d = await c.enrol('ts-person', 'laptop')
  assert.equal(d.status, 'pending')
  assert.equal(d.id, await c.deviceId())
  const err = await c.whoami().then(() => null, (e) => e)
  assert.ok(err instanceof ProblemError, String(err))
  assert.equal(err.code, 'device-not-approved')
  assert.equal(err.type, 'https://sekisho.dev/problems/device-not-approved')
  assert.equal(err.status, 400)
  assert.equal(err.oauthError, 'invalid_grant')
  assert.ok(!c.hasToken(), 'no token held after a refusal')

  await admin.approveDevice(d.id)
  const me = await c.whoami() // positive control: the same client, approved
  assert.equal(me.principal, 'ts-person')
  assert.equal(me.device, d.id)
})

test('problem details are typed errors with the stable type and the field', async () => {
  // A data request without a purpose.
  const err = await admin.json('GET', '/v1/collections/users/records/nope').then(() => null, (e) => e)
  assert.ok(err instanceof ProblemError)
  assert.equal(err.code, 'purpose-required')
  assert.equal(err.status, 400)
  assert.ok(err.requestId, 'request id')
  // Invalid input names its field.
  const bad = await admin.json('POST', '/v1/collections/users/records', { purpose: 'support', body: { region: 'jp', fields: { phone: 'not a phone' } } }).then(() => null, (e) => e)
  assert.ok(bad instanceof ProblemError)
  assert.equal(bad.code, 'invalid')
  assert.equal(bad.status, 400)
  assert.match(bad.field ?? '', /phone/)
  // The same request done right succeeds (positive control).
  const rec = await admin.json('POST', '/v1/collections/users/records', { purpose: 'support', body: { region: 'jp', fields: { display_name: 'Test', phone: '+81 90 1234 5678' } } })
  assert.ok(rec.id)
  const back = await admin.json('GET', `/v1/collections/users/records/${rec.id}`, { purpose: 'support', query: { fields: 'phone' } })
  assert.equal(back.fields.phone, '+819012345678')
})

test('token refresh: before expiry, and once when a held token is refused', async () => {
  const { f, counts } = countingFetch()
  const c = new Client({ baseUrl: base, key: admin.key, fetch: f })
  await c.whoami()
  await c.whoami()
  assert.equal(counts['/v1/token'], 1, 'one token for two requests')
  // A token within renewBefore of its expiry is renewed before the request
  // (tokens live 5 minutes: with 6 minutes, every request renews).
  const r = countingFetch()
  const early = new Client({ baseUrl: base, key: admin.key, fetch: r.f, renewBefore: 6 * 60_000 })
  await early.whoami()
  await early.whoami()
  assert.equal(r.counts['/v1/token'], 2, 'renewed before expiry')
  assert.equal(r.counts['/v1/whoami'], 2)

  // A held token the server refuses (here: one whose bytes were changed on
  // the way) is dropped, a new one fetched, the request sent once more.
  let spoil = false
  const g = countingFetch()
  const spoiler = (input, init) => {
    if (spoil && init?.headers?.Authorization?.startsWith('DPoP ') && new URL(String(input)).pathname === '/v1/whoami') {
      spoil = false
      init = { ...init, headers: { ...init.headers, Authorization: init.headers.Authorization.slice(0, -4) + 'AAAA' } }
    }
    return g.f(input, init)
  }
  const d = new Client({ baseUrl: base, key: admin.key, fetch: spoiler })
  await d.whoami() // fetches a token and uses it
  assert.equal(g.counts['/v1/token'], 1)
  spoil = true
  const me = await d.whoami() // the held token spoiled: refused, renewed, resent
  assert.equal(spoil, false, 'the spoiled request was sent')
  assert.equal(me.principal, 'ts-admin')
  assert.equal(g.counts['/v1/token'], 2, 'a new token after the refusal')
  assert.equal(g.counts['/v1/whoami'], 2, 'two whoami answered')
})

test('a proof by another key with the admin token is refused (token bound to its key)', async () => {
  const { f, counts } = countingFetch()
  const c = new Client({ baseUrl: base, key: admin.key, fetch: f })
  await c.whoami()
  // The token the client holds, sent with a proof of another key.
  let token
  const peek = (input, init) => {
    token ??= init?.headers?.Authorization?.slice('DPoP '.length)
    return fetch(input, init)
  }
  await new Client({ baseUrl: base, key: admin.key, fetch: peek }).whoami()
  assert.ok(token)
  const url = base + '/v1/whoami'
  const other = await generateDeviceKey()
  const send = async (key) => {
    for (let i = 0; ; i++) {
      const r = await fetch(url, { headers: { Authorization: `DPoP ${token}`, DPoP: await proof(key, 'GET', url, { accessToken: token, nonce }) } })
      const n = r.headers.get('DPoP-Nonce')
      if (n && n !== nonce && i === 0 && r.status === 401 && (await r.clone().text()).includes('nonce')) { nonce = n; continue }
      if (n) nonce = n
      return r
    }
  }
  let nonce
  const refused = await send(other)
  assert.equal(refused.status, 401)
  assert.equal((await refused.json()).type, 'https://sekisho.dev/problems/token-key-mismatch')
  const ok = await send(admin.key) // positive control: the token's own key
  assert.equal(ok.status, 200)
  assert.equal(counts['/v1/token'], 1)
})

test('an unreachable server is an UnreachableError', async () => {
  const c = new Client({ baseUrl: 'http://127.0.0.1:1', key: admin.key })
  await assert.rejects(c.whoami(), (e) => e instanceof UnreachableError && /127\.0\.0\.1:1/.test(e.message))
})

test('guard alerts: admins only; one streamed as it fires; the quarantine lifted with a reason', async () => {
  await admin.json('POST', '/v1/principals', { body: { id: 'ts-agent', org: 'operator', kind: 'person', roles: ['support', 'member'] } })
  const agent = new Client({ baseUrl: base, key: await generateDeviceKey() })
  await admin.approveDevice((await agent.enrol('ts-agent', 'agent laptop')).id)
  // A member is refused the alerts (typed problem).
  const err = await agent.alerts().then(() => null, (e) => e)
  assert.ok(err instanceof ProblemError, String(err))
  assert.equal(err.code, 'admin-required')
  assert.equal(err.status, 403)
  const streamErr = await agent.alertStream().next().then(() => null, (e) => e)
  assert.ok(streamErr instanceof ProblemError && streamErr.code === 'admin-required', String(streamErr))

  const { next } = await admin.alerts()
  const ac = new AbortController()
  const stream = admin.alertStream({ after: next, signal: ac.signal })
  const first = stream.next() // waiting before the alert fires
  const made = await admin.json('POST', '/v1/collections/users/honeytokens', { body: { region: 'jp', count: 1 } })
  const read = await agent.json('GET', `/v1/collections/users/records/${made.honeytokens[0].id}`, { purpose: 'support' }).then(() => null, (e) => e)
  assert.ok(read instanceof ProblemError && read.code === 'quarantined', String(read))
  const timeout = setTimeout(() => ac.abort(), 10_000)
  const got = await first
  clearTimeout(timeout)
  ac.abort()
  assert.equal(got.done, false, 'an alert arrived on the stream')
  assert.equal(got.value.rule, 'honeytoken')
  assert.equal(got.value.principal, 'ts-agent')
  assert.equal(got.value.action, 'quarantine')
  assert.ok(got.value.seq > next)
  // The list has it too.
  const listed = await admin.alerts(next)
  assert.deepEqual(listed.alerts.map((a) => a.id), [got.value.id])

  // A lift needs a reason: refused without one (field reason), then lifted with it.
  const noReason = await admin.liftQuarantine('principal:ts-agent', ' ').then(() => null, (e) => e)
  assert.ok(noReason instanceof ProblemError, String(noReason))
  assert.equal(noReason.code, 'invalid')
  assert.equal(noReason.field, 'reason')
  const why = 'a drill: ts-agent opened the decoy on purpose'
  const q = await admin.liftQuarantine('principal:ts-agent', why)
  assert.equal(q.status, 'lifted')
  assert.equal(q.lifts[0].reason, why)
})

test('grant usage: computed on the server; a new grant is unused and expiring', async () => {
  await admin.json('POST', '/v1/orgs', { body: { id: 'ts-partner', home_region: 'jp' } })
  const g = await admin.json('POST', '/v1/grants', { body: { grantee_org: 'ts-partner', collections: ['users'], fields: ['display_name'], regions: ['jp'], purposes: ['support'], actions: ['read'], expires: new Date(Date.now() + 86400_000).toISOString() } })
  const rep = await admin.grantUsage()
  const u = rep.grants.find((x) => x.id === g.id)
  assert.ok(u, 'the grant is listed')
  assert.equal(u.reads, 0)
  assert.ok(rep.unused.includes(g.id))
  assert.ok(rep.expiring.includes(g.id))
  assert.ok(!rep.over_budget.includes(g.id))
  assert.ok(rep.events_scanned > 0)
  // A narrower window: not expiring within an hour.
  assert.ok(!(await admin.grantUsage({ expiring_within: '1h' })).expiring.includes(g.id))
})

test('audit: a consistency proof between two checkpoints verifies here; a tampered root fails', async () => {
  const { parseCheckpoint, verifyConsistency } = await import('../dist/index.js')
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0))
  const before = parseCheckpoint(await admin.checkpoint())
  for (const id of ['ts-audit-1', 'ts-audit-2', 'ts-audit-3']) {
    await admin.json('POST', '/v1/principals', { body: { id, org: 'operator', kind: 'person', roles: ['member'] } })
  }
  const after = parseCheckpoint(await admin.checkpoint())
  assert.ok(after.size > before.size, `the log grew (${before.size} -> ${after.size})`)
  const p = await admin.consistencyProof(before.size, after.size)
  const hashes = p.hashes.map(b64)
  assert.equal(await verifyConsistency(before.size, after.size, hashes, before.root, after.root), null)
  // Tampered: the old root (a fork), the new root, a proof hash, the sizes.
  const flip = (h) => { const x = Uint8Array.from(h); x[0] ^= 1; return x }
  assert.notEqual(await verifyConsistency(before.size, after.size, hashes, flip(before.root), after.root), null)
  assert.notEqual(await verifyConsistency(before.size, after.size, hashes, before.root, flip(after.root)), null)
  if (hashes.length > 0) assert.notEqual(await verifyConsistency(before.size, after.size, [flip(hashes[0]), ...hashes.slice(1)], before.root, after.root), null)
  assert.notEqual(await verifyConsistency(before.size + 1, after.size, hashes, before.root, after.root), null)
})

test('verifyConsistency agrees with transparency-dev/merkle on every pair of sizes up to 70 leaves', async () => {
  const file = process.env.SEKISHO_MERKLE_VECTORS
  assert.ok(file, 'set SEKISHO_MERKLE_VECTORS (e2e TestTypeScriptClient writes them)')
  const { verifyConsistency } = await import('../dist/index.js')
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0))
  const vs = JSON.parse(readFileSync(file, 'utf8'))
  assert.equal(vs.length, 70 * 71 / 2)
  for (const v of vs) {
    const proof = (v.proof ?? []).map(b64), r1 = b64(v.root1), r2 = b64(v.root2)
    assert.equal(await verifyConsistency(v.size1, v.size2, proof, r1, r2), null, `${v.size1}..${v.size2}`)
    const bad = Uint8Array.from(r2)
    bad[31] ^= 0x80
    assert.notEqual(await verifyConsistency(v.size1, v.size2, proof, r1, bad), null, `${v.size1}..${v.size2} with another root`)
  }
})
