package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/guard"
)

// GrantCounters are the guard's live counters of a grant's reads (the
// ones its budget is enforced on), read by key "g:"+grant id; implemented
// by *guard.Guard.
type GrantCounters interface {
	Usage(key string) guard.Usage
}

// GrantUsage is one grant in GET /v1/grants/usage.
type GrantUsage struct {
	*access.Grant
	// State is status, with an active grant past its expiry as expired.
	State string `json:"state"`
	// Expiring: active and expiring within the asked window.
	Expiring bool `json:"expiring"`
	// Reads and RecordsRead count the allowed events through the grant in
	// the audit log (every log), LastUsed the time of the last one.
	Reads       int64      `json:"reads"`
	RecordsRead int64      `json:"records_read"`
	LastUsed    *time.Time `json:"last_used,omitempty"`
	// Unused: in force (active, not expired) and never used.
	Unused bool `json:"unused"`
	// BudgetRefusals counts the requests refused for the grant's budget.
	BudgetRefusals int64 `json:"budget_refusals"`
	// RecordsLastHour and RecordsCounted are the guard's counters of this
	// node (the budget is enforced on them; the total counts since the
	// guard last rebuilt its state from the audit log, at most a day back).
	RecordsLastHour int64 `json:"records_last_hour"`
	RecordsCounted  int64 `json:"records_counted"`
	// OverBudget: refused for its budget at least once, or at or above its
	// hourly or total budget now.
	OverBudget bool `json:"over_budget"`
}

// GrantUsageReport is the answer of GET /v1/grants/usage.
type GrantUsageReport struct {
	AsOf       time.Time     `json:"as_of"`
	ExpiringIn string        `json:"expiring_within"`
	Grants     []*GrantUsage `json:"grants"`
	Expiring   []string      `json:"expiring"`
	Unused     []string      `json:"unused"`
	OverBudget []string      `json:"over_budget"`
	// EventsScanned counts the audit events the counts are computed from
	// (every org's, read once by this server as the logs grow): only for a
	// caller who sees every org (a root admin or an auditor); another org's
	// admin would learn the instance's audit volume.
	EventsScanned *int64 `json:"events_scanned,omitempty"`
}

// grantUsage is GET /v1/grants/usage[?org=O&expiring_within=DURATION]:
// the grants the caller may list, each with its use counted from the
// audit log (every region's; see grantTally) and the guard's counters, and
// the ids of the expiring, unused and over-budget ones.
func (s *Server) grantUsage(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	if !c.HasRole(RoleAdmin) && !c.HasRole(RoleAuditor) {
		return sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "grant usage is for admins and auditors")
	}
	within := 7 * 24 * time.Hour
	if v := r.URL.Query().Get("expiring_within"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 366*24*time.Hour {
			return sekisho.FieldErrorf(sekisho.EInvalid, "expiring_within", "expiring_within is a duration such as 168h (at most a year)")
		}
		within = d
	}
	grants, err := s.access.ListGrants(r.Context(), c, r.URL.Query().Get("org"))
	if err != nil {
		return err
	}
	now := time.Now()
	if s.now != nil {
		now = s.now()
	}
	rep := &GrantUsageReport{AsOf: now.UTC(), ExpiringIn: within.String(), Grants: []*GrantUsage{}, Expiring: []string{}, Unused: []string{}, OverBudget: []string{}}
	by := map[string]*GrantUsage{}
	for _, g := range grants {
		u := &GrantUsage{Grant: g, State: g.Status}
		if g.Status == access.StatusActive && !g.Expires.IsZero() && !g.Expires.After(now) {
			u.State = "expired"
		}
		u.Expiring = u.State == access.StatusActive && !g.Expires.IsZero() && g.Expires.Sub(now) <= within
		rep.Grants = append(rep.Grants, u)
		by[g.ID] = u
	}
	var scanned int64
	if len(grants) > 0 {
		counts, n, err := s.grantTally.update(r.Context(), s.grantLogs())
		if err != nil {
			return err
		}
		scanned = n
		for id, u := range by {
			if k := counts[id]; k != nil {
				u.Reads, u.RecordsRead, u.BudgetRefusals = k.reads, k.records, k.refusals
				if !k.last.IsZero() {
					t := k.last
					u.LastUsed = &t
				}
			}
		}
	}
	if s.access.SeesAll(c) {
		rep.EventsScanned = &scanned
	}
	for _, u := range rep.Grants {
		if s.grantCounters != nil {
			k := s.grantCounters.Usage("g:" + u.ID)
			u.RecordsLastHour, u.RecordsCounted = k.RecordsHour, k.RecordsTotal
		}
		u.Unused = u.State == access.StatusActive && u.Reads == 0
		u.OverBudget = u.BudgetRefusals > 0 ||
			(u.BudgetPerHour > 0 && u.RecordsLastHour >= u.BudgetPerHour) || (u.BudgetTotal > 0 && u.RecordsCounted >= u.BudgetTotal)
		if u.Expiring {
			rep.Expiring = append(rep.Expiring, u.ID)
		}
		if u.Unused {
			rep.Unused = append(rep.Unused, u.ID)
		}
		if u.OverBudget {
			rep.OverBudget = append(rep.OverBudget, u.ID)
		}
	}
	return writeJSON(w, http.StatusOK, rep)
}

// grantLogs are the audit logs to read: every region's.
func (s *Server) grantLogs() []audit.RegionLog {
	if s.auditLogs != nil {
		return s.auditLogs.All()
	}
	if s.auditLog != nil {
		return []audit.RegionLog{{Log: s.auditLog}}
	}
	return nil
}

// grantTally counts every grant's use from the audit logs, reading each
// log once as it grows: a call of GET /v1/grants/usage reads only the
// events appended since the last one, not the whole log again (which an
// admin could otherwise make the server do as often as it likes). Its
// zero value is ready; one update runs at a time.
type grantTally struct {
	mu      sync.Mutex
	next    map[string]uint64      // per log (RegionLog.Name): the next index to read
	by      map[string]*grantCount // per grant id
	scanned int64                  // events read into the counts
}

// grantCount is one grant's use as the audit log tells it.
type grantCount struct {
	reads, records, refusals int64
	last                     time.Time
}

// update reads what the logs gained since the last update and returns
// copies of the counts by grant id and the number of events they are
// computed from. A failed read keeps the pages read before it.
func (t *grantTally) update(ctx context.Context, logs []audit.RegionLog) (map[string]*grantCount, int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next == nil {
		t.next, t.by = map[string]uint64{}, map[string]*grantCount{}
	}
	for _, l := range logs {
		f := sekisho.AuditFilter{From: t.next[l.Name()], Limit: 5000}
		for {
			es, err := l.Log.Store().QueryAudit(ctx, f)
			if err != nil {
				return nil, 0, fmt.Errorf("grant usage: read the audit log %s: %w", l.Name(), err)
			}
			for _, e := range es {
				t.scanned++
				ev, err := sekisho.UnmarshalEvent(e.Leaf)
				if err != nil {
					continue
				}
				t.count(ev)
			}
			if len(es) > 0 {
				t.next[l.Name()] = es[len(es)-1].Index + 1
			}
			if len(es) < f.Limit {
				break
			}
			f.From = t.next[l.Name()]
		}
	}
	out := make(map[string]*grantCount, len(t.by))
	for id, k := range t.by {
		c := *k
		out[id] = &c
	}
	return out, t.scanned, nil
}

// count counts one audit event for the grant it went through: an allowed
// one as a use of the first grant its policy names (the grant the request
// was made under, which the guard charges), a refusal for a grant's budget
// as such.
func (t *grantTally) count(ev sekisho.Event) {
	k := func(id string) *grantCount {
		if t.by[id] == nil {
			t.by[id] = &grantCount{}
		}
		return t.by[id]
	}
	for _, p := range strings.Split(ev.Policy, ",") {
		id, ok := strings.CutPrefix(strings.TrimSpace(p), "grant:")
		if !ok || id == "" {
			continue
		}
		switch {
		case ev.Decision == sekisho.Allow:
			u := k(id)
			u.reads++
			u.records += int64(len(ev.Records))
			if ev.Time.After(u.last) {
				u.last = ev.Time
			}
		case strings.Contains(ev.Reason, "budget"):
			k(id).refusals++
		}
		return
	}
	// The guard's budget refusal names the grant in its reason
	// ("volume budget exceeded (grant g-…: records per hour)").
	if ev.Decision == sekisho.Deny && strings.Contains(ev.Reason, "budget") {
		_, rest, ok := strings.Cut(ev.Reason, "grant ")
		if id, _, ok2 := strings.Cut(rest, ":"); ok && ok2 && id != "" && !strings.ContainsAny(id, " ,()") {
			k(id).refusals++
		}
	}
}
