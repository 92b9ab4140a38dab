// Sign-in: device-bound, like every sekisho client. The browser makes a
// non-extractable P-256 key (WebCrypto) and keeps the CryptoKey objects in
// IndexedDB (structured clone keeps them non-extractable: the page can sign
// with the key after a reload, never read it). The key is enrolled for a
// principal, the page shows the device id and waits until an admin approves
// it; from then on every request is DPoP-signed by the Client. Nothing else
// is stored: no password, no token (the access token lives in memory).
//
// This module is the one place that knows how a console user signs in; a
// passkey (WebAuthn) sign-in can be added here as another method.
import { Client, ProblemError, generateDeviceKey, type DeviceKey } from '../../../clients/typescript/src/index'
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

/** forget deletes the device key from this browser. */
export async function forget(): Promise<void> {
  await tx('readwrite', (s) => s.delete(recordKey))
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
 * when it has one, otherwise after the enrolment form and the wait for
 * approval, shown in root.
 */
export async function signIn(root: HTMLElement): Promise<Session> {
  for (;;) {
    let stored = await load()
    if (!stored) stored = await enrolForm(root)
    const client = new Client({ baseUrl: location.origin, key: stored.key })
    const s = await waitForApproval(root, client, stored)
    if (s) return s
    await forget() // refused for good (revoked, unknown): start over
  }
}

async function enrolForm(root: HTMLElement): Promise<Stored> {
  return new Promise((resolve) => {
    const err = h('p', { class: 'error', role: 'alert', id: 'enrol-error' })
    const principal = h('input', { id: 'principal', name: 'principal', required: true, autocomplete: 'username', 'aria-describedby': 'principal-help', spellcheck: 'false' })
    const name = h('input', { id: 'device-name', name: 'device-name', required: true, value: `console on ${navigator.platform || 'this browser'}` })
    const button = h('button', { type: 'submit', id: 'enrol' }, t('enrol'))
    const form = h('form', { class: 'card', 'aria-labelledby': 'signin-title' },
      h('h1', { id: 'signin-title' }, t('signin_title')),
      h('p', {}, t('signin_intro')),
      h('label', { for: 'principal' }, t('principal')), principal,
      h('p', { class: 'help', id: 'principal-help' }, t('principal_help')),
      h('label', { for: 'device-name' }, t('device_name')), name,
      button, err)
    form.addEventListener('submit', async (e) => {
      e.preventDefault()
      button.disabled = true
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
        err.textContent = e instanceof ProblemError ? `${e.code}: ${e.detail ?? e.title}` : String(e)
        button.disabled = false
        button.textContent = t('enrol')
      }
    })
    root.replaceChildren(form)
    principal.focus()
  })
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
