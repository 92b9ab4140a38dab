// @sekisho/client: a client of the sekisho API for browsers and Node.
//
// Every request is signed with a device key (DPoP, RFC 9449): the client
// gets a DPoP-bound access token from POST /v1/token with a proof of the
// key, renews it before it expires (and once when a cached one is refused),
// learns server nonces from DPoP-Nonce, and turns every RFC 9457 problem
// into a ProblemError whose `code` is the stable problem type's name.
// Tokens live in memory only.
import type { components, paths } from './schema.js'
import { proof, thumbprint, type DeviceKey } from './dpop.js'

export type { components, paths } from './schema.js'
export { generateDeviceKey, proof, publicJWK, thumbprint, stripURL, accessTokenHash, b64url } from './dpop.js'
export type { DeviceKey, PublicJWK, ProofOptions } from './dpop.js'
export { verifyConsistency, parseCheckpoint } from './merkle.js'
export type { Checkpoint } from './merkle.js'

type S = components['schemas']
export type Grant = S['Grant']
export type Device = S['Device']
export type Quarantine = S['Quarantine']
export type GuardRule = S['GuardRule']
export type GuardAlert = S['GuardAlert']
export type GuardAlertPage = S['GuardAlertPage']
export type GrantUsage = S['GrantUsage']
export type GrantUsageReport = S['GrantUsageReport']
export type Incident = S['Incident']
export type Scope = S['Scope']
export type AuditEvent = S['AuditEvent']
export type TokenResponse = S['TokenResponse']
export type BootstrapResult = S['BootstrapResult']
export type Org = S['Org']
export type Principal = S['Principal']
export type AuditEventsPage = paths['/v1/audit/events']['get']['responses']['200']['content']['application/json']
export type AuditEventEntry = NonNullable<AuditEventsPage['events']>[number]
export type ReportKind = paths['/v1/incidents/{id}/report/{kind}']['get']['parameters']['path']['kind']

/** The prefix of every problem type sekisho answers with. */
export const problemBase = 'https://sekisho.dev/problems/'

/** ProblemError is an RFC 9457 problem the server answered with. */
export class ProblemError extends Error {
  /** the problem type URI (https://sekisho.dev/problems/NAME) */
  readonly type: string
  /** NAME, the stable part of the type (no-grant, device-not-approved, ...) */
  readonly code: string
  readonly status: number
  readonly title: string
  readonly detail?: string
  readonly instance?: string
  /** the request field the problem is about (invalid input) */
  readonly field?: string
  readonly requestId?: string
  /** the OAuth error code of a token endpoint refusal (RFC 6749 §5.2) */
  readonly oauthError?: string
  /** the whole body as sent */
  readonly body: Record<string, unknown>

  constructor(status: number, body: Record<string, unknown>) {
    const type = typeof body.type === 'string' ? body.type : `${problemBase}http-${status}`
    const detail = typeof body.detail === 'string' ? body.detail : undefined
    const code = type.startsWith(problemBase) ? type.slice(problemBase.length) : type
    super(`${code}: ${detail ?? body.title ?? status}`)
    this.name = 'ProblemError'
    this.type = type
    this.code = code
    this.status = status
    this.title = typeof body.title === 'string' ? body.title : ''
    this.detail = detail
    this.instance = typeof body.instance === 'string' ? body.instance : undefined
    this.field = typeof body.field === 'string' ? body.field : undefined
    this.requestId = typeof body.request_id === 'string' ? body.request_id : undefined
    this.oauthError = typeof body.error === 'string' ? body.error : undefined
    this.body = body
  }
}

/** UnreachableError says no answer came at all (network, DNS, TLS). */
export class UnreachableError extends Error {
  constructor(readonly server: string, readonly cause: unknown) {
    super(`could not reach the server at ${server}: ${cause instanceof Error ? cause.message : String(cause)}`)
    this.name = 'UnreachableError'
  }
}

export interface ClientOptions {
  /** the server's URL (scheme, host, port), e.g. location.origin */
  baseUrl: string
  /** the device key that signs every proof */
  key: DeviceKey
  /** a fetch to use (default globalThis.fetch) */
  fetch?: typeof fetch
  /** the clock (default Date.now), for proofs and token expiry */
  now?: () => number
  /** renew a token this many ms before it expires (default 30 s) */
  renewBefore?: number
}

export interface RequestOptions {
  /** a JSON body */
  body?: unknown
  /** Sekisho-Purpose (data requests) */
  purpose?: string
  /** query parameters (undefined values are left out) */
  query?: Record<string, string | number | boolean | undefined>
  /** Accept header */
  accept?: string
  signal?: AbortSignal
}

/** Client sends device-bound requests to one sekisho server. */
export class Client {
  readonly baseUrl: string
  readonly key: DeviceKey
  private readonly fetchFn: typeof fetch
  private readonly now: () => number
  private readonly renewBefore: number
  private token = ''
  private expires = 0
  private nonce: string | undefined
  private refreshing: Promise<TokenResponse> | undefined

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '')
    this.key = opts.key
    this.fetchFn = opts.fetch ?? ((input, init) => globalThis.fetch(input, init))
    this.now = opts.now ?? Date.now
    this.renewBefore = opts.renewBefore ?? 30_000
  }

  /** deviceId is the key's RFC 7638 thumbprint, the id sekisho gives the device. */
  deviceId(): Promise<string> {
    return thumbprint(this.key)
  }

  /** hasToken reports whether a token is held that is not about to expire. */
  hasToken(): boolean {
    return this.token !== '' && this.now() + this.renewBefore < this.expires
  }

  /** forgetToken drops the token in memory (the next request gets a new one). */
  forgetToken(): void {
    this.token = ''
    this.expires = 0
  }

  private url(path: string, query?: RequestOptions['query']): string {
    const u = new URL(this.baseUrl + path)
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v))
    return u.toString()
  }

  /** send is one fetch; it remembers the server nonce it brings. */
  private async send(url: string, init: RequestInit): Promise<{ res: Response; newNonce: boolean }> {
    const used = this.nonce
    let res: Response
    try {
      res = await this.fetchFn(url, init)
    } catch (e) {
      if (init.signal?.aborted) throw e
      throw new UnreachableError(this.baseUrl, e)
    }
    const n = res.headers.get('DPoP-Nonce')
    if (n) this.nonce = n
    return { res, newNonce: !!n && n !== used }
  }

  /**
   * unauthenticated sends a request with a proof of the key and no access
   * token (token, enrolment, bootstrap), once more if the refusal brought
   * a new nonce.
   */
  private async unauthenticated(method: string, path: string, body: string, contentType: string, bearer?: string): Promise<Response> {
    const url = this.url(path)
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = {
        DPoP: await proof(this.key, method, url, { nonce: this.nonce, now: new Date(this.now()) }),
        'Content-Type': contentType,
      }
      if (bearer) headers.Authorization = `Bearer ${bearer}`
      const { res, newNonce } = await this.send(url, { method, headers, body })
      if (attempt === 0 && newNonce && (res.status === 400 || res.status === 401)) {
        await res.body?.cancel()
        continue
      }
      return res
    }
  }

  /** refresh gets a new access token with a proof of the device key. */
  refresh(): Promise<TokenResponse> {
    // One refresh at a time: concurrent requests share it.
    this.refreshing ??= (async () => {
      try {
        const res = await this.unauthenticated('POST', '/v1/token', 'grant_type=client_credentials', 'application/x-www-form-urlencoded')
        const t = (await decode(res)) as TokenResponse
        this.token = t.access_token ?? ''
        this.expires = t.expires_at ? Date.parse(t.expires_at) : this.now() + (t.expires_in ?? 0) * 1000
        return t
      } finally {
        this.refreshing = undefined
      }
    })()
    return this.refreshing
  }

  /** bootstrap spends the bootstrap admin token on this key (the first admin). */
  async bootstrap(bootstrapToken: string, principal: string, deviceName: string): Promise<BootstrapResult> {
    const res = await this.unauthenticated('POST', '/v1/bootstrap', JSON.stringify({ principal, device_name: deviceName }), 'application/json', bootstrapToken)
    return (await decode(res)) as BootstrapResult
  }

  /** enrol enrols this key as a device of principal: pending until an admin approves it. */
  async enrol(principal: string, name: string, keyStorage?: 'file' | 'tpm' | 'pkcs11' | 'webauthn'): Promise<Device> {
    const body: Record<string, string> = { principal, name }
    if (keyStorage) body.key_storage = keyStorage
    const res = await this.unauthenticated('POST', '/v1/devices', JSON.stringify(body), 'application/json')
    return (await decode(res)) as Device
  }

  /**
   * fetch sends an authenticated request and returns the response as it
   * came when it is 2xx; any other status is thrown as a ProblemError.
   */
  async fetch(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const url = this.url(path, opts.query)
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body)
    const attempt = async (): Promise<{ res: Response; fresh: boolean }> => {
      let fresh = false
      if (!this.hasToken()) {
        await this.refresh()
        fresh = true
      }
      for (let n = 0; ; n++) {
        const token = this.token
        const headers: Record<string, string> = {
          Authorization: `DPoP ${token}`,
          DPoP: await proof(this.key, method, url, { accessToken: token, nonce: this.nonce, now: new Date(this.now()) }),
        }
        if (body !== undefined) headers['Content-Type'] = 'application/json'
        if (opts.purpose) headers['Sekisho-Purpose'] = opts.purpose
        if (opts.accept) headers.Accept = opts.accept
        const { res, newNonce } = await this.send(url, { method, headers, body, signal: opts.signal })
        if (n === 0 && newNonce && (res.status === 400 || res.status === 401)) {
          await res.body?.cancel()
          continue
        }
        return { res, fresh }
      }
    }
    let { res, fresh } = await attempt()
    if (res.status === 401 && !fresh) {
      // A cached token refused (expired, revoked, from before a lifted
      // quarantine): one new token, one more try; the refusal came before
      // the server acted, so this is safe for writes.
      await res.body?.cancel()
      this.forgetToken()
      ;({ res } = await attempt())
    }
    if (!res.ok) throw await problemOf(res)
    return res
  }

  /** json sends an authenticated request and decodes the JSON answer. */
  async json<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.fetch(method, path, opts)
    const text = await res.text()
    return (text ? JSON.parse(text) : undefined) as T
  }

  // Typed shortcuts for the routes the console uses.

  whoami(): Promise<{ principal: string; org: string; device: string; roles: string[] }> {
    return this.json('GET', '/v1/whoami')
  }
  async listIncidents(): Promise<Incident[]> {
    return (await this.json<{ incidents?: Incident[] }>('GET', '/v1/incidents')).incidents ?? []
  }
  getIncident(id: string): Promise<Incident> {
    return this.json('GET', `/v1/incidents/${enc(id)}`)
  }
  scope(id: string): Promise<Scope> {
    return this.json('GET', `/v1/incidents/${enc(id)}/scope`)
  }
  /** notificationList is the per-subject CSV of a region (scope format=subjects). */
  async notificationList(id: string, region?: string): Promise<string> {
    return (await this.fetch('GET', `/v1/incidents/${enc(id)}/scope`, { query: { format: 'subjects', region } })).text()
  }
  /** report downloads a regulator report (md, pdf or json). */
  async report(id: string, kind: ReportKind, format: 'md' | 'pdf' | 'json', lang?: 'ja' | 'th' | 'en'): Promise<Blob> {
    return (await this.fetch('GET', `/v1/incidents/${enc(id)}/report/${enc(kind)}`, { query: { format, lang } })).blob()
  }
  async listGrants(org?: string): Promise<Grant[]> {
    return (await this.json<{ grants?: Grant[] }>('GET', '/v1/grants', { query: { org } })).grants ?? []
  }
  /** grantUsage: the grants expiring, unused and over budget, computed on the server. */
  grantUsage(q: { org?: string; expiring_within?: string } = {}): Promise<GrantUsageReport> {
    return this.json('GET', '/v1/grants/usage', { query: q })
  }
  approveGrant(id: string): Promise<Grant> {
    return this.json('POST', `/v1/grants/${enc(id)}/approve`)
  }
  async listDevices(q: { org?: string; principal?: string } = {}): Promise<Device[]> {
    return (await this.json<{ devices?: Device[] }>('GET', '/v1/devices', { query: q })).devices ?? []
  }
  approveDevice(id: string): Promise<Device> {
    return this.json('POST', `/v1/devices/${enc(id)}/approve`)
  }
  async listQuarantines(): Promise<Quarantine[]> {
    return (await this.json<{ quarantines?: Quarantine[] }>('GET', '/v1/quarantines')).quarantines ?? []
  }
  /**
   * liftQuarantine records this admin's lift of a quarantine, saying why it
   * is safe to lift (required: kept with the lift and in the audit event).
   * A two-sided quarantine stays active (202) until every org of
   * lifts_needed lifted it.
   */
  liftQuarantine(id: string, reason: string): Promise<Quarantine> {
    return this.json('POST', `/v1/quarantines/${enc(id)}/lift`, { body: { reason } })
  }
  /** alerts lists the guard's recent alerts this admin may see (after: the seq of the last one seen). */
  alerts(after?: number, limit?: number): Promise<GuardAlertPage> {
    return this.json('GET', '/v1/guard/alerts', { query: { after, limit } })
  }
  /**
   * alertStream follows the guard's alerts as they fire (GET
   * /v1/guard/alerts/stream, Server-Sent Events read with fetch, every
   * connection DPoP-signed): it yields each alert after `after`, opening the
   * next stream when the server ends one, until signal aborts. A refusal is
   * thrown as a ProblemError; a lost connection is retried after retryMs.
   */
  async *alertStream(opts: { after?: number; signal?: AbortSignal; retryMs?: number } = {}): AsyncGenerator<GuardAlert> {
    let after = opts.after
    const signal = opts.signal
    while (!signal?.aborted) {
      let res: Response
      try {
        res = await this.fetch('GET', '/v1/guard/alerts/stream', { query: { after }, accept: 'text/event-stream', signal })
      } catch (e) {
        if (signal?.aborted || e instanceof ProblemError) throw e
        await sleep(opts.retryMs ?? 2000, signal)
        continue
      }
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
      let buf = ''
      try {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buf += value
          let i: number
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i)
            buf = buf.slice(i + 2)
            let event = 'message', data = '', id = ''
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7)
              else if (line.startsWith('data: ')) data += line.slice(6)
              else if (line.startsWith('id: ')) id = line.slice(4)
            }
            if (id) after = Number(id)
            if (event === 'alert') yield JSON.parse(data) as GuardAlert
          }
        }
      } catch (e) {
        if (signal?.aborted) return
        await sleep(opts.retryMs ?? 2000, signal)
      } finally {
        await reader.cancel().catch(() => {})
      }
    }
  }
  async listRules(): Promise<GuardRule[]> {
    return (await this.json<{ rules?: GuardRule[] }>('GET', '/v1/guard/rules')).rules ?? []
  }
  auditEvents(q: paths['/v1/audit/events']['get']['parameters']['query'] = {}): Promise<AuditEventsPage> {
    return this.json('GET', '/v1/audit/events', { query: q as RequestOptions['query'] })
  }
  /** checkpoint is the latest signed checkpoint (a C2SP signed note) of a region's log. */
  async checkpoint(region?: string): Promise<string> {
    return (await this.fetch('GET', '/v1/audit/checkpoint', { query: { region } })).text()
  }
  /** consistencyProof is the proof that the log of size `to` extends the one of size `from` (verify it with verifyConsistency). */
  consistencyProof(from: number, to: number, region?: string): Promise<{ from?: number; to?: number; hashes?: string[] }> {
    return this.json('GET', '/v1/audit/proof/consistency', { query: { from, to, region } })
  }
  async verifierKey(): Promise<string> {
    return (await this.fetch('GET', '/v1/audit/verifier-key')).text()
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms)
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
  })
}

function enc(s: string): string {
  return encodeURIComponent(s)
}

async function problemOf(res: Response): Promise<ProblemError> {
  const text = await res.text()
  let body: Record<string, unknown> = {}
  try {
    const j = JSON.parse(text)
    if (j && typeof j === 'object') body = j
  } catch {
    body = { detail: text.trim() }
  }
  return new ProblemError(res.status, body)
}

async function decode(res: Response): Promise<unknown> {
  if (!res.ok) throw await problemOf(res)
  const text = await res.text()
  return text ? JSON.parse(text) : undefined
}
