// DPoP proofs (RFC 9449) signed with a WebCrypto ECDSA P-256 key (JWS
// ES256). The same code runs in browsers and in Node (globalThis.crypto,
// Node 20 and later): the private key may be non-extractable, only the
// public key is exported (as a JWK, for the proof's header).

/** A device key: an ECDSA P-256 key pair whose private half signs proofs. */
export interface DeviceKey {
  privateKey: CryptoKey
  publicKey: CryptoKey
}

/** The public JWK of a P-256 key, with the members RFC 7638 hashes. */
export interface PublicJWK {
  kty: 'EC'
  crv: 'P-256'
  x: string
  y: string
}

const enc = new TextEncoder()

function subtle(): SubtleCrypto {
  const c = globalThis.crypto
  if (!c?.subtle) throw new Error('WebCrypto (globalThis.crypto.subtle) is not available: a browser in a secure context or Node 20+ is needed')
  return c.subtle
}

/** base64url without padding (RFC 7515 §2). */
export function b64url(data: ArrayBuffer | Uint8Array | string): string {
  const bytes = typeof data === 'string' ? enc.encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data)
  let s = ''
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!)
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * generateDeviceKey makes a new P-256 key pair. The private key is
 * non-extractable unless asked: it can sign, never be read, not even by the
 * page that made it (kept in IndexedDB it survives reloads as it is).
 */
export async function generateDeviceKey(extractable = false): Promise<DeviceKey> {
  const kp = (await subtle().generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, extractable, ['sign', 'verify'])) as CryptoKeyPair
  return { privateKey: kp.privateKey, publicKey: kp.publicKey }
}

/** publicJWK exports the public key's JWK (kty, crv, x, y only). */
export async function publicJWK(key: DeviceKey): Promise<PublicJWK> {
  const j = await subtle().exportKey('jwk', key.publicKey)
  if (j.kty !== 'EC' || j.crv !== 'P-256' || !j.x || !j.y) throw new Error('device key: want an ECDSA P-256 key')
  return { kty: 'EC', crv: 'P-256', x: j.x, y: j.y }
}

/** thumbprint is the RFC 7638 SHA-256 thumbprint: sekisho's device id. */
export async function thumbprint(key: DeviceKey): Promise<string> {
  const j = await publicJWK(key)
  // The required members in lexicographic order, no whitespace.
  const canonical = `{"crv":"${j.crv}","kty":"${j.kty}","x":"${j.x}","y":"${j.y}"}`
  return b64url(await subtle().digest('SHA-256', enc.encode(canonical)))
}

/** stripURL is the htu of a URL: no query, no fragment. */
export function stripURL(url: string): string {
  const u = new URL(url)
  u.search = ''
  u.hash = ''
  return u.toString()
}

/** accessTokenHash is the ath of a token: base64url(SHA-256(token)). */
export async function accessTokenHash(token: string): Promise<string> {
  return b64url(await subtle().digest('SHA-256', enc.encode(token)))
}

export interface ProofOptions {
  /** the access token the request carries (its hash becomes ath) */
  accessToken?: string
  /** the server's latest DPoP-Nonce */
  nonce?: string
  /** the time of the proof (default now) */
  now?: Date
}

/** proof signs a DPoP proof JWT for one request. */
export async function proof(key: DeviceKey, method: string, url: string, opts: ProofOptions = {}): Promise<string> {
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: await publicJWK(key) }
  const jti = new Uint8Array(16)
  globalThis.crypto.getRandomValues(jti)
  const claims: Record<string, string | number> = {
    jti: b64url(jti),
    htm: method.toUpperCase(),
    htu: stripURL(url),
    iat: Math.floor((opts.now ?? new Date()).getTime() / 1000),
  }
  if (opts.accessToken) claims.ath = await accessTokenHash(opts.accessToken)
  if (opts.nonce) claims.nonce = opts.nonce
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
  // WebCrypto's ECDSA signature is r||s (IEEE P1363), as JWS ES256 wants.
  const sig = await subtle().sign({ name: 'ECDSA', hash: 'SHA-256' }, key.privateKey, enc.encode(input))
  return `${input}.${b64url(sig)}`
}
