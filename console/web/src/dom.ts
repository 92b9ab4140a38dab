// Small DOM helpers: elements are built with h(), text is always set as
// text (never as HTML), so nothing from the API can inject markup.
import { lang, t } from './i18n'

type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (v === true) el.setAttribute(k, '')
    else el.setAttribute(k, String(v))
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue
    el.append(c instanceof Node ? c : String(c))
  }
  return el
}

/** zone is the viewer's IANA time zone and its offset name, shown in the header. */
export function zone(): string {
  const z = Intl.DateTimeFormat().resolvedOptions().timeZone
  const off = new Intl.DateTimeFormat(lang(), { timeZoneName: 'shortOffset' }).formatToParts(new Date()).find((p) => p.type === 'timeZoneName')?.value
  return off ? `${z} (${off})` : z
}

/** when formats an RFC 3339 time in the viewer's zone, the zone named. */
export function when(iso: string | undefined | null): string {
  if (!iso) return '—'
  const d = new Date(iso)
  if (isNaN(d.getTime()) || d.getUTCFullYear() < 2) return '—'
  return new Intl.DateTimeFormat(lang(), { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' }).format(d)
}

export function timeEl(iso: string | undefined | null): HTMLElement {
  return iso ? h('time', { datetime: iso }, when(iso)) : h('span', {}, '—')
}

/** table builds an accessible table: a caption, column headers, rows. */
export function table(id: string, caption: string, heads: string[], rows: Child[][], rowKeys?: string[]): HTMLTableElement {
  return h('table', { id },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length === 0
      ? h('tr', {}, h('td', { colspan: heads.length, class: 'empty' }, t('none')))
      : rows.map((r, i) => h('tr', { 'data-key': rowKeys?.[i] }, r.map((c) => h('td', {}, c))))))
}

export function mono(s: string | undefined): HTMLElement {
  return h('code', {}, s ?? '')
}

export function list(xs: string[] | undefined): string {
  return xs && xs.length ? xs.join(', ') : '—'
}

/** status shows a message in the page's live region (read by screen readers). */
export function status(msg: string, kind: 'ok' | 'error' | 'info' = 'info'): void {
  const el = document.getElementById('status')
  if (!el) return
  el.className = `status ${kind}`
  el.textContent = msg
}

/** download saves a blob as a file named name. */
export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob)
  const a = h('a', { href: url, download: name, class: 'hidden' })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}
