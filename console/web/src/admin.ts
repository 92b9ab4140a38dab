// Approvals, quarantines, guard, audit and grants.
import { ProblemError, type AuditEventEntry, type Client, type GrantUsage, type GuardAlert, type Quarantine } from '../../../clients/typescript/src/index'
import { parseCheckpoint, verifyConsistency, type Checkpoint } from '../../../clients/typescript/src/merkle'
import { download, h, list, mono, status, table, timeEl } from './dom'
import { t } from './i18n'
import { sessionEnded, signalEnded } from './signin'

function problemText(e: unknown): string {
  return e instanceof ProblemError ? `${e.code}: ${e.detail ?? e.title}` : String(e)
}

/** recentEvents reads the audit events of every log this caller may see (at most max). */
export async function recentEvents(c: Client, max = 5000): Promise<AuditEventEntry[]> {
  const out: AuditEventEntry[] = []
  let from: number | undefined, fromRegion: string | undefined
  while (out.length < max) {
    const r = await c.auditEvents({ region: 'all', limit: 1000, from, from_region: fromRegion })
    out.push(...(r.events ?? []))
    if (r.next === undefined || r.next === null || (r.events ?? []).length === 0) break
    from = r.next
    fromRegion = r.next_region
  }
  return out
}

export async function approvalsPage(c: Client, rerender: () => void): Promise<HTMLElement> {
  const [grants, devices] = await Promise.all([c.listGrants(), c.listDevices()])
  const pendingGrants = grants.filter((g) => g.status === 'pending')
  const pendingDevices = devices.filter((d) => d.status === 'pending')
  const act = async (f: () => Promise<unknown>, ok: string) => {
    try {
      await f()
      status(ok, 'ok')
      rerender()
    } catch (e) {
      status(problemText(e), 'error')
    }
  }
  return h('section', { 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title' }, t('approvals')),
    table('pending-grants', t('pending_grants'), [t('id'), t('grantor'), t('grantee'), t('collections'), t('fields'), t('regions'), t('purposes'), t('why_two'), t('created_by'), t('expires'), ''],
      pendingGrants.map((g) => [mono(g.id), g.grantor_org ?? '', g.grantee_principal ? `${g.grantee_org} / ${g.grantee_principal}` : g.grantee_org, list(g.collections), list(g.fields), list(g.regions), list(g.purposes), g.two_person ?? '', g.created_by ?? '', timeEl(g.expires),
        h('button', { type: 'button', 'data-approve-grant': g.id, 'aria-label': `${t('approve_grant_label')} ${g.id}`, onclick: () => act(() => c.approveGrant(g.id!), `${t('approved')}: ${g.id}`) }, t('approve'))]),
      pendingGrants.map((g) => g.id ?? '')),
    table('pending-devices', t('pending_devices'), [t('device_id'), t('principal_col'), t('org'), t('name'), t('key_storage'), t('enrolled'), ''],
      pendingDevices.map((d) => [mono(d.id), d.principal ?? '', d.org ?? '', d.name ?? '', d.key_storage ?? '', timeEl(d.enrolled_at),
        h('button', { type: 'button', 'data-approve-device': d.id, 'aria-label': `${t('approve_device_label')} ${d.id}`, onclick: () => act(() => c.approveDevice(d.id!), `${t('approved')}: ${d.id}`) }, t('approve'))]),
      pendingDevices.map((d) => d.id ?? '')))
}

export async function quarantinesPage(c: Client, rerender: () => void): Promise<HTMLElement> {
  const qs = await c.listQuarantines()
  qs.sort((a, b) => (a.status === 'active' ? 0 : 1) - (b.status === 'active' ? 0 : 1) || (b.since ?? '').localeCompare(a.since ?? ''))
  const lift = (id: string, who: string, cell: HTMLElement) => {
    // A second step, with the reason the lift needs (kept with the lift and
    // in the audit log), so that a stray key press does not lift anything.
    const reasonId = `lift-reason-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`
    const reason = h('textarea', { id: reasonId, 'data-lift-reason': id, required: true, maxlength: 1000, rows: 2, cols: 28 })
    const yes = h('button', { type: 'submit', 'data-lift-confirm': id }, t('lift_confirm'))
    const no = h('button', { type: 'button', class: 'secondary' }, t('cancel'))
    const form = h('form', { class: 'lift', 'aria-label': `${t('lift_label')} ${who}` },
      h('label', { for: reasonId }, t('lift_reason')), reason, h('div', {}, yes, no))
    const before = [...cell.childNodes]
    cell.replaceChildren(form)
    reason.focus()
    no.addEventListener('click', () => cell.replaceChildren(...before))
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault()
      const why = reason.value.trim()
      if (!why) {
        status(t('lift_reason_needed'), 'error')
        reason.focus()
        return
      }
      try {
        const q = await c.liftQuarantine(id, why)
        // Two-sided quarantines: this org's lift is recorded, others remain.
        const needed = q.lifts_needed ?? []
        status(q.status === 'lifted' ? `${t('lifted')}: ${who}` : `${t('lift_recorded')}: ${needed.join(', ')}`, 'ok')
        rerender()
      } catch (e) {
        status(problemText(e), 'error')
      }
    })
  }
  const lifts = (q: Quarantine) => (q.lifts ?? []).length === 0 ? '—'
    : h('ul', { class: 'lifts' }, (q.lifts ?? []).map((l) => h('li', { 'data-lift-by': l.by }, `${l.by ?? ''} (${l.org ?? ''}) `, timeEl(l.at), h('br'), h('q', { 'data-lift-reason-shown': q.id }, l.reason ?? ''))))
  return h('section', { 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title' }, t('quarantines')),
    table('quarantines', t('quarantines'), [t('principal_col'), t('subject'), t('device'), t('org'), t('rule'), t('reason'), t('since'), t('status'), t('lifts_col'), ''],
      qs.map((q) => {
        const cell = h('span')
        if (q.status === 'active') {
          const b = h('button', { type: 'button', 'data-lift': q.id, 'aria-label': `${t('lift_label')} ${q.subject ?? ''} ${q.principal ?? ''}` }, t('lift'))
          b.addEventListener('click', () => lift(q.id!, `${q.subject ?? ''} ${q.principal ?? q.id!}`, cell))
          cell.append(b)
        }
        return [q.principal ?? '', q.subject ?? '', mono(q.device), q.org ?? '', q.rule ?? '', q.reason ?? '', timeEl(q.since), h('span', { class: `qstatus ${q.status}`, 'data-status': q.status }, q.status ?? ''),
          lifts(q), cell]
      }), qs.map((q) => q.id ?? '')))
}

function isGuardEvent(e: AuditEventEntry): boolean {
  const ev = e.event
  return !!ev && ((ev.policy ?? '').startsWith('guard') || (ev.action ?? '').startsWith('guard.'))
}

export async function guardPage(c: Client, onLeave: (f: () => void) => void): Promise<HTMLElement> {
  const [rules, recent] = await Promise.all([c.listRules(), c.alerts()])
  // Alerts as they fire: the recent ones, then each new one from the
  // server's event stream (DPoP-signed fetch), at the top, highlighted.
  const body = h('tbody', {})
  const empty = h('tr', {}, h('td', { colspan: 8, class: 'empty' }, t('none')))
  const row = (a: GuardAlert, fresh: boolean) => h('tr', { 'data-alert-id': a.id, 'data-rule': a.rule, 'data-principal': a.principal, class: fresh ? 'new' : '' },
    h('td', {}, timeEl(a.time)), h('td', {}, mono(a.rule)), h('td', { class: a.action === 'quarantine' ? 'bad' : '' }, a.action),
    h('td', {}, a.principal), h('td', {}, list([a.org, ...(a.data_orgs ?? [])])), h('td', {}, mono(a.device ? `${a.device.slice(0, 10)}…` : '')),
    h('td', {}, a.purpose ?? ''), h('td', {}, a.detail ?? ''))
  const rows = [...recent.alerts].reverse().map((a) => row(a, false))
  body.append(...(rows.length ? rows : [empty]))
  const live = h('p', { id: 'alerts-live', 'data-state': 'connecting', role: 'status' }, t('alerts_connecting'))
  const ac = new AbortController()
  onLeave(() => ac.abort())
  void (async () => {
    try {
      live.dataset.state = 'open'
      live.textContent = t('alerts_open')
      for await (const a of c.alertStream({ after: recent.next, signal: ac.signal })) {
        empty.remove()
        body.prepend(row(a, true))
        status(`${t('alert_fired')}: ${a.rule} — ${a.principal}`, 'info')
      }
    } catch (e) {
      if (ac.signal.aborted) return
      if (sessionEnded(e)) {
        signalEnded(e) // the console shows the sign-in again
        return
      }
      live.dataset.state = 'error'
      live.textContent = problemText(e)
    }
  })()
  const liveTable = h('table', { id: 'live-alerts' },
    h('caption', {}, t('alerts')),
    h('thead', {}, h('tr', {}, [t('time'), t('rule'), t('action'), t('principal_col'), t('org'), t('device'), t('purpose'), t('detail')].map((x) => h('th', { scope: 'col' }, x)))),
    body)
  // The guard's decisions kept for good in the audit log (every node's).
  const evs = (await recentEvents(c)).filter(isGuardEvent)
  evs.sort((a, b) => (b.event?.time ?? '').localeCompare(a.event?.time ?? ''))
  const logTable = table('alerts-table', t('guard_log'), [t('time'), t('principal_col'), t('org'), t('action'), t('decision'), t('rule'), t('reason')],
    evs.slice(0, 200).map((e) => [timeEl(e.event?.time), e.event?.principal ?? '', e.event?.org ?? '', e.event?.action ?? '', e.event?.decision ?? '', e.event?.policy ?? '', e.event?.reason || (e.event as { detail?: string })?.detail || '']))
  return h('section', { 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title' }, t('guard')),
    h('h2', {}, t('alerts')), h('p', {}, t('alerts_intro')), live, liveTable,
    h('h2', {}, t('guard_log')), h('p', {}, t('guard_log_intro')), logTable,
    h('h2', {}, t('rules')),
    table('rules', t('rules'), [t('id'), t('description'), t('enabled'), t('action'), t('params'), t('version'), t('updated')],
      rules.map((r) => [mono(r.id), r.description ?? '', r.enabled ? t('yes') : t('no'), r.action ?? '',
        Object.entries(r.params ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—', String(r.version ?? ''), r.updated_at ? h('span', {}, timeEl(r.updated_at), ` ${r.updated_by ?? ''}`) : '—']),
      rules.map((r) => r.id ?? '')))
}

// ---- audit: checkpoints, their signatures verified here, witness files

const b64dec = (s: string) => Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0))

/** verifyNote checks a signed note (C2SP signed-note) against a verifier key "name+hash+base64(0x01||ed25519 key)". */
export async function verifyNote(note: string, vkey: string): Promise<boolean> {
  // name+hash+key: the key is base64 and may itself hold '+'.
  const m0 = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(vkey.trim())
  if (!m0) return false
  const [, name, , keyB64] = m0 as unknown as [string, string, string, string]
  const raw = b64dec(keyB64)
  if (raw[0] !== 1 || raw.length !== 33) return false
  const i = note.indexOf('\n\n')
  if (i < 0) return false
  const text = note.slice(0, i + 1)
  const key = await crypto.subtle.importKey('raw', raw.slice(1), { name: 'Ed25519' }, false, ['verify'])
  for (const line of note.slice(i + 2).split('\n')) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const sig = b64dec(m[2]!)
    if (sig.length !== 68) continue
    if (await crypto.subtle.verify({ name: 'Ed25519' }, key, sig.slice(4), new TextEncoder().encode(text))) return true
  }
  return false
}

async function regionsOf(c: Client): Promise<string[]> {
  // The logs: the default one and every region whose events this caller sees.
  const set = new Set<string>(['default'])
  for (const e of await recentEvents(c)) if (e.region) set.add(e.region)
  return [...set]
}

/**
 * witnessCheck checks a verified checkpoint against the last one this
 * browser witnessed for the log (kept in localStorage: public data): the
 * same size must have the same root, a larger one must be proved to extend
 * it (a consistency proof from the server, verified here). A log that
 * shrank or forked fails. The stored checkpoint moves on only when it holds.
 */
async function witnessCheck(c: Client, region: string, cp: Checkpoint): Promise<{ ok: boolean; text: string; kind: string }> {
  const wkey = `sekisho-witness-${region}`
  const prev = JSON.parse(localStorage.getItem(wkey) ?? 'null') as { size: number; root: string } | null
  let res: { ok: boolean; text: string; kind: string }
  if (!prev || !prev.size) {
    res = { ok: true, text: t('verify_first'), kind: 'first' }
  } else if (prev.size > cp.size) {
    res = { ok: false, text: `${t('verify_shrank')} (${prev.size} → ${cp.size})`, kind: 'failed' }
  } else {
    const root1 = Uint8Array.from(atob(prev.root), (ch) => ch.charCodeAt(0))
    let err: string | null
    if (prev.size === cp.size) {
      err = await verifyConsistency(prev.size, cp.size, [], root1, cp.root)
    } else {
      const p = await c.consistencyProof(prev.size, cp.size, region)
      err = await verifyConsistency(prev.size, cp.size, (p.hashes ?? []).map(b64dec), root1, cp.root)
    }
    res = err === null
      ? { ok: true, text: prev.size === cp.size ? t('verify_same') : `${t('verify_grew')} (${prev.size} → ${cp.size})`, kind: prev.size === cp.size ? 'same' : 'proved' }
      : { ok: false, text: `${t('verify_fork')} (${prev.size} → ${cp.size}): ${err}`, kind: 'failed' }
  }
  if (res.ok) localStorage.setItem(wkey, JSON.stringify({ size: cp.size, root: cp.rootBase64 }))
  return res
}

export async function auditPage(c: Client): Promise<HTMLElement> {
  const vkey = (await c.verifierKey()).trim()
  const regions = await regionsOf(c)
  const rows: (Node | string)[][] = []
  for (const region of regions) {
    let note: string
    try {
      note = await c.checkpoint(region)
    } catch (e) {
      if (e instanceof ProblemError && e.status === 404) continue
      throw e
    }
    const sigOk = await verifyNote(note, vkey)
    let cp: Checkpoint | undefined
    try {
      cp = parseCheckpoint(note)
    } catch {
      cp = undefined
    }
    const w = sigOk && cp ? await witnessCheck(c, region, cp) : { ok: false, text: t('verify_sig_bad'), kind: 'unsigned' }
    const ok = sigOk && !!cp && w.ok
    rows.push([region, cp?.origin ?? '', String(cp?.size ?? '?'), mono(cp?.rootBase64 ?? ''),
      h('span', { class: ok ? 'ok' : 'bad', 'data-verify': ok ? 'ok' : 'bad', 'data-consistency': w.kind }, sigOk ? t('verify_ok') : t('verify_bad'), `; ${w.text}`),
      h('button', { type: 'button', class: 'secondary', 'data-witness': region, onclick: () => download(new Blob([note], { type: 'text/plain' }), `checkpoint-${region}-${cp?.size ?? 0}`) }, t('witness_dl'))])
  }
  return h('section', { 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title' }, t('audit')),
    h('p', {}, t('audit_intro')),
    table('checkpoints', t('checkpoints'), [t('region'), t('log'), t('size'), t('root_hash'), t('verify'), t('witness')], rows, rows.map((r) => String(r[0]))),
    h('h2', {}, t('verifier_key')), h('pre', { id: 'verifier-key' }, vkey))
}

// ---- grants: expiring, unused, over budget

export async function grantsPage(c: Client): Promise<HTMLElement> {
  // Computed on the server, from the whole audit log and the guard's counters.
  const rep = await c.grantUsage()
  const by = new Map(rep.grants.map((g) => [g.id ?? '', g]))
  const pick = (ids: string[]) => ids.map((id) => by.get(id)).filter((g): g is GrantUsage => !!g)
  const row = (g: GrantUsage) => [mono(g.id), g.grantor_org ?? '', g.grantee_principal ? `${g.grantee_org} / ${g.grantee_principal}` : g.grantee_org, list(g.collections), list(g.regions), list(g.purposes),
    h('span', { class: g.state === 'active' ? '' : 'bad', 'data-state': g.state }, g.state), timeEl(g.expires), `${g.budget_per_hour || '—'} / ${g.budget_total || '—'}`,
    h('span', { 'data-k': 'reads' }, String(g.reads)), h('span', { 'data-k': 'records_read' }, String(g.records_read)), timeEl(g.last_used)]
  const heads = [t('id'), t('grantor'), t('grantee'), t('collections'), t('regions'), t('purposes'), t('status'), t('expires'), t('budget'), t('reads'), t('records_read'), t('last_used')]
  const over = pick(rep.over_budget)
  return h('section', { 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title' }, t('grants')),
    h('p', { id: 'grants-asof' }, `${t('computed_server')} `, timeEl(rep.as_of),
      // Only a root admin or an auditor is told the count (every org's events).
      rep.events_scanned === undefined ? '' : ` (${rep.events_scanned} ${t('events_read')})`),
    table('grants-expiring', `${t('expiring')} (${rep.expiring_within})`, heads, pick(rep.expiring).map(row), rep.expiring),
    table('grants-unused', t('unused'), heads, pick(rep.unused).map(row), rep.unused),
    table('grants-over-budget', t('over_budget'), [t('id'), t('grantee'), t('collections'), t('status'), t('budget'), t('records_read'), t('refusals'), t('guard_counters')],
      over.map((g) => { const r = row(g); return [r[0], r[2], r[3], r[6], r[8], r[10], h('span', { 'data-k': 'budget_refusals' }, String(g.budget_refusals)), `${g.records_last_hour ?? 0} / ${g.records_counted ?? 0}`] }), over.map((g) => g.id ?? '')),
    table('grants-all', t('all_grants'), heads, rep.grants.map(row), rep.grants.map((g) => g.id ?? '')))
}
