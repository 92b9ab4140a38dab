// Incidents: the list, and one incident with its scope (charts by country,
// collection and classification), the suspects' timeline, the notification
// lists per region and the regulator reports.
import type { AuditEventEntry, Client, Incident, ReportKind, Scope } from '../../../clients/typescript/src/index'
import { barChart } from './charts'
import { sessionEnded, signalEnded } from './signin'
import { download, h, list, mono, status, table, timeEl } from './dom'
import { t } from './i18n'

export async function incidentsPage(c: Client): Promise<HTMLElement> {
  const incs = await c.listIncidents()
  incs.sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? ''))
  return h('section', { 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title' }, t('incidents')),
    table('incidents', t('incidents'), [t('id'), t('cause'), t('suspects'), t('window'), t('created'), t('created_by')],
      incs.map((i) => [
        h('a', { href: `#/incidents/${encodeURIComponent(i.id ?? '')}`, 'data-incident': i.id }, i.id ?? ''),
        i.cause ?? '—',
        suspects(i),
        h('span', {}, timeEl(i.since), ' – ', timeEl(i.until)),
        timeEl(i.created_at),
        i.created_by ?? '—',
      ]), incs.map((i) => i.id ?? '')))
}

function suspects(i: Incident): string {
  return [...(i.principals ?? []), ...(i.devices ?? []).map((d) => d.slice(0, 10) + '…'), ...(i.orgs ?? []).map((o) => `org ${o}`)].join(', ') || '—'
}

const colors = { exposed: '#b3261e', fields: '#e8a33d', possible: '#5b7db1', denied: '#6b6b6b' }

function num(k: string, v: number | undefined): HTMLElement {
  return h('div', { class: 'stat' }, h('dt', {}, t(k as 'subjects_exposed')), h('dd', { 'data-k': k }, String(v ?? 0)))
}

export async function incidentPage(c: Client, id: string): Promise<HTMLElement> {
  const [inc, scope] = await Promise.all([c.getIncident(id), c.scope(id)])
  const sec = h('section', { 'aria-labelledby': 'page-title' },
    h('p', {}, h('a', { href: '#/incidents' }, `← ${t('incidents')}`)),
    h('h1', { id: 'page-title' }, `${t('incident')} `, mono(inc.id)),
    h('dl', { class: 'meta' },
      h('dt', {}, t('cause')), h('dd', {}, inc.cause ?? '—'),
      h('dt', {}, t('suspects')), h('dd', {}, suspects(inc)),
      h('dt', {}, t('window')), h('dd', {}, timeEl(scope.window?.since ?? inc.since), ' – ', timeEl(scope.window?.until ?? inc.until))),
    h('h2', {}, t('scope')),
    h('dl', { class: 'stats', id: 'scope-numbers' },
      num('subjects_exposed', scope.subjects_exposed), num('fields_exposed', scope.fields_exposed),
      num('subjects_possible', scope.subjects_possible), num('denied_attempts', scope.denied_attempts),
      num('worst_case_subjects', scope.worst_case_subjects)),
    scopeCharts(scope),
    h('h2', {}, t('reports')), reports(c, id),
    h('h2', {}, t('notification_lists')), h('p', {}, t('notification_intro')), await notificationLists(c, id, scope),
    h('h2', {}, t('timeline')), await timeline(c, inc, scope))
  return sec
}

function scopeCharts(s: Scope): HTMLElement {
  // By country: the regions' countries (a region is in one country).
  const byCountry = new Map<string, { exposed: number; fields: number; possible: number; regions: string[] }>()
  for (const [region, r] of Object.entries(s.by_region ?? {})) {
    const k = r.country || region
    const e = byCountry.get(k) ?? { exposed: 0, fields: 0, possible: 0, regions: [] }
    e.exposed += r.subjects_exposed ?? 0
    e.fields += r.fields_exposed ?? 0
    e.possible += r.subjects_possible ?? 0
    e.regions.push(region)
    byCountry.set(k, e)
  }
  const countries = [...byCountry.keys()].sort()
  const colls = Object.keys(s.by_collection ?? {}).sort()
  const classes = Object.keys(s.by_classification ?? {}).sort()
  const cell = (k: string, v: number | undefined) => h('span', { 'data-k': k }, String(v ?? 0))
  return h('div', { class: 'charts' },
    h('figure', {},
      h('figcaption', {}, t('by_country')),
      barChart('chart-country', t('by_country'), countries, [
        { label: t('persons'), values: countries.map((k) => byCountry.get(k)!.exposed), color: colors.exposed },
        { label: t('field_values'), values: countries.map((k) => byCountry.get(k)!.fields), color: colors.fields },
        { label: t('possible'), values: countries.map((k) => byCountry.get(k)!.possible), color: colors.possible }]),
      table('by-country', t('by_country'), [t('country'), t('region'), t('persons'), t('field_values'), t('possible')],
        countries.map((k) => { const e = byCountry.get(k)!; return [k, e.regions.join(', '), cell('subjects_exposed', e.exposed), cell('fields_exposed', e.fields), cell('subjects_possible', e.possible)] }),
        countries)),
    h('figure', {},
      h('figcaption', {}, t('by_collection')),
      barChart('chart-collection', t('by_collection'), colls, [
        { label: t('persons'), values: colls.map((k) => s.by_collection[k]!.subjects_exposed ?? 0), color: colors.exposed },
        { label: t('possible'), values: colls.map((k) => s.by_collection[k]!.subjects_possible ?? 0), color: colors.possible },
        { label: t('denied'), values: colls.map((k) => s.by_collection[k]!.denied_attempts ?? 0), color: colors.denied }]),
      table('by-collection', t('by_collection'), [t('collection'), t('persons'), t('field_values'), t('possible'), t('denied'), t('fields')],
        colls.map((k) => { const e = s.by_collection[k]!; return [k, cell('subjects_exposed', e.subjects_exposed), cell('fields_exposed', e.fields_exposed), cell('subjects_possible', e.subjects_possible), cell('denied_attempts', e.denied_attempts), list(e.fields)] }),
        colls)),
    h('figure', {},
      h('figcaption', {}, t('by_classification')),
      barChart('chart-classification', t('by_classification'), classes, [
        { label: t('persons'), values: classes.map((k) => s.by_classification[k]!.subjects_exposed ?? 0), color: colors.exposed },
        { label: t('field_values'), values: classes.map((k) => s.by_classification[k]!.fields_exposed ?? 0), color: colors.fields }]),
      table('by-classification', t('by_classification'), [t('classification'), t('persons'), t('field_values'), t('fields')],
        classes.map((k) => { const e = s.by_classification[k]!; return [k, cell('subjects_exposed', e.subjects_exposed), cell('fields_exposed', e.fields_exposed), list(e.fields)] }),
        classes)))
}

const reportKinds: ReportKind[] = ['appi', 'pdpa', 'pdp-id', 'pdpa-tw', 'gdpr']

function reports(c: Client, id: string): HTMLElement {
  const kind = h('select', { id: 'report-kind' }, reportKinds.map((k) => h('option', { value: k }, k)))
  const lang = h('select', { id: 'report-lang' }, h('option', { value: '' }, '—'), h('option', { value: 'ja' }, '日本語'), h('option', { value: 'en' }, 'English'), h('option', { value: 'th' }, 'ไทย'))
  const out = h('p', { id: 'report-status', role: 'status', 'aria-live': 'polite' })
  const get = async (format: 'pdf' | 'md') => {
    const k = kind.value as ReportKind
    const l = (lang.value || undefined) as 'ja' | 'en' | 'th' | undefined
    out.textContent = t('loading')
    try {
      const blob = await c.report(id, k, format, l)
      const name = `${k}-${id}${l ? '-' + l : ''}.${format}`
      download(blob, name)
      out.textContent = `${t('downloaded')}: ${name} (${blob.size} B)`
      out.dataset.file = name
    } catch (e) {
      out.textContent = String(e)
    }
  }
  return h('div', { class: 'row' },
    h('label', { for: 'report-kind' }, t('report_kind')), kind,
    h('label', { for: 'report-lang' }, t('report_lang')), lang,
    h('button', { type: 'button', id: 'dl-pdf', onclick: () => get('pdf') }, t('download_pdf')),
    h('button', { type: 'button', id: 'dl-md', onclick: () => get('md') }, t('download_md')),
    out)
}

// parseCSV reads the simple CSV the API writes (RFC 4180 quoting).
export function parseCSV(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = [], f = '', q = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (q) {
      if (ch === '"' && text[i + 1] === '"') { f += '"'; i++ } else if (ch === '"') q = false; else f += ch
    } else if (ch === '"') q = true
    else if (ch === ',') { row.push(f); f = '' } else if (ch === '\n') { row.push(f); rows.push(row); row = []; f = '' } else if (ch !== '\r') f += ch
  }
  if (f !== '' || row.length) { row.push(f); rows.push(row) }
  return rows
}

async function notificationLists(c: Client, id: string, s: Scope): Promise<HTMLElement> {
  const regions = Object.keys(s.by_region ?? {}).sort()
  const box = h('div', { id: 'notification-lists' })
  for (const region of regions) {
    const csv = await c.notificationList(id, region)
    const rows = parseCSV(csv)
    const head = rows.shift() ?? []
    const cols = ['collection', 'record_id', 'status', 'fields_exposed', 'first_time', 'last_time'].map((k) => head.indexOf(k))
    box.append(h('details', { 'data-region': region },
      h('summary', {}, `${region} (${s.by_region[region]?.country ?? ''}): `, h('span', { 'data-k': 'rows' }, String(rows.length)), ` ${t('rows')}`),
      h('button', { type: 'button', class: 'secondary', onclick: () => download(new Blob([csv], { type: 'text/csv' }), `notify-${id}-${region}.csv`) }, t('download_csv')),
      table(`notify-${region}`, `${t('notification_lists')}: ${region}`, ['collection', 'record_id', 'status', 'fields_exposed', 'first_time', 'last_time'],
        rows.slice(0, 50).map((r) => cols.map((i, j) => (j >= 4 && r[i] ? timeEl(r[i]) : r[i] ?? ''))))))
  }
  if (regions.length === 0) box.append(h('p', {}, t('none')))
  return box
}

async function timeline(c: Client, inc: Incident, s: Scope): Promise<HTMLElement> {
  const since = s.window?.since ?? inc.since
  const until = s.window?.until ?? inc.until
  const events: AuditEventEntry[] = []
  const queries = [...(inc.principals ?? []).map((p) => ({ principal: p })), ...(inc.devices ?? []).map((d) => ({ device: d }))]
  const seen = new Set<string>()
  for (const q of queries) {
    let from: number | undefined, fromRegion: string | undefined
    for (let page = 0; page < 5; page++) {
      const r = await c.auditEvents({ ...q, since, until, region: 'all', limit: 500, from, from_region: fromRegion })
      for (const e of r.events ?? []) {
        const k = `${e.region ?? ''}/${e.index}`
        if (!seen.has(k)) { seen.add(k); events.push(e) }
      }
      if (r.next === undefined || r.next === null || (r.events ?? []).length === 0) break
      from = r.next
      fromRegion = r.next_region
    }
  }
  events.sort((a, b) => (a.event?.time ?? '').localeCompare(b.event?.time ?? ''))
  return table('timeline', t('timeline'), [t('time'), t('principal_col'), t('action'), t('collection'), t('records'), t('decision'), t('reason')],
    events.slice(0, 300).map((e) => [timeEl(e.event?.time), e.event?.principal ?? '', e.event?.action ?? '', e.event?.collection ?? '',
      String(e.event?.records?.length ?? 0), h('span', { class: `decision ${e.event?.decision}` }, e.event?.decision ?? ''), e.event?.reason ?? '']))
}

export function showError(e: unknown): void {
  if (sessionEnded(e)) {
    signalEnded(e) // the console shows the sign-in again
    return
  }
  status(String(e), 'error')
}
