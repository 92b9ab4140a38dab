package report

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/incident"
)

// Object kinds of the guard that the progress report reads (the guard
// package's KindRule, KindHoneytoken and KindQuarantine).
const (
	KindGuardRule  = "guard-rule"
	KindHoneytoken = "honeytoken"
	KindQuarantine = "quarantine"
)

// Progress builds the periodic progress report from the store: the controls
// in place and their coverage. What the store does not hold is marked as not
// available, never estimated.
func Progress(ctx context.Context, st sekisho.Store, cfg Config) (*Report, error) {
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	now := cfg.Now.UTC()
	r := &Report{Kind: KindProgress, Lang: LangEN, Title: "Progress report on the protection of personal data", Controller: cfg.Controller.NameIn(LangEN),
		Law: "Periodic report on the measures the regulator demanded (for Japan: the PPC's guidance and recommendation under APPI arts. 147 and 148)", Recipient: "The regulator that asked for regular progress reports",
		GeneratedAt: now, Required: true, Because: []string{"the regulator asked for regular reports of progress"}, Deadline: []Deadline{}}

	// Encryption coverage: every record the store holds is sealed (the store
	// has no column for a plaintext value), so coverage is all live records.
	schemas, err := st.ListSchemas(ctx)
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	enc := Table{Title: "Records sealed under a per-record key", Header: []string{"collection", "live records", "sealed", "share"}}
	var total int64
	for _, s := range schemas {
		n, err := st.CountRecords(ctx, s.Collection, "")
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", s.Collection, err)
		}
		total += n
		enc.Rows = append(enc.Rows, []string{s.Collection, fmt.Sprint(n), fmt.Sprint(n), "100%"})
	}
	r.Tables = append(r.Tables, enc)
	r.Items = append(r.Items, Item{Key: "encryption", Title: "Field-level encryption", Source: SourceStore,
		Text: fmt.Sprintf("%d live records in %d collections, all sealed (100%%): the store keeps only ciphertexts, each record under its own data key wrapped by the key of its organisation and region.", total, len(schemas))})

	// Devices and principals.
	devices, err := decodeAll[access.Device](ctx, st, access.KindDevice)
	if err != nil {
		return nil, err
	}
	dc := map[string]int{}
	for _, d := range devices {
		dc[d.Status]++
	}
	principals, err := decodeAll[access.Principal](ctx, st, access.KindPrincipal)
	if err != nil {
		return nil, err
	}
	pc := map[string]int{}
	for _, p := range principals {
		pc[p.Status]++
	}
	withDevice := map[string]bool{}
	for _, d := range devices {
		if d.Status == access.StatusApproved {
			withDevice[d.Principal] = true
		}
	}
	dev := Item{Key: "devices", Title: "Device-bound credentials", Source: SourceStore}
	if len(principals) == 0 && len(devices) == 0 {
		dev.Text = "Not available: the store holds no principals or devices (access control not configured)."
	} else {
		dev.Text = fmt.Sprintf("%d devices enrolled: %d approved, %d pending, %d revoked. %d principals (%d active, %d suspended or revoked); %d active principals have an approved device.",
			len(devices), dc[access.StatusApproved], dc[access.StatusPending], dc[access.StatusRevoked],
			len(principals), pc[access.StatusActive], pc[access.StatusSuspended]+pc[access.StatusRevoked], countActiveWith(principals, withDevice))
	}
	r.Items = append(r.Items, dev)

	// Grants.
	grants, err := decodeAll[access.Grant](ctx, st, access.KindGrant)
	if err != nil {
		return nil, err
	}
	gt := Table{Title: "Grants across organisations", Header: []string{"grant", "grantor", "grantee", "status", "expires", "budget per hour", "budget total", "stale"}}
	var active, withExpiry, withBudget, stale, pending int
	for _, g := range grants {
		st := ""
		switch g.Status {
		case access.StatusActive:
			active++
			if !g.Expires.IsZero() {
				withExpiry++
			}
			if g.BudgetPerHour > 0 || g.BudgetTotal > 0 {
				withBudget++
			}
			if !g.Expires.IsZero() && g.Expires.Before(now) {
				stale++
				st = "expired, not revoked"
			}
		case access.StatusPending:
			pending++
		}
		gt.Rows = append(gt.Rows, []string{g.ID, g.GrantorOrg, grantee(g), g.Status, dateOr(g.Expires), budget(g.BudgetPerHour), budget(g.BudgetTotal), st})
	}
	r.Tables = append(r.Tables, gt)
	gi := Item{Key: "grants", Title: "Grants: expiry, budgets, stale grants", Source: SourceStore,
		Text: fmt.Sprintf("%d grants: %d active (%d with an expiry, %d with a volume budget), %d pending a second admin; %d active grants past their expiry and not revoked (stale).",
			len(grants), active, withExpiry, withBudget, pending, stale),
		ToComplete: "Grants not used for a long time: the usage of each grant is in the audit log (policy of the events) but is not summarised here yet."}
	r.Items = append(r.Items, gi)

	// The guard: its rules, honeytokens and quarantines are stored; its
	// alerts go to a webhook, the log and a metric, not to the store.
	rules, err := st.ListObjects(ctx, KindGuardRule, "")
	if err != nil {
		return nil, fmt.Errorf("guard rules: %w", err)
	}
	honey, err := st.ListObjects(ctx, KindHoneytoken, "")
	if err != nil {
		return nil, fmt.Errorf("honeytokens: %w", err)
	}
	quars, err := st.ListObjects(ctx, KindQuarantine, "")
	if err != nil {
		return nil, fmt.Errorf("quarantines: %w", err)
	}
	ai := Item{Key: "alerts", Title: "Detection, alerts and their handling", Source: SourceStore,
		ToComplete: "The alerts raised (they go to the alert webhook, the log and the sekisho_guard metrics, not to the store) and how each was handled."}
	// The guard runs its default rules until an admin changes one (only
	// changed rules are stored): the rules in force are the defaults with
	// the stored ones over them.
	inForce := map[string]bool{}
	for _, d := range guard.DefaultRules {
		inForce[d.ID] = d.Enabled
	}
	for _, o := range rules {
		var gr guard.Rule
		if json.Unmarshal(o.Body, &gr) == nil {
			inForce[gr.ID] = gr.Enabled
		}
	}
	var enabled []string
	for _, id := range keys(inForce) {
		if inForce[id] {
			enabled = append(enabled, id)
		}
	}
	by := map[string]int{}
	for _, o := range quars {
		var q struct {
			Status string `json:"status"`
		}
		json.Unmarshal(o.Body, &q)
		by[q.Status]++
	}
	ai.Text = fmt.Sprintf("The guard is installed: %d rules in force, %d enabled (%s; %d changed from the defaults by an admin), %d honeytoken records; %d quarantines of principals or devices (%d active, %d lifted after review).",
		len(inForce), len(enabled), strings.Join(enabled, ", "), len(rules), len(honey), len(quars), by["active"], by["lifted"])
	r.Items = append(r.Items, ai)

	// Audit log and incidents.
	logs := cfg.Logs
	if len(logs) == 0 {
		logs = []sekisho.LogStore{{Store: st}}
	}
	au := Item{Key: "audit", Title: "Tamper-evident audit log", Source: SourceStore}
	var parts []string
	for _, l := range logs {
		size, err := l.Store.AuditSize(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit size: %w", err)
		}
		cps, err := l.Store.Checkpoints(ctx)
		if err != nil {
			return nil, fmt.Errorf("checkpoints: %w", err)
		}
		text := fmt.Sprintf("%d events (every access decision, allowed or denied) in a Merkle tree with %d signed checkpoints", size, len(cps))
		if len(cps) > 0 {
			last := cps[len(cps)-1]
			text += fmt.Sprintf("; the latest covers %d events, signed at %s", last.Size, ts(last.Time))
		}
		if len(logs) > 1 {
			name := l.Region
			if name == "" {
				name = "default"
			}
			text = "log " + name + ": " + text
		}
		parts = append(parts, text)
	}
	au.Text = strings.Join(parts, "; ") + ". `sekisho audit verify` checks every event against them."
	r.Items = append(r.Items, au)
	incs, err := incident.List(ctx, st)
	if err != nil {
		return nil, err
	}
	it := Table{Title: "Incidents", Header: []string{"incident", "window since", "window until", "discovered", "cause"}}
	for _, in := range incs {
		it.Rows = append(it.Rows, []string{in.ID, ts(in.Since), ts(in.Until), ts(in.DiscoveredAt), in.Cause})
	}
	r.Tables = append(r.Tables, it)
	r.Items = append(r.Items,
		Item{Key: "incidents", Title: "Incidents", Source: SourceStore, Text: fmt.Sprintf("%d incidents recorded; their scopes and reports come from the audit log.", len(incs))},
		person("dependence", "Reduced dependence on affiliates and subcontractors", "Organisational measures (contracts, separation of shared systems) and their dates."),
		person("training", "Staff training and audits", "Training given, internal and external audits done, with dates."),
	)
	if !cfg.Since.IsZero() {
		tt, ti, err := trend(ctx, st, logs, grants, devices, quars, cfg.Since.UTC(), now)
		if err != nil {
			return nil, err
		}
		r.Tables = append([]Table{tt}, r.Tables...)
		r.Items = append([]Item{ti}, r.Items...)
	}
	r.Notes = []string{"Every number is read from the store at the time shown; nothing is estimated."}
	return r, nil
}

func countActiveWith(ps []*access.Principal, with map[string]bool) int {
	n := 0
	for _, p := range ps {
		if p.Status == access.StatusActive && with[p.ID] {
			n++
		}
	}
	return n
}

func grantee(g *access.Grant) string {
	if g.GranteePrincipal != "" {
		return g.GranteeOrg + "/" + g.GranteePrincipal
	}
	return g.GranteeOrg
}

func dateOr(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return ts(t)
}

func budget(n int64) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

func decodeAll[T any](ctx context.Context, st sekisho.ObjectStore, kind string) ([]*T, error) {
	os, err := st.ListObjects(ctx, kind, "")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	out := make([]*T, 0, len(os))
	for _, o := range os {
		var v T
		if err := json.Unmarshal(o.Body, &v); err != nil {
			return nil, fmt.Errorf("%s %s does not decode: %w", kind, o.ID, err)
		}
		out = append(out, &v)
	}
	return out, nil
}

// period is a half-open interval of time.
type period struct{ from, to time.Time }

func (p period) has(t time.Time) bool { return !t.IsZero() && !t.Before(p.from) && t.Before(p.to) }

func (p period) hasPtr(t *time.Time) bool { return t != nil && p.has(*t) }

// trend compares the period [since, now) with the one of the same length
// before it: grants added, expired, revoked, stale and unused; quarantines;
// the guard's refusals by rule (from the audit log); devices.
func trend(ctx context.Context, st sekisho.Store, logs []sekisho.LogStore, grants []*access.Grant, devices []*access.Device,
	quars []*sekisho.Object, since, now time.Time) (Table, Item, error) {
	cur := period{since, now}
	prev := period{since.Add(-now.Sub(since)), since}
	type counts map[string]int
	c := map[period]counts{cur: {}, prev: {}}
	// Grants used and guard refusals, from every log.
	used := map[period]map[string]bool{cur: {}, prev: {}}
	rules := map[string]bool{}
	for _, l := range logs {
		f := sekisho.AuditFilter{Since: prev.from, Until: cur.to, Limit: 5000}
		for {
			es, err := l.Store.QueryAudit(ctx, f)
			if err != nil {
				return Table{}, Item{}, fmt.Errorf("query audit: %w", err)
			}
			for _, e := range es {
				ev, err := audit.Unmarshal(e.Leaf)
				if err != nil {
					return Table{}, Item{}, fmt.Errorf("audit event %d does not decode: %w", e.Index, err)
				}
				for _, p := range []period{prev, cur} {
					if !p.has(ev.Time) {
						continue
					}
					if ev.Decision == audit.Allow && strings.HasPrefix(ev.Policy, "grant:") {
						used[p][strings.TrimPrefix(ev.Policy, "grant:")] = true
					}
					if ev.Decision == audit.Deny && strings.HasPrefix(ev.Policy, "guard:") {
						rule := strings.TrimPrefix(ev.Policy, "guard:")
						rules[rule] = true
						c[p]["guard refusals: "+rule]++
					}
				}
			}
			if len(es) < f.Limit {
				break
			}
			f.From = es[len(es)-1].Index + 1
		}
	}
	for _, p := range []period{prev, cur} {
		k := c[p]
		for _, g := range grants {
			if p.has(g.CreatedAt) {
				k["grants added"]++
			}
			if p.has(g.Expires) {
				k["grants expired"]++
			}
			if p.hasPtr(g.RevokedAt) {
				k["grants revoked"]++
			}
			inForce := g.CreatedAt.Before(p.to) && (g.RevokedAt == nil || !g.RevokedAt.Before(p.to)) && g.Status != access.StatusPending
			if inForce && !g.Expires.IsZero() && g.Expires.Before(p.to) {
				k["grants stale at the end (expired, not revoked)"]++
			}
			if inForce && (g.Expires.IsZero() || !g.Expires.Before(p.from)) && !used[p][g.ID] {
				k["grants in force and unused"]++
			}
		}
		for _, o := range quars {
			var q struct {
				Since    time.Time  `json:"since"`
				LiftedAt *time.Time `json:"lifted_at"`
			}
			json.Unmarshal(o.Body, &q)
			if p.has(q.Since) {
				k["quarantines started"]++
			}
			if p.hasPtr(q.LiftedAt) {
				k["quarantines lifted"]++
			}
		}
		for _, d := range devices {
			if p.has(d.EnrolledAt) {
				k["devices enrolled"]++
			}
			if p.hasPtr(d.ApprovedAt) {
				k["devices approved"]++
			}
			if p.hasPtr(d.RevokedAt) {
				k["devices revoked"]++
			}
		}
	}
	rows := []string{"grants added", "grants expired", "grants revoked", "grants stale at the end (expired, not revoked)", "grants in force and unused",
		"quarantines started", "quarantines lifted", "devices enrolled", "devices approved", "devices revoked"}
	for _, r := range keys(rules) {
		rows = append(rows, "guard refusals: "+r)
	}
	t := Table{Title: "Trend: this period against the previous one", Header: []string{"measure", "previous " + ts(prev.from) + " to " + ts(prev.to), "this period " + ts(cur.from) + " to " + ts(cur.to), "change"}}
	for _, m := range rows {
		a, b := c[prev][m], c[cur][m]
		t.Rows = append(t.Rows, []string{m, fmt.Sprint(a), fmt.Sprint(b), fmt.Sprintf("%+d", b-a)})
	}
	t.Rows = append(t.Rows, []string{"records sealed under HSM-held keys", "not available", "not available", ""})
	it := Item{Key: "trend", Title: "Trend since the previous report", Source: SourceStore,
		Text: fmt.Sprintf("This report covers %s to %s and compares it with %s to %s (the same length before it): grants, quarantines, devices from the store; grants used and the guard's refusals by rule from the audit log (alerts that refused nothing go to webhooks and metrics, not to the log).",
			ts(cur.from), ts(cur.to), ts(prev.from), ts(prev.to))}
	return t, it, nil
}
