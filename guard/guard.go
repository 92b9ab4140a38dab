package guard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho"
)

// Directory is what the guard reads of the access control plane: a
// grant's budgets, an org's time zone and its admins (access.Directory
// implements it). The guard never decodes access's stored objects.
type Directory interface {
	Grant(ctx context.Context, id string) (sekisho.GrantEntry, error)
	Org(ctx context.Context, id string) (sekisho.OrgEntry, error)
	OrgAdmins(ctx context.Context, org string) ([]string, error)
}

// Config configures a Guard.
type Config struct {
	Store sekisho.Store
	// Directory reads grants, orgs and org admins (access.NewDirectory over
	// the same store). Nil: no grant budgets, no org time zones (Location
	// for all) and quarantine alerts without a list of admins.
	Directory Directory
	// Logs are the audit logs whose decisions the guard folds in at start
	// and from other nodes: every log of the deployment (the default
	// store's and each region's, audit.Logs.Stores), so that a budget counts
	// the reads of every region. Empty means Store's own log alone.
	Logs []sekisho.LogStore
	// Audit receives the guard's own events (rule changes, quarantines,
	// lifts); the vault audits the decisions.
	Audit    sekisho.Auditor
	RootOrg  string // the org whose admins change rules (default "operator")
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *prometheus.Registry // receives sekisho_guard_rule_fired_total
	Webhooks []Webhook
	// Location is the time zone of the off-hours baseline of an org that
	// has not set its own (the org's time_zone); default the server's
	// local zone.
	Location *time.Location
	// Budgets are the default budgets per role (default DefaultBudgets).
	Budgets map[string]Budget
	// CacheTTL bounds how old rules and quarantine state may be (default
	// 500ms, at most one second).
	CacheTTL time.Duration
	// SyncInterval is how often the node folds in other nodes' decisions
	// from the audit log and saves learned profiles (default 1s).
	SyncInterval time.Duration
	// MaxRequestIDs bounds the ids of the requests charged on this node
	// that the guard remembers until their events are folded in (see
	// ownGrace; default DefaultMaxRequestIDs).
	MaxRequestIDs int
	// WebhookAttempts and WebhookBackoff tune delivery (default 8, 1s).
	WebhookAttempts int
	WebhookBackoff  time.Duration
}

// Guard implements vault.Guard.
type Guard struct {
	cfg   Config
	store sekisho.Store
	log   *slog.Logger
	fired *prometheus.CounterVec
	alert *alerter

	rmu       sync.Mutex
	ruleCache *ruleSet

	qmu    sync.Mutex
	qcache map[string]qstate

	zmu    sync.Mutex
	zcache map[string]zoneEntry // org -> its time zone

	mu       sync.Mutex
	windows  map[string]*window      // "p:"+principal, "d:"+device, "g:"+grant, "l:"+principal (lookups)
	denials  map[string]*window      // "p:"+principal
	profiles map[string]*profile     // principal
	lookups  map[string][]lookupVal  // principal -> recent lookup values
	grants   map[string]grantBudget  // grant id -> budget (cached)
	charges  map[string]*grantCharge // grant id -> records read under it on this node
	own      *recentIDs              // request ids charged here (skipped when tailing)
	logs     []sekisho.LogStore      // the logs folded in
	tails    map[string]uint64       // per log (by region): next audit index to fold in
	swept    time.Time               // last sweepLocked
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

type grantBudget struct {
	b  Budget
	at time.Time
}

// New returns a Guard. Call Start to rebuild its counters from the audit
// log and to follow the other nodes; Close to stop.
func New(cfg Config) *Guard {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RootOrg == "" {
		cfg.RootOrg = "operator"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Budgets == nil {
		cfg.Budgets = DefaultBudgets
	}
	if cfg.CacheTTL <= 0 || cfg.CacheTTL > time.Second {
		cfg.CacheTTL = 500 * time.Millisecond
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Second
	}
	if cfg.WebhookAttempts <= 0 {
		cfg.WebhookAttempts = 8
	}
	if cfg.WebhookBackoff <= 0 {
		cfg.WebhookBackoff = time.Second
	}
	g := &Guard{cfg: cfg, store: cfg.Store, log: cfg.Logger, qcache: map[string]qstate{}, zcache: map[string]zoneEntry{},
		windows: map[string]*window{}, denials: map[string]*window{}, profiles: map[string]*profile{},
		lookups: map[string][]lookupVal{}, grants: map[string]grantBudget{}, charges: map[string]*grantCharge{}, own: newRecentIDs(cfg.MaxRequestIDs),
		logs: cfg.Logs, tails: map[string]uint64{}}
	if len(g.logs) == 0 {
		g.logs = []sekisho.LogStore{{Store: cfg.Store}}
	}
	g.fired = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sekisho_guard_rule_fired_total",
		Help: "Guard rules that fired, by rule and action."}, []string{"rule", "action"})
	for _, r := range DefaultRules {
		for _, a := range Actions {
			g.fired.WithLabelValues(r.ID, a) // every series exists from the start
		}
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(g.fired)
	}
	g.alert = &alerter{hooks: cfg.Webhooks, log: cfg.Logger, q: make(chan Alert, 4096), client: &http.Client{Timeout: 10 * time.Second},
		maxAttempts: cfg.WebhookAttempts, backoff: cfg.WebhookBackoff, now: cfg.Now, done: make(chan struct{})}
	return g
}

func (g *Guard) now() time.Time { return g.cfg.Now() }

// Start rebuilds the windows from the last day of audit events, then follows
// the audit log in the background: every SyncInterval it folds in the
// decisions other nodes recorded, and saves learned profiles.
func (g *Guard) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	g.stop = cancel
	if err := g.rebuild(ctx); err != nil {
		cancel()
		return err
	}
	g.wg.Add(2)
	go func() { defer g.wg.Done(); g.alert.run(ctx) }()
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(g.cfg.SyncInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := g.Sync(ctx); err != nil && ctx.Err() == nil {
					g.log.Warn("guard sync failed", "error", err.Error())
				}
			}
		}
	}()
	return nil
}

// Close stops the background work.
func (g *Guard) Close() {
	if g.stop != nil {
		g.stop()
		g.wg.Wait()
	}
}

// rebuild finds the first audit event of the last day in every log and
// folds in everything from there.
func (g *Guard) rebuild(ctx context.Context) error {
	since := g.now().Add(-24 * time.Hour)
	for _, l := range g.logs {
		first, err := l.Store.QueryAudit(ctx, sekisho.AuditFilter{Since: since, Limit: 1})
		if err != nil {
			return fmt.Errorf("guard: rebuild from the audit log %s: %w", logName(l.Region), err)
		}
		tail := uint64(0)
		if len(first) > 0 {
			tail = first[0].Index
		} else if tail, err = l.Store.AuditSize(ctx); err != nil {
			return fmt.Errorf("guard: rebuild from the audit log %s: %w", logName(l.Region), err)
		}
		g.mu.Lock()
		g.tails[l.Region] = tail
		g.mu.Unlock()
	}
	return g.Sync(ctx)
}

func logName(region string) string {
	if region == "" {
		return "default"
	}
	return region
}

// ownGrace is how long after it was charged a request's events are in
// the log: they are appended before it is answered, and serve answers
// within its write timeout (60 s). A request charged here is remembered,
// so that its events (one per region's log and per owning org) are not
// counted again when they are folded in, until a Sync that began ownGrace
// after it folded in every log: its events were among them.
const ownGrace = 2 * time.Minute

// Sync folds in the audit events appended to every log since the last
// call, except the ones this node charged itself, and saves changed profiles.
func (g *Guard) Sync(ctx context.Context) error {
	began := g.now()
	var errs []error
	for _, l := range g.logs {
		if err := g.syncLog(ctx, l); err != nil {
			errs = append(errs, fmt.Errorf("guard: follow the audit log %s: %w", logName(l.Region), err))
		}
	}
	g.mu.Lock()
	if len(errs) == 0 {
		// Every log was read to its end as of began: the requests charged
		// ownGrace before it had their events there, folded in (skipped)
		// now. While a log cannot be read, nothing is forgotten by time
		// (the count bound, MaxRequestIDs, still holds).
		g.own.expire(began.Add(-ownGrace).UnixNano())
	}
	g.sweepLocked(g.now())
	g.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return g.saveProfiles(ctx)
}

// syncLog folds in the events of one log from its tail. It reads a page of
// the events' refs first, and the events only from the page's first one
// decided elsewhere to its last: the events of the requests decided here
// were counted when they were decided, and on a node that serves the
// requests they are nearly all of them (reading and decoding them was most
// of a sync's cost). Two queries a page at most, however the nodes'
// events interleave.
func (g *Guard) syncLog(ctx context.Context, l sekisho.LogStore) error {
	for {
		g.mu.Lock()
		from := g.tails[l.Region]
		g.mu.Unlock()
		// A store without refs gives the page's events at once.
		var refs []sekisho.AuditRef
		var page []sekisho.AuditEntry
		var err error
		if lister, ok := l.Store.(sekisho.AuditRefLister); ok {
			refs, err = lister.AuditRefs(ctx, from, syncPage)
		} else if page, err = l.Store.AuditLeaves(ctx, from, syncPage); err == nil {
			refs = make([]sekisho.AuditRef, len(page))
			for i, e := range page {
				refs[i] = sekisho.AuditRef{Index: e.Index, RequestID: e.RequestID}
			}
		}
		if err != nil {
			return err
		}
		g.mu.Lock()
		n, first, last := 0, -1, -1 // refs contiguous from the tail; the span of others' events
		for i, r := range refs {
			if r.Index != from+uint64(i) {
				break
			}
			n = i + 1
			if r.RequestID == "" || !g.own.has(r.RequestID) {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		g.mu.Unlock()
		var entries []sekisho.AuditEntry
		if first >= 0 && page != nil {
			entries = page[first : last+1]
		} else if first >= 0 {
			if entries, err = l.Store.AuditLeaves(ctx, from+uint64(first), last-first+1); err != nil {
				return err
			}
		}
		skip := n // this node's events before the span (all of the page's without one)
		if first >= 0 {
			skip = first
		}
		g.mu.Lock()
		if g.tails[l.Region] == from {
			g.tails[l.Region] = from + uint64(skip)
		}
		for _, e := range entries {
			if e.Index != g.tails[l.Region] {
				continue
			}
			g.tails[l.Region]++
			if e.RequestID != "" && g.own.has(e.RequestID) {
				continue // counted when it was decided here
			}
			ev, err := sekisho.UnmarshalEvent(e.Leaf)
			if err != nil {
				continue
			}
			g.foldLocked(ev)
		}
		if first >= 0 && g.tails[l.Region] == from+uint64(last)+1 {
			g.tails[l.Region] = from + uint64(n) // and after it
		}
		g.mu.Unlock()
		if len(refs) < syncPage || n < len(refs) {
			return nil
		}
	}
}

// syncPage is how many refs syncLog reads at a time.
const syncPage = 1000

// foldLocked counts a decision recorded by another node (or before a restart).
func (g *Guard) foldLocked(ev sekisho.Event) {
	if ev.Principal == "" || ev.RequestID == "" {
		return
	}
	if g.own.has(ev.RequestID) {
		// Counted when it was decided here. Not forgotten yet: the same
		// request has an event in each region's log it touched (and one per
		// owning org), all counted by the one charge.
		return
	}
	at := ev.Time.UnixNano()
	switch {
	case ev.Decision == sekisho.Deny && isDataAction(ev.Action):
		g.win(g.denials, "p:"+ev.Principal).add(at, []string{ev.RequestID})
	case ev.Decision == sekisho.Allow && isReadAction(ev.Action) && len(ev.Records) > 0:
		ids := subjects(ev.Collection, ev.Records)
		g.win(g.windows, "p:"+ev.Principal).add(at, ids)
		if ev.Device != "" {
			g.win(g.windows, "d:"+ev.Device).add(at, ids)
		}
		if gid := grantOf(ev.Policy); gid != "" {
			g.win(g.windows, "g:"+gid).add(at, ids)
		}
		if ev.Action == sekisho.ActionLookup {
			g.win(g.windows, "l:"+ev.Principal).add(at, ids)
		}
	}
}

func isReadAction(a string) bool {
	return a == sekisho.ActionRead || a == sekisho.ActionBatchGet || a == sekisho.ActionLookup || a == sekisho.ActionDetokenize
}

func isDataAction(a string) bool {
	return isReadAction(a) || a == sekisho.ActionCreate || a == sekisho.ActionUpdate || a == sekisho.ActionErase
}

// grantOf returns the grant id of an audit event's policy ("grant:g-…", first
// of a list), or "": events from the log carry the policy as a string.
func grantOf(policy string) string {
	first, _, _ := strings.Cut(policy, ",")
	if id, ok := strings.CutPrefix(first, "grant:"); ok {
		return id
	}
	return ""
}

// subjects names the data subjects of records: one record is one subject of
// one collection.
func subjects(collection string, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = collection + "/" + id
	}
	return out
}

func (g *Guard) win(m map[string]*window, key string) *window {
	w := m[key]
	if w == nil {
		w = newWindow()
		m[key] = w
	}
	return w
}

// firing is one rule that fired on a request.
type firing struct {
	rule   *Rule
	detail string
}

// Check implements vault.Guard: it runs after authorisation and before any
// data is opened, on allowed and denied decisions alike.
func (g *Guard) Check(ctx context.Context, req sekisho.AccessRequest, recs []*sekisho.SealedRecord, d sekisho.Decision) sekisho.Decision {
	c := req.Caller
	rules := g.rules(ctx)
	// A lookup's value first, matched or not: a quarantined caller and an
	// enumeration are refused before anything of the records counts.
	if req.Lookup != nil {
		if refusal, ok := g.observeLookup(ctx, c, req.Collection, req.Lookup, rules); !ok {
			return refusal
		}
		if len(recs) == 0 {
			return d // nothing matched: nothing else to see
		}
	}
	// Honeytokens next: a decoy touched quarantines, whatever else holds,
	// and the request returns nothing.
	for _, r := range recs {
		if r.Honeytoken {
			rule := rules[RuleHoneytoken]
			detail := fmt.Sprintf("decoy record %s/%s touched (%s)", req.Collection, r.ID, req.Action)
			var dataOrgs []string
			if r.Org != c.Org {
				// Another org's decoy: the grantee's admins read this reason
				// (quarantine, audit detail), and must not learn which of the
				// grantor's records are decoys. The grantor's admin must lift
				// the quarantine too.
				detail = fmt.Sprintf("a decoy record of org %s touched (%s)", r.Org, req.Action)
				dataOrgs = []string{r.Org}
			}
			g.fireOn(ctx, c, rule, ActionQuarantine, detail, dataOrgs)
			return sekisho.Decision{Policy: "guard:" + RuleHoneytoken, Reason: "quarantined by the guard", Code: sekisho.EForbidden, Type: ProblemQuarantined}
		}
	}
	if err := g.Quarantined(ctx, c.Principal, c.Device, time.Time{}); err != nil {
		return sekisho.Decision{Policy: "guard:quarantine", Reason: sekisho.Message(err), Code: sekisho.EForbidden, Type: ProblemQuarantined}
	}
	// The grant's own budget: another org's records read under a grant
	// are charged to it, and once it is used the request is refused as
	// the grant's (a denial like any other from here on).
	if d.Allow && d.Grant != "" {
		d = g.chargeGrant(ctx, c, d, recs)
	}
	now := g.now()
	at := now.UnixNano()
	if !d.Allow {
		g.mu.Lock()
		u := g.win(g.denials, "p:"+c.Principal).usage(at, []string{c.RequestID})
		g.win(g.denials, "p:"+c.Principal).add(at, []string{c.RequestID})
		g.own.add(c.RequestID, at)
		g.mu.Unlock()
		if r := rules[RuleDeniedBurst]; r.Enabled && float64(u.RecordsMinute) > r.param("denials_per_minute", 10) {
			g.fire(ctx, c, r, r.Action, fmt.Sprintf("%d denied requests in the last minute", u.RecordsMinute))
		}
		return d
	}
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	subj := subjects(req.Collection, ids)
	// The other orgs whose records these are (a grantee reading a
	// grantor's): a quarantine earned here needs their admins' lift too.
	var dataOrgs []string
	for _, r := range recs {
		if r.Org != c.Org && !slices.Contains(dataOrgs, r.Org) {
			dataOrgs = append(dataOrgs, r.Org)
		}
	}
	sort.Strings(dataOrgs)
	var fired []firing
	// Volume budgets: the principal's role, its device, and the grant used.
	grant := d.Grant
	var gb Budget
	if grant != "" {
		gb = g.grantBudget(ctx, grant)
	}
	rb := roleBudget(g.cfg.Budgets, c.Roles)
	g.mu.Lock()
	var over string
	if x := rb.exceeded(g.win(g.windows, "p:"+c.Principal).usage(at, subj)); x != "" {
		over = "principal " + c.Principal + ": " + x
	} else if x := rb.exceeded(g.win(g.windows, "d:"+c.Device).usage(at, subj)); c.Device != "" && x != "" {
		over = "device " + c.Device + ": " + x
	} else if grant != "" {
		if x := gb.exceeded(g.win(g.windows, "g:"+grant).usage(at, subj)); x != "" {
			over = "grant " + grant + ": " + x
		}
	}
	var lookupSubj int64
	if req.Action == sekisho.ActionLookup {
		lookupSubj = g.win(g.windows, "l:"+c.Principal).usage(at, subj).SubjectsMinute
	}
	g.mu.Unlock()
	if over != "" {
		r := rules[RuleBudget]
		act := r.Action
		if !r.Enabled {
			act = ActionLog // a budget always holds; the rule only says what else happens
		}
		g.fireOn(ctx, c, r, act, "volume budget exceeded: "+over, dataOrgs)
		typ := ProblemBudget
		if act == ActionStepUp {
			typ = ProblemStepUp
		} else if act == ActionQuarantine {
			typ = ProblemQuarantined
		}
		return sekisho.Decision{Policy: "guard:" + RuleBudget, Reason: "volume budget exceeded (" + over + ")", Code: sekisho.EForbidden, Type: typ}
	}
	// Anomaly rules.
	loc := g.orgLocation(ctx, c.Org)
	fired = append(fired, g.anomalies(ctx, req, rules, now, loc, lookupSubj)...)
	worst := ""
	var reasons []string
	for _, f := range fired {
		g.fireOn(ctx, c, f.rule, f.rule.Action, f.detail, dataOrgs)
		reasons = append(reasons, f.rule.ID+": "+f.detail)
		if severity(f.rule.Action) > severity(worst) {
			worst = f.rule.Action
		}
	}
	switch worst {
	case ActionQuarantine:
		return sekisho.Decision{Policy: "guard:" + fired[0].rule.ID, Reason: "quarantined by the guard (" + strings.Join(reasons, "; ") + ")", Code: sekisho.EForbidden, Type: ProblemQuarantined}
	case ActionStepUp:
		return sekisho.Decision{Policy: "guard:step-up", Code: sekisho.EForbidden, Type: ProblemStepUp,
			Reason: "this request is unusual for you (" + strings.Join(reasons, "; ") + "); ask an admin of your org for an approved access request, then retry"}
	}
	// Allowed: charge the budgets and learn.
	g.mu.Lock()
	g.win(g.windows, "p:"+c.Principal).add(at, subj)
	if c.Device != "" {
		g.win(g.windows, "d:"+c.Device).add(at, subj)
	}
	if grant != "" {
		g.win(g.windows, "g:"+grant).add(at, subj)
	}
	if req.Action == sekisho.ActionLookup {
		g.win(g.windows, "l:"+c.Principal).add(at, subj)
	}
	g.own.add(c.RequestID, at)
	g.learnLocked(c, now, loc)
	g.mu.Unlock()
	if len(reasons) > 0 {
		d.Reason += "; guard: " + strings.Join(reasons, "; ")
	}
	return d
}

func severity(action string) int {
	for i, a := range Actions {
		if a == action {
			return i + 1
		}
	}
	return 0
}

// fire records that rule fired: a log line, the metric, and per action an
// alert or a quarantine.
func (g *Guard) fire(ctx context.Context, c sekisho.Caller, rule *Rule, action, detail string) {
	g.fireOn(ctx, c, rule, action, detail, nil)
}

// fireOn is fire on a request that touched the records of dataOrgs (orgs
// other than c's): a quarantine it makes needs their admins' lift too.
func (g *Guard) fireOn(ctx context.Context, c sekisho.Caller, rule *Rule, action, detail string, dataOrgs []string) {
	g.fired.WithLabelValues(rule.ID, action).Inc()
	g.log.LogAttrs(ctx, slog.LevelWarn, "guard rule fired", slog.String("rule", rule.ID), slog.String("action", action),
		slog.String("principal", c.Principal), slog.String("org", c.Org), slog.String("device", c.Device),
		slog.String("source", c.Source), slog.String("purpose", c.Purpose), slog.String("request_id", c.RequestID), slog.String("detail", detail))
	if action == ActionLog {
		return
	}
	if action == ActionQuarantine {
		if err := g.quarantine(ctx, c, rule.ID, detail, dataOrgs); err != nil {
			g.log.Error("guard quarantine could not be stored", "principal", c.Principal, "error", err.Error())
		}
	}
	g.alert.send(Alert{ID: newAlertID(), Time: g.now().UTC(), Rule: rule.ID, Action: action, Org: c.Org, Principal: c.Principal,
		Device: c.Device, Source: c.Source, Purpose: c.Purpose, RequestID: c.RequestID, Detail: detail, OrgAdmins: g.orgAdmins(ctx, c.Org, action), DataOrgs: dataOrgs})
}

// orgAdmins lists the admins of org to alert (for quarantines; other alerts
// go to the webhooks without a list, to keep the request path short).
func (g *Guard) orgAdmins(ctx context.Context, org, action string) []string {
	if action != ActionQuarantine {
		return nil
	}
	if g.cfg.Directory == nil {
		return nil
	}
	out, err := g.cfg.Directory.OrgAdmins(ctx, org)
	if err != nil {
		return nil
	}
	return out
}

// grantBudget returns a grant's budget (cached for the cache TTL).
func (g *Guard) grantBudget(ctx context.Context, id string) Budget {
	now := g.now()
	g.mu.Lock()
	c, ok := g.grants[id]
	g.mu.Unlock()
	if ok && now.Sub(c.at) < g.cfg.CacheTTL && now.Sub(c.at) >= 0 {
		return c.b
	}
	var b Budget
	var gr sekisho.GrantEntry
	var err error
	if g.cfg.Directory != nil {
		gr, err = g.cfg.Directory.Grant(ctx, id)
	}
	if err == nil {
		b = Budget{RecordsPerHour: gr.BudgetPerHour, RecordsTotal: gr.BudgetTotal}
	} else if ok {
		return c.b
	}
	g.mu.Lock()
	g.grants[id] = grantBudget{b: b, at: now}
	g.mu.Unlock()
	return b
}

// grantCharge counts the records read under one grant on this node: a
// rolling hour from its first use, and a total since the node started.
// (Per node, not shared: with n nodes a grant may read up to n times its
// budget; the guard's windows, folded in from every node's audit log, are
// the stronger control and refuse with budget-exceeded.)
type grantCharge struct {
	hour  time.Time
	used  int64
	total int64
}

// ProblemGrantBudget is the refusal of a request under a grant whose own
// budget (budget_per_hour, budget_total) is used.
const ProblemGrantBudget = "grant-budget-exceeded"

// chargeGrant charges the records of other orgs than c's to the grant d
// was decided under, one by one, and returns d, or the grant's refusal
// once its budget is used (the records charged before stay charged).
func (g *Guard) chargeGrant(ctx context.Context, c sekisho.Caller, d sekisho.Decision, recs []*sekisho.SealedRecord) sekisho.Decision {
	n := 0
	for _, r := range recs {
		if r.Org != c.Org {
			n++
		}
	}
	if n == 0 {
		return d
	}
	b := g.grantBudget(ctx, d.Grant)
	if b.RecordsPerHour <= 0 && b.RecordsTotal <= 0 {
		return d
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	u := g.charges[d.Grant]
	if u == nil {
		u = &grantCharge{hour: now}
		g.charges[d.Grant] = u
	}
	for range n {
		if now.Sub(u.hour) >= time.Hour {
			u.hour, u.used = now, 0
		}
		if (b.RecordsPerHour > 0 && u.used >= b.RecordsPerHour) || (b.RecordsTotal > 0 && u.total >= b.RecordsTotal) {
			return sekisho.Decision{Policy: "grant:" + d.Grant, Type: ProblemGrantBudget, Code: sekisho.EForbidden,
				Reason: fmt.Sprintf("grant %s has used its volume budget (%d records per hour, %d in total)", d.Grant, b.RecordsPerHour, b.RecordsTotal)}
		}
		u.used++
		u.total++
	}
	return d
}

// Usage returns the current counters of a key ("p:"+principal,
// "d:"+device, "g:"+grant).
func (g *Guard) Usage(key string) Usage {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.windows[key]
	if w == nil {
		return Usage{}
	}
	u := w.usage(g.now().UnixNano(), nil)
	u.SubjectsTotal = w.subjectsTotal()
	return u
}

// NewNodeID returns a random id for log lines.
func NewNodeID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
