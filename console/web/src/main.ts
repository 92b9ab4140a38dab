// The console: sign in with a device key, then the pages, routed by the
// URL's fragment (#/incidents, #/incidents/ID, #/approvals, #/quarantines,
// #/guard, #/audit, #/grants).
import { approvalsPage, auditPage, grantsPage, guardPage, quarantinesPage } from './admin'
import { h, status, zone } from './dom'
import { lang, setLang, t, type Key } from './i18n'
import { incidentPage, incidentsPage, showError } from './incidents'
import type { ProblemError } from '../../../clients/typescript/src/index'
import { dropSession, forget, sessionEnded, sessionEndedEvent, signalEnded, signIn, type Session } from './signin'

const pages: [string, Key][] = [
  ['incidents', 'nav_incidents'], ['approvals', 'nav_approvals'], ['quarantines', 'nav_quarantines'],
  ['guard', 'nav_guard'], ['audit', 'nav_audit'], ['grants', 'nav_grants'],
]

let leave: (() => void)[] = []

function header(s: Session | undefined): HTMLElement {
  const switcher = h('button', { type: 'button', id: 'lang', class: 'secondary', lang: lang() === 'ja' ? 'en' : 'ja', 'aria-label': t('lang_switch_label') }, t('lang_switch'))
  switcher.addEventListener('click', () => {
    setLang(lang() === 'ja' ? 'en' : 'ja')
    void start()
  })
  const who = s ? h('span', { id: 'whoami' }, `${t('signed_in_as')} `, h('strong', {}, s.principal), ` (${s.org})`) : null
  const out = s ? h('button', { type: 'button', class: 'secondary', id: 'forget' }, t('sign_out')) : null
  out?.addEventListener('click', async () => {
    if (!confirm(t('sign_out_confirm'))) return
    await forget()
    location.hash = ''
    location.reload()
  })
  return h('header', { class: 'top' },
    h('a', { href: '#main', class: 'skip' }, t('skip')),
    h('span', { class: 'brand' }, t('title')),
    h('span', { id: 'zone' }, `${t('zone')}: ${zone()}`),
    who, out, switcher)
}

async function route(s: Session, main: HTMLElement): Promise<void> {
  for (const f of leave) f()
  leave = []
  const [, page = 'incidents', arg] = location.hash.split('/')
  document.querySelectorAll('nav a').forEach((a) => {
    if (a.getAttribute('href') === `#/${page}`) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  })
  main.replaceChildren(h('p', { class: 'loading' }, t('loading')))
  main.setAttribute('aria-busy', 'true')
  const again = () => void route(s, main)
  try {
    let el: HTMLElement
    switch (page) {
      case 'incidents':
        el = arg ? await incidentPage(s.client, decodeURIComponent(arg)) : await incidentsPage(s.client)
        break
      case 'approvals':
        el = await approvalsPage(s.client, again)
        break
      case 'quarantines':
        el = await quarantinesPage(s.client, again)
        break
      case 'guard':
        el = await guardPage(s.client, (f) => leave.push(f))
        break
      case 'audit':
        el = await auditPage(s.client)
        break
      case 'grants':
        el = await grantsPage(s.client)
        break
      default:
        el = h('p', {}, `${page}?`)
    }
    main.replaceChildren(el)
    document.title = `${el.querySelector('h1')?.textContent ?? ''} — ${t('title')}`
    main.dataset.page = page
    main.dataset.ready = String(Date.now())
  } catch (e) {
    if (sessionEnded(e)) {
      if (session === s) signalEnded(e) // the sign-in again, not a broken page
      return
    }
    main.replaceChildren(h('p', { class: 'error', role: 'alert' }, String(e)))
    showError(e)
  } finally {
    main.removeAttribute('aria-busy')
  }
}

let session: Session | undefined

// A request found the session ended (a passkey session's time is up, the
// device was revoked): the pages stop (the alert stream too), and the
// console says so above the sign-in; requests stop until one signs in.
window.addEventListener(sessionEndedEvent, (ev) => {
  if (!session) return // shown already
  for (const f of leave) f()
  leave = []
  session = undefined
  window.onhashchange = null
  dropSession()
  void start((ev as CustomEvent<ProblemError>).detail)
})

async function start(ended?: ProblemError): Promise<void> {
  document.documentElement.lang = lang()
  const app = document.getElementById('app')!
  const main = h('main', { id: 'main', tabindex: '-1' })
  if (!session) {
    const notice = ended
      ? h('section', { class: 'card', id: 'session-ended', role: 'alert', 'aria-labelledby': 'session-ended-title' },
        h('h1', { id: 'session-ended-title' }, t('session_ended_title')),
        h('p', {}, ended.code === 'device-expired' ? t('session_expired') : t('session_ended')),
        h('p', { class: 'help' }, `${ended.code}: ${ended.detail ?? ended.title}`))
      : null
    app.replaceChildren(header(undefined), h('div', { class: 'signin' }, notice, main))
    session = await signIn(main)
  }
  const s = session
  const nav = h('nav', { 'aria-label': 'sekisho' }, h('ul', {}, pages.map(([p, k]) => h('li', {}, h('a', { href: `#/${p}`, id: `nav-${p}` }, t(k))))))
  app.replaceChildren(header(s), h('div', { class: 'layout' }, nav, h('div', { class: 'content' }, h('div', { id: 'status', role: 'status', 'aria-live': 'polite' }), main)))
  window.onhashchange = () => {
    status('')
    void route(s, main)
  }
  await route(s, main)
}

void start()
