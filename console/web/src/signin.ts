// Sign-in: device-bound, like every sekisho client. The browser makes a
// non-extractable P-256 key (WebCrypto); every request is DPoP-signed with
// it by the Client. Two ways to get that key accepted:
//
//   - A passkey (WebAuthn, issue 16 point 5). Registering one enrols the
//     passkey and this browser's key together; an admin approves the device
//     once, which approves the passkey. Signing in with an approved passkey
//     makes a new key for the session only (kept in memory, never stored):
//     the server enrols it approved, key_storage webauthn. Signing out
//     revokes it.
//   - A device key alone: enrolled for a principal, kept in IndexedDB
//     (structured clone keeps the CryptoKey non-extractable: the page can
//     sign with it after a reload, never read it); the page shows the
//     device id and waits until an admin approves it.
//
// Nothing else is stored: no password, no token (the access token lives in
// memory). This module is the one place that knows how a console user signs
// in.
import { Client, ProblemError, b64url, generateDeviceKey, proof, type DeviceKey } from '../../../clients/typescript/src/index'
import { h } from './dom'
import { t } from './i18n'

const dbName = 'sekisho-console'
const storeName = 'device'
const recordKey = 'current'

/** Stored is what IndexedDB holds: the key pair and whom it was enrolled for. */
interface Stored {
  key: DeviceKey
  principal: string
  deviceId: string
  name: string
}

function openDB(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(storeName)
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

async function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDB()
  try {
    return await new Promise<T>((resolve, reject) => {
      const r = f(db.transaction(storeName, mode).objectStore(storeName))
      r.onsuccess = () => resolve(r.result)
      r.onerror = () => reject(r.error)
    })
  } finally {
    db.close()
  }
}

async function load(): Promise<Stored | undefined> {
  return (await tx<Stored | undefined>('readonly', (s) => s.get(recordKey))) ?? undefined
}

async function save(v: Stored): Promise<void> {
  await tx('readwrite', (s) => s.put(v, recordKey))
}

/** The passkey session's device, held in memory only. */
let passkeySession: { client: Client; deviceId: string } | undefined

/**
 * forget signs out: a passkey session's device is revoked (its key was
 * never stored); a stored device key is deleted from this browser.
 */
export async function forget(): Promise<void> {
  const ps = passkeySession
  passkeySession = undefined
  if (ps) {
    try {
      await ps.client.fetch('POST', `/v1/devices/${encodeURIComponent(ps.deviceId)}/revoke`)
    } catch {
      // signed out anyway: the key is gone with the page
    }
  }
  await tx('readwrite', (s) => s.delete(recordKey))
}

// The refusals that end a signed-in console: 401 on a request with an
// earlier token, 400 (OAuth invalid_grant) on the token request. A
// quarantine is not one of them: the page that hit it says so.
const endedCodes = new Set(['device-expired', 'device-revoked', 'device-unknown', 'principal-revoked'])

/**
 * sessionEnded reports whether e says that this browser's sign-in no
 * longer holds: a passkey session expired, its device or principal
 * revoked, or the device unknown.
 */
export function sessionEnded(e: unknown): e is ProblemError {
  return e instanceof ProblemError && endedCodes.has(e.code)
}

/** The event the pages send when a request found the session ended. */
export const sessionEndedEvent = 'sekisho:session-ended'

/** signalEnded tells the console that the session ended (sessionEnded(e)). */
export function signalEnded(e: ProblemError): void {
  window.dispatchEvent(new CustomEvent(sessionEndedEvent, { detail: e }))
}

/**
 * dropSession forgets a passkey session that ended on the server (its
 * device expired or was revoked: there is nothing left to revoke).
 */
export function dropSession(): void {
  passkeySession = undefined
}

export interface Session {
  client: Client
  principal: string
  org: string
  roles: string[]
  deviceId: string
}

/**
 * signIn resolves when this browser holds an approved device key: at once
 * when it has one, otherwise after a passkey sign-in, or after the
 * enrolment form and the wait for approval, shown in root.
 */
export async function signIn(root: HTMLElement): Promise<Session> {
  for (;;) {
    let stored = await load()
    if (!stored) {
      const r = await signInForm(root)
      if ('client' in r) return r
      stored = r
    }
    const client = new Client({ baseUrl: location.origin, key: stored.key })
    const s = await waitForApproval(root, client, stored)
    if (s) return s
    await forget() // refused for good (revoked, unknown): start over
  }
}

function errorText(e: unknown): string {
  if (e instanceof ProblemError) return `${e.code}: ${e.detail ?? e.title}`
  if (e instanceof DOMException) return `${e.name}: ${e.message}`
  return String(e)
}

// signInForm offers the passkey sign-in, the passkey registration and the
// plain enrolment; it resolves with a passkey session or a stored key.
async function signInForm(root: HTMLElement): Promise<Session | Stored> {
  return new Promise((resolve) => {
    const supported = window.isSecureContext && typeof PublicKeyCredential !== 'undefined'
    const pkErr = h('p', { class: 'error', role: 'alert', id: 'passkey-error' })
    const pkButton = h('button', { type: 'button', id: 'passkey-signin' }, t('passkey_signin'))
    const pkCard = h('section', { class: 'card', 'aria-labelledby': 'passkey-title' },
      h('h1', { id: 'passkey-title' }, t('passkey_title')),
      h('p', {}, t('passkey_intro')),
      supported ? pkButton : h('p', { class: 'help', id: 'passkey-unsupported' }, t('passkey_unsupported')),
      pkErr)

    const err = h('p', { class: 'error', role: 'alert', id: 'enrol-error' })
    const principal = h('input', { id: 'principal', name: 'principal', required: true, autocomplete: 'username webauthn', 'aria-describedby': 'principal-help', spellcheck: 'false' })
    const name = h('input', { id: 'device-name', name: 'device-name', required: true, value: `console on ${navigator.platform || 'this browser'}` })
    const register = h('button', { type: 'button', id: 'passkey-register', class: 'secondary' }, t('passkey_register'))
    const button = h('button', { type: 'submit', id: 'enrol' }, t('enrol'))
    const form = h('form', { class: 'card', 'aria-labelledby': 'signin-title' },
      h('h1', { id: 'signin-title' }, t('signin_title')),
      h('p', {}, t('signin_intro')),
      h('label', { for: 'principal' }, t('principal')), principal,
      h('p', { class: 'help', id: 'principal-help' }, t('principal_help')),
      h('label', { for: 'device-name' }, t('device_name')), name,
      ...(supported ? [h('p', { class: 'help', id: 'passkey-register-help' }, t('passkey_register_help')), register] : []),
      h('p', { class: 'help' }, t('or_device')),
      button, err)

    const busy = (on: boolean) => {
      for (const b of [pkButton, register, button]) b.disabled = on
    }
    pkButton.addEventListener('click', async () => {
      busy(true)
      pkErr.textContent = t('passkey_working')
      try {
        resolve(await passkeySignIn(name.value.trim()))
      } catch (e) {
        pkErr.textContent = errorText(e)
        busy(false)
      }
    })
    register.addEventListener('click', async () => {
      if (!form.reportValidity()) return
      busy(true)
      err.textContent = t('passkey_working')
      try {
        resolve(await passkeyRegister(principal.value.trim(), name.value.trim()))
      } catch (e) {
        err.textContent = errorText(e)
        busy(false)
      }
    })
    form.addEventListener('submit', async (e) => {
      e.preventDefault()
      busy(true)
      button.textContent = t('enrolling')
      err.textContent = ''
      try {
        const key = await generateDeviceKey() // non-extractable
        const c = new Client({ baseUrl: location.origin, key })
        const d = await c.enrol(principal.value.trim(), name.value.trim(), 'file')
        const s: Stored = { key, principal: principal.value.trim(), deviceId: d.id ?? (await c.deviceId()), name: name.value.trim() }
        await save(s)
        resolve(s)
      } catch (e) {
        err.textContent = errorText(e)
        busy(false)
        button.textContent = t('enrol')
      }
    })
    root.replaceChildren(h('div', { class: 'signin-choices' }, pkCard, form))
    ;(supported ? pkButton : principal).focus()
  })
}

// The WebAuthn ceremonies. Each request is anonymous and carries a DPoP
// proof of the browser's new key: the server binds the ceremony to it.

let nonce: string | undefined

/** proven sends a JSON request with a proof of key and no token. */
async function proven<T>(key: DeviceKey, path: string, body: unknown): Promise<T> {
  const url = location.origin + path
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { DPoP: await proof(key, 'POST', url, { nonce }), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    })
    const n = res.headers.get('DPoP-Nonce')
    const fresh = !!n && n !== nonce
    if (n) nonce = n
    const text = await res.text()
    let j: Record<string, unknown> = {}
    try {
      j = text ? JSON.parse(text) : {}
    } catch {
      j = { detail: text.trim() }
    }
    if (res.ok) return j as T
    if (attempt === 0 && fresh && (res.status === 400 || res.status === 401)) continue
    throw new ProblemError(res.status, j)
  }
}

interface Begun {
  ceremony: string
  options: { publicKey: Record<string, unknown> }
}

function unb64url(s: string): ArrayBuffer {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4))
  const b = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i)
  return b.buffer
}

type Descriptor = { id: string; type: string; transports?: string[] }

function descriptors(l: unknown): PublicKeyCredentialDescriptor[] | undefined {
  if (!Array.isArray(l)) return undefined
  return (l as Descriptor[]).map((d) => ({ type: 'public-key', id: unb64url(d.id), transports: d.transports as AuthenticatorTransport[] | undefined }))
}

// creationOptions and requestOptions turn the server's JSON options
// (base64url byte fields) into the browser's.
function creationOptions(o: Record<string, unknown>): PublicKeyCredentialCreationOptions {
  const user = o.user as { id: string; name: string; displayName: string }
  return {
    ...(o as unknown as PublicKeyCredentialCreationOptions),
    challenge: unb64url(o.challenge as string),
    user: { ...user, id: unb64url(user.id) },
    excludeCredentials: descriptors(o.excludeCredentials),
  }
}

function requestOptions(o: Record<string, unknown>): PublicKeyCredentialRequestOptions {
  return {
    ...(o as unknown as PublicKeyCredentialRequestOptions),
    challenge: unb64url(o.challenge as string),
    allowCredentials: descriptors(o.allowCredentials),
  }
}

// credentialJSON is PublicKeyCredential.toJSON(): what the server parses.
function credentialJSON(c: PublicKeyCredential): Record<string, unknown> {
  const r = c.response
  const response: Record<string, unknown> = { clientDataJSON: b64url(r.clientDataJSON) }
  if (r instanceof AuthenticatorAttestationResponse) {
    response.attestationObject = b64url(r.attestationObject)
    response.transports = r.getTransports?.() ?? []
  } else if (r instanceof AuthenticatorAssertionResponse) {
    response.authenticatorData = b64url(r.authenticatorData)
    response.signature = b64url(r.signature)
    if (r.userHandle) response.userHandle = b64url(r.userHandle)
  }
  return {
    id: c.id, rawId: b64url(c.rawId), type: c.type, response,
    clientExtensionResults: c.getClientExtensionResults(),
    authenticatorAttachment: c.authenticatorAttachment ?? undefined,
  }
}

/** passkeySignIn signs in with a passkey; the session key is never stored. */
async function passkeySignIn(deviceName: string): Promise<Session> {
  const key = await generateDeviceKey() // non-extractable, this session's
  const begun = await proven<Begun>(key, '/v1/webauthn/login/options', {})
  const cred = (await navigator.credentials.get({ publicKey: requestOptions(begun.options.publicKey) })) as PublicKeyCredential | null
  if (!cred) throw new Error('no passkey was chosen')
  const done = await proven<{ device: { id: string } }>(key, '/v1/webauthn/login',
    { ceremony: begun.ceremony, credential: credentialJSON(cred), device_name: `${deviceName || 'console'} (passkey session)` })
  const client = new Client({ baseUrl: location.origin, key })
  const me = await client.whoami()
  passkeySession = { client, deviceId: done.device.id }
  return { client, principal: me.principal, org: me.org, roles: me.roles ?? [], deviceId: me.device }
}

/**
 * passkeyRegister registers a new passkey for principal with this
 * browser's new key: the key is stored and waits for an admin's approval
 * like an enrolled device (key_storage webauthn).
 */
async function passkeyRegister(principal: string, deviceName: string): Promise<Stored> {
  const key = await generateDeviceKey()
  const begun = await proven<Begun>(key, '/v1/webauthn/registration/options', { principal })
  const cred = (await navigator.credentials.create({ publicKey: creationOptions(begun.options.publicKey) })) as PublicKeyCredential | null
  if (!cred) throw new Error('no passkey was made')
  const d = await proven<{ id: string }>(key, '/v1/webauthn/registration',
    { ceremony: begun.ceremony, credential: credentialJSON(cred), name: `passkey of ${principal}`, device_name: deviceName })
  const s: Stored = { key, principal, deviceId: d.id, name: deviceName }
  await save(s)
  return s
}

// waitForApproval shows the device id until a token is issued; it returns
// undefined when the device is refused for good.
async function waitForApproval(root: HTMLElement, client: Client, s: Stored): Promise<Session | undefined> {
  let shown = false
  const msg = h('p', { role: 'status', 'aria-live': 'polite', id: 'wait-status' }, t('waiting_check'))
  for (;;) {
    try {
      const me = await client.whoami()
      return { client, principal: me.principal, org: me.org, roles: me.roles ?? [], deviceId: me.device }
    } catch (e) {
      if (!(e instanceof ProblemError)) throw e
      if (e.code !== 'device-not-approved') {
        const again = h('button', { type: 'button', id: 'start-over' }, t('start_over'))
        root.replaceChildren(h('section', { class: 'card' }, h('h1', {}, t('device_refused')), h('p', { class: 'error' }, `${e.code}: ${e.detail ?? ''}`), again))
        await new Promise<void>((r) => again.addEventListener('click', () => r()))
        return undefined
      }
    }
    if (!shown) {
      shown = true
      const again = h('button', { type: 'button', id: 'start-over', class: 'secondary' }, t('start_over'))
      again.addEventListener('click', async () => {
        await forget()
        location.reload()
      })
      root.replaceChildren(h('section', { class: 'card', 'aria-labelledby': 'wait-title' },
        h('h1', { id: 'wait-title' }, t('waiting_title')),
        h('p', {}, t('waiting_intro')),
        h('dl', {}, h('dt', {}, t('principal')), h('dd', {}, s.principal),
          h('dt', {}, t('device_name')), h('dd', {}, s.name),
          h('dt', {}, t('device_id')), h('dd', {}, h('code', { id: 'device-id' }, s.deviceId))),
        msg, again))
    }
    await new Promise((r) => setTimeout(r, 3000))
  }
}
