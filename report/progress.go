package report

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
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
	if cfg.Directory == nil || cfg.Rules == nil {
		return nil, fmt.Errorf("progress report: no directory or guard rules to read (Config.Directory, Config.Rules)")
	}
	b, r, err := start(KindProgress, cfg)
	if err != nil {
		return nil, err
	}
	now := r.GeneratedAt
	r.Required, r.Because, r.Deadline = true, []string{b.t("pg.because")}, []Deadline{}

	// Encryption coverage: every record the store holds is sealed (the store
	// has no column for a plaintext value), so coverage is all live records.
	schemas, err := st.ListSchemas(ctx)
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	enc := Table{Title: b.t("pg.enc.table"), Header: []string{b.t("col.collection"), b.t("pg.col.live"), b.t("pg.col.sealed"), b.t("pg.col.share")}}
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
	r.Items = append(r.Items, Item{Key: "encryption", Title: b.t("pg.enc"), Source: SourceStore, Text: b.t("pg.enc.text", total, len(schemas))})

	// Keys held in an HSM: key providers are chosen per region (#18's
	// keys: section, a region's own keys:), so the share is that of the
	// live records of the regions whose provider is an HSM.
	hsmItem, hsmTable, err := b.hsmShare(ctx, st, schemas)
	if err != nil {
		return nil, err
	}
	r.Items = append(r.Items, hsmItem)
	if hsmTable != nil {
		r.Tables = append(r.Tables, *hsmTable)
	}

	// Devices and principals.
	devices, err := cfg.Directory.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", sekisho.KindDevice, err)
	}
	dc := map[string]int{}
	for _, d := range devices {
		dc[d.Status]++
	}
	principals, err := cfg.Directory.Principals(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", sekisho.KindPrincipal, err)
	}
	pc := map[string]int{}
	for _, p := range principals {
		pc[p.Status]++
	}
	withDevice := map[string]bool{}
	for _, d := range devices {
		if d.Status == sekisho.StatusApproved {
			withDevice[d.Principal] = true
		}
	}
	dev := Item{Key: "devices", Title: b.t("pg.dev"), Source: SourceStore}
	if len(principals) == 0 && len(devices) == 0 {
		dev.Text = b.t("pg.dev.none")
	} else {
		dev.Text = b.t("pg.dev.text",
			len(devices), dc[sekisho.StatusApproved], dc[sekisho.StatusPending], dc[sekisho.StatusRevoked],
			len(principals), pc[sekisho.StatusActive], pc[sekisho.StatusSuspended]+pc[sekisho.StatusRevoked], countActiveWith(principals, withDevice))
	}
	r.Items = append(r.Items, dev)

	// Grants.
	grants, err := cfg.Directory.Grants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", sekisho.KindGrant, err)
	}
	gt := Table{Title: b.t("pg.grants.table"), Header: []string{b.t("pg.col.grant"), b.t("pg.col.grantor"), b.t("pg.col.grantee"), b.t("pg.col.status"),
		b.t("pg.col.expires"), b.t("pg.col.budget.hour"), b.t("pg.col.budget.total"), b.t("pg.col.stale")}}
	var active, withExpiry, withBudget, stale, pending int
	for _, g := range grants {
		st := ""
		switch g.Status {
		case sekisho.StatusActive:
			active++
			if !g.Expires.IsZero() {
				withExpiry++
			}
			if g.BudgetPerHour > 0 || g.BudgetTotal > 0 {
				withBudget++
			}
			if !g.Expires.IsZero() && g.Expires.Before(now) {
				stale++
				st = b.t("pg.stale")
			}
		case sekisho.StatusPending:
			pending++
		}
		gt.Rows = append(gt.Rows, []string{g.ID, g.GrantorOrg, grantee(g), g.Status, b.dateOr(g.Expires), b.budget(g.BudgetPerHour), b.budget(g.BudgetTotal), st})
	}
	r.Tables = append(r.Tables, gt)
	gi := Item{Key: "grants", Title: b.t("pg.grants"), Source: SourceStore,
		Text:       b.t("pg.grants.text", len(grants), active, withExpiry, withBudget, pending, stale),
		ToComplete: b.t("pg.grants.todo")}
	r.Items = append(r.Items, gi)

	// The guard: its rules, honeytokens and quarantines are stored; its
	// alerts go to a webhook, the log and a metric, not to the store.
	inForce, stored, err := cfg.Rules.InForce(ctx)
	if err != nil {
		return nil, err
	}
	honey, err := st.ListObjects(ctx, KindHoneytoken, "")
	if err != nil {
		return nil, fmt.Errorf("honeytokens: %w", err)
	}
	quars, err := st.ListObjects(ctx, KindQuarantine, "")
	if err != nil {
		return nil, fmt.Errorf("quarantines: %w", err)
	}
	ai := Item{Key: "alerts", Title: b.t("pg.alerts"), Source: SourceStore, ToComplete: b.t("pg.alerts.todo")}
	// The guard runs its default rules until an admin changes one (only
	// changed rules are stored): the rules in force are the defaults with
	// the stored ones over them.
	var enabled []string
	for _, id := range slices.Sorted(maps.Keys(inForce)) {
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
	ai.Text = b.t("pg.alerts.text",
		len(inForce), len(enabled), strings.Join(enabled, ", "), stored, len(honey), len(quars), by["active"], by["lifted"])
	r.Items = append(r.Items, ai)

	// Audit log and incidents.
	logs := cfg.Logs
	if len(logs) == 0 {
		logs = []sekisho.LogStore{{Store: st}}
	}
	au := Item{Key: "audit", Title: b.t("pg.audit"), Source: SourceStore}
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
		text := b.t("pg.audit.log", size, len(cps))
		if len(cps) > 0 {
			last := cps[len(cps)-1]
			text += b.t("pg.audit.latest", last.Size, ts(last.Time))
		}
		if len(logs) > 1 {
			name := l.Region
			if name == "" {
				name = "default"
			}
			text = b.t("pg.audit.name", name) + text
		}
		parts = append(parts, text)
	}
	au.Text = b.t("pg.audit.text", strings.Join(parts, b.t("pg.sep")))
	r.Items = append(r.Items, au)
	incs, err := incident.List(ctx, st)
	if err != nil {
		return nil, err
	}
	it := Table{Title: b.t("pg.incidents"), Header: []string{b.t("pg.col.incident"), b.t("pg.col.since"), b.t("pg.col.until"), b.t("pg.col.discovered"), b.t("pg.col.cause")}}
	for _, in := range incs {
		it.Rows = append(it.Rows, []string{in.ID, ts(in.Since), ts(in.Until), ts(in.DiscoveredAt), in.Cause})
	}
	r.Tables = append(r.Tables, it)
	r.Items = append(r.Items,
		Item{Key: "incidents", Title: b.t("pg.incidents"), Source: SourceStore, Text: b.t("pg.incidents.text", len(incs))},
		person("dependence", b.t("pg.dependence"), b.t("pg.dependence.todo")),
		person("training", b.t("pg.training"), b.t("pg.training.todo")),
	)
	if !cfg.Since.IsZero() {
		tt, ti, err := b.trend(ctx, st, schemas, logs, grants, devices, quars, cfg.Since.UTC(), now)
		if err != nil {
			return nil, err
		}
		r.Tables = append([]Table{tt}, r.Tables...)
		r.Items = append([]Item{ti}, r.Items...)
	}
	r.Notes = []string{b.t("pg.note")}
	return r, nil
}

func countActiveWith(ps []sekisho.PrincipalEntry, with map[string]bool) int {
	n := 0
	for _, p := range ps {
		if p.Status == sekisho.StatusActive && with[p.ID] {
			n++
		}
	}
	return n
}

func grantee(g sekisho.GrantEntry) string {
	if g.GranteePrincipal != "" {
		return g.GranteeOrg + "/" + g.GranteePrincipal
	}
	return g.GranteeOrg
}

func (b *builder) dateOr(t time.Time) string {
	if t.IsZero() {
		return b.t("pg.nolimit")
	}
	return ts(t)
}

func (b *builder) budget(n int64) string {
	if n == 0 {
		return b.t("pg.nolimit")
	}
	return fmt.Sprint(n)
}

// period is a half-open interval of time.
type period struct{ from, to time.Time }

func (p period) has(t time.Time) bool { return !t.IsZero() && !t.Before(p.from) && t.Before(p.to) }

func (p period) hasPtr(t *time.Time) bool { return t != nil && p.has(*t) }

// trend compares the period [since, now) with the one of the same length
// before it: grants added, expired, revoked, stale and unused; quarantines;
// the guard's refusals by rule (from the audit log); devices.
func (b *builder) trend(ctx context.Context, st sekisho.Store, schemas []*sekisho.Schema, logs []sekisho.LogStore, grants []sekisho.GrantEntry, devices []sekisho.DeviceEntry,
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
				ev, err := sekisho.UnmarshalEvent(e.Leaf)
				if err != nil {
					return Table{}, Item{}, fmt.Errorf("audit event %d does not decode: %w", e.Index, err)
				}
				for _, p := range []period{prev, cur} {
					if !p.has(ev.Time) {
						continue
					}
					if ev.Decision == sekisho.Allow && strings.HasPrefix(ev.Policy, "grant:") {
						used[p][strings.TrimPrefix(ev.Policy, "grant:")] = true
					}
					if ev.Decision == sekisho.Deny && strings.HasPrefix(ev.Policy, "guard:") {
						rule := strings.TrimPrefix(ev.Policy, "guard:")
						rules[rule] = true
						c[p]["guard:"+rule]++
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
				k["grants.added"]++
			}
			if p.has(g.Expires) {
				k["grants.expired"]++
			}
			if p.hasPtr(g.RevokedAt) {
				k["grants.revoked"]++
			}
			inForce := g.CreatedAt.Before(p.to) && (g.RevokedAt == nil || !g.RevokedAt.Before(p.to)) && g.Status != sekisho.StatusPending
			if inForce && !g.Expires.IsZero() && g.Expires.Before(p.to) {
				k["grants.stale"]++
			}
			if inForce && (g.Expires.IsZero() || !g.Expires.Before(p.from)) && !used[p][g.ID] {
				k["grants.unused"]++
			}
		}
		for _, o := range quars {
			var q struct {
				Since    time.Time  `json:"since"`
				LiftedAt *time.Time `json:"lifted_at"`
			}
			json.Unmarshal(o.Body, &q)
			if p.has(q.Since) {
				k["quarantines.started"]++
			}
			if p.hasPtr(q.LiftedAt) {
				k["quarantines.lifted"]++
			}
		}
		for _, d := range devices {
			if p.has(d.EnrolledAt) {
				k["devices.enrolled"]++
			}
			if p.hasPtr(d.ApprovedAt) {
				k["devices.approved"]++
			}
			if p.hasPtr(d.RevokedAt) {
				k["devices.revoked"]++
			}
		}
	}
	rows := []string{"grants.added", "grants.expired", "grants.revoked", "grants.stale", "grants.unused",
		"quarantines.started", "quarantines.lifted", "devices.enrolled", "devices.approved", "devices.revoked"}
	for _, r := range slices.Sorted(maps.Keys(rules)) {
		rows = append(rows, "guard:"+r)
	}
	t := Table{Title: b.t("pg.trend.table"), Header: []string{b.t("pg.col.measure"), b.t("pg.col.previous", ts(prev.from), ts(prev.to)),
		b.t("pg.col.current", ts(cur.from), ts(cur.to)), b.t("pg.col.change")}}
	for _, m := range rows {
		label := b.t("pg.m." + m)
		if rule, ok := strings.CutPrefix(m, "guard:"); ok {
			label = b.t("pg.m.guard", rule)
		}
		x, y := c[prev][m], c[cur][m]
		t.Rows = append(t.Rows, []string{label, fmt.Sprint(x), fmt.Sprint(y), fmt.Sprintf("%+d", y-x)})
	}
	// The share under HSM-held keys: now, and of the records live now that
	// were created before the period (the store keeps no history of erased
	// records, and a data directory never changes its providers).
	if b.cfg.Keys != nil {
		ph, pt, err := b.countHSM(ctx, st, schemas, since)
		if err != nil {
			return Table{}, Item{}, err
		}
		ch, ct, err := b.countHSM(ctx, st, schemas, time.Time{})
		if err != nil {
			return Table{}, Item{}, err
		}
		t.Rows = append(t.Rows, []string{b.t("pg.m.hsm"), share(ph, pt), share(ch, ct), fmt.Sprintf("%+.1f pt", pct(ch, ct)-pct(ph, pt))})
	} else {
		t.Rows = append(t.Rows, []string{b.t("pg.m.hsm"), b.t("pg.na"), b.t("pg.na"), ""})
	}
	it := Item{Key: "trend", Title: b.t("pg.trend"), Source: SourceStore,
		Text: b.t("pg.trend.text", ts(cur.from), ts(cur.to), ts(prev.from), ts(prev.to))}
	return t, it, nil
}

// countHSM counts the live records (created before before, when it is not
// zero) and those of them in regions whose keys are held in an HSM.
func (b *builder) countHSM(ctx context.Context, st sekisho.Store, schemas []*sekisho.Schema, before time.Time) (hsm, total int64, err error) {
	places, err := countPlaces(ctx, st, schemas, before)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range places {
		total += p.Records
		if b.cfg.Keys.Of(p.Region).HSM() {
			hsm += p.Records
		}
	}
	return hsm, total, nil
}

// countPlaces sums the live records of every collection per org and region.
func countPlaces(ctx context.Context, st sekisho.Store, schemas []*sekisho.Schema, before time.Time) ([]sekisho.PlaceCount, error) {
	sum := map[[2]string]int64{}
	for _, s := range schemas {
		ps, err := st.CountRecordsByPlace(ctx, s.Collection, before)
		if err != nil {
			return nil, fmt.Errorf("count %s by org and region: %w", s.Collection, err)
		}
		for _, p := range ps {
			sum[[2]string{p.Org, p.Region}] += p.Records
		}
	}
	out := make([]sekisho.PlaceCount, 0, len(sum))
	for k, n := range sum {
		out = append(out, sekisho.PlaceCount{Org: k[0], Region: k[1], Records: n})
	}
	slices.SortFunc(out, func(a, b sekisho.PlaceCount) int {
		return cmp.Or(cmp.Compare(a.Org, b.Org), cmp.Compare(a.Region, b.Region))
	})
	return out, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pct(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) * 100 / float64(of)
}

func share(n, of int64) string { return fmt.Sprintf("%d / %d (%.1f%%)", n, of, pct(n, of)) }

// hsmShare is the item (and, when the key providers are known, the table by
// org and region) of the share of live records sealed under data keys
// wrapped by KEKs held in an HSM.
func (b *builder) hsmShare(ctx context.Context, st sekisho.Store, schemas []*sekisho.Schema) (Item, *Table, error) {
	it := Item{Key: "hsm", Title: b.t("pg.hsm"), Source: SourceConfig}
	kc := b.cfg.Keys
	if kc == nil {
		it.Text = b.t("pg.hsm.na")
		return it, nil, nil
	}
	places, err := countPlaces(ctx, st, schemas, time.Time{})
	if err != nil {
		return Item{}, nil, err
	}
	t := Table{Title: b.t("pg.hsm.table"), Header: []string{b.t("pg.col.org"), b.t("col.region"), b.t("pg.col.live"), b.t("pg.col.provider"), b.t("pg.col.hsm")}}
	var hsm, total int64
	hsmRegions, localRegions := map[string]bool{}, map[string]bool{}
	for _, p := range places {
		h := kc.Of(p.Region)
		total += p.Records
		yes := b.t("pg.no")
		if h.HSM() {
			hsm += p.Records
			hsmRegions[p.Region] = true
			yes = b.t("pg.yes")
		} else {
			localRegions[p.Region] = true
		}
		t.Rows = append(t.Rows, []string{p.Org, p.Region, fmt.Sprint(p.Records), h.String(), yes})
	}
	var homes []string
	for _, h := range kc.Homes() {
		homes = append(homes, h.String())
	}
	it.Text = b.t("pg.hsm.text", hsm, total, pct(hsm, total), dash(strings.Join(slices.Sorted(maps.Keys(hsmRegions)), ", ")), dash(strings.Join(slices.Sorted(maps.Keys(localRegions)), ", ")), strings.Join(homes, "; "))
	if hsm < total {
		it.ToComplete = b.t("pg.hsm.todo")
	}
	return it, &t, nil
}
