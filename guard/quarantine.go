package guard

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
)

// Quarantine is the quarantine of one principal or one device, stored as a
// sekisho.Object (kind quarantine, id "principal:P" or "device:D", org of
// the principal) so that every node sees it within its cache TTL. While
// active, every request of the subject is refused; access tokens issued
// before Since stay refused after a lift (they are revoked for good).
type Quarantine struct {
	ID        string     `json:"id"`
	Subject   string     `json:"subject"` // principal or device
	Principal string     `json:"principal"`
	Device    string     `json:"device,omitempty"`
	Org       string     `json:"org"`
	Rule      string     `json:"rule"`
	Reason    string     `json:"reason"`
	RequestID string     `json:"request_id,omitempty"`
	Status    string     `json:"status"` // active or lifted
	Since     time.Time  `json:"since"`
	LiftedAt  *time.Time `json:"lifted_at,omitempty"`
	LiftedBy  string     `json:"lifted_by,omitempty"`
	// DataOrgs are the orgs, other than the principal's own, whose data
	// the quarantine was earned on (a grantee's principal that touched a
	// grantor's decoy, or went over a budget reading its records). An
	// admin of each of them must lift it, as well as an admin of Org.
	DataOrgs []string `json:"data_orgs,omitempty"`
	// Lifts are the lifts recorded so far (at most one per org); the
	// quarantine is lifted when every org of LiftOrgs has one.
	Lifts []Lift `json:"lifts,omitempty"`
	// LiftsNeeded names, while the quarantine is active, the orgs whose
	// admin must still lift it.
	LiftsNeeded []string `json:"lifts_needed,omitempty"`
}

// Lift is one admin's lift of a quarantine.
type Lift struct {
	Org string    `json:"org"`
	By  string    `json:"by"`
	At  time.Time `json:"at"`
	// Reason is why the admin lifted it (also in the audit event).
	Reason string `json:"reason,omitempty"`
}

// MaxLiftReason bounds the reason of a lift, in bytes.
const MaxLiftReason = 1000

// LiftOrgs are the orgs whose admins must each lift q: the principal's
// own, then the orgs whose data it was earned on.
func (q *Quarantine) LiftOrgs() []string {
	return append([]string{q.Org}, q.DataOrgs...)
}

// needed returns the orgs of LiftOrgs without a recorded lift.
func (q *Quarantine) needed() []string {
	var out []string
	for _, org := range q.LiftOrgs() {
		if !slices.ContainsFunc(q.Lifts, func(l Lift) bool { return l.Org == org }) {
			out = append(out, org)
		}
	}
	return out
}

// liftersText says who must still lift a quarantine of the principal's
// org own: needed are the orgs without a lift yet.
func liftersText(own string, needed []string) string {
	if len(needed) == 0 || len(needed) == 1 && needed[0] == own {
		return "an admin of its org must review and lift it"
	}
	return "an admin of org " + strings.Join(needed, " and an admin of org ") + " must still review and lift it (it was earned on another org's data)"
}

// Quarantine statuses.
const (
	StatusActive = "active"
	StatusLifted = "lifted"
)

func principalQID(p string) string { return "principal:" + p }
func deviceQID(d string) string    { return "device:" + d }

// quarantine stores the quarantine of c's principal and device and raises an
// alert. It returns when both are durable, so the next request on any node
// (after at most the cache TTL; at once on this one) is refused.
// dataOrgs are the other orgs whose data it was earned on (see
// Quarantine.DataOrgs).
func (g *Guard) quarantine(ctx context.Context, c sekisho.Caller, rule, reason string, dataOrgs []string) error {
	now := g.now().UTC()
	var firstErr error
	for _, q := range []Quarantine{
		{ID: principalQID(c.Principal), Subject: "principal", Principal: c.Principal, Device: c.Device},
		{ID: deviceQID(c.Device), Subject: "device", Principal: c.Principal, Device: c.Device},
	} {
		if c.Device == "" && q.Subject == "device" {
			continue
		}
		q.Org, q.Rule, q.Reason, q.RequestID, q.Status, q.Since = c.Org, rule, reason, c.RequestID, StatusActive, now
		q.DataOrgs = dataOrgs
		q.LiftsNeeded = q.needed()
		if err := g.putQuarantine(ctx, &q); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	g.dropQuarantineCache(c.Principal, c.Device)
	detail := "principal " + c.Principal + " device " + c.Device + " rule " + rule + ": " + reason
	if len(dataOrgs) > 0 {
		detail += "; to be lifted by an admin of org " + strings.Join(append([]string{c.Org}, dataOrgs...), " and an admin of org ")
	}
	g.event(ctx, c, "guard.quarantine", detail, nil)
	return firstErr
}

// putQuarantine creates or re-activates a quarantine object. An active one
// keeps its first reason, and gains the data orgs it did not name yet.
func (g *Guard) putQuarantine(ctx context.Context, q *Quarantine) error {
	for range 3 {
		var version int64 = 1
		o, err := g.store.GetObject(ctx, sekisho.KindQuarantine, q.ID)
		if err == nil {
			var old Quarantine
			if json.Unmarshal(o.Body, &old) == nil && old.Status == StatusActive {
				grown := false
				for _, org := range q.DataOrgs {
					if org != old.Org && !slices.Contains(old.DataOrgs, org) {
						old.DataOrgs, grown = append(old.DataOrgs, org), true
					}
				}
				if !grown {
					return nil // already quarantined; keep the first reason
				}
				old.LiftsNeeded = old.needed()
				q = &old
			}
			version = o.Version + 1
		} else if sekisho.Code(err) != sekisho.ENotFound {
			return err
		}
		b, _ := json.Marshal(q)
		err = g.store.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindQuarantine, ID: q.ID, Org: q.Org, Version: version, Body: b, Updated: q.Since})
		if sekisho.Code(err) != sekisho.EConflict {
			return err
		}
	}
	return sekisho.Errorf(sekisho.EConflict, "quarantine %s changed concurrently", q.ID)
}

// ListQuarantines lists quarantines (active and lifted) of the caller's org
// and the ones its admins must lift as the org whose data they were earned
// on; an admin of the root org or an auditor sees every org's.
func (g *Guard) ListQuarantines(ctx context.Context, c sekisho.Caller) ([]*Quarantine, error) {
	if !c.HasRole("admin") && !c.HasRole("auditor") {
		return nil, sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "listing quarantines needs an admin")
	}
	all := g.isRootAdmin(c) || c.HasRole("auditor")
	objs, err := g.store.ListObjects(ctx, sekisho.KindQuarantine, "")
	if err != nil {
		return nil, err
	}
	out := make([]*Quarantine, 0, len(objs))
	for _, o := range objs {
		var q Quarantine
		if err := json.Unmarshal(o.Body, &q); err != nil {
			return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored quarantine does not decode", Err: err}
		}
		if all || slices.Contains(q.LiftOrgs(), c.Org) {
			out = append(out, &q)
		}
	}
	return out, nil
}

// Lift records the lift of a quarantine by the admin c. Only an admin of
// the quarantined principal's own org may lift it, and not for itself;
// when it was earned on another org's data (Quarantine.DataOrgs), an admin
// of that org must lift it as well: it stays active, answering what is
// still needed (LiftsNeeded), until every org of LiftOrgs has lifted it.
// Each lift needs a reason (why the admin judged it safe), kept with the
// lift and in its audit event, and is audited first. Access tokens issued
// before the quarantine stay refused.
func (g *Guard) Lift(ctx context.Context, c sekisho.Caller, id, reason string) (*Quarantine, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > MaxLiftReason {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "reason", "lifting a quarantine needs a reason of at most %d bytes (why it is safe to lift)", MaxLiftReason)
	}
	detail := "quarantine " + id
	for range 3 {
		o, err := g.store.GetObject(ctx, sekisho.KindQuarantine, id)
		if err != nil {
			if sekisho.Code(err) == sekisho.ENotFound {
				return nil, sekisho.Errorf(sekisho.ENotFound, "quarantine %q not found", id)
			}
			return nil, err
		}
		var q Quarantine
		if err := json.Unmarshal(o.Body, &q); err != nil {
			return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored quarantine does not decode", Err: err}
		}
		orgs := q.LiftOrgs()
		if !c.HasRole("admin") || !slices.Contains(orgs, c.Org) {
			msg := "lifting a quarantine needs an admin of the principal's own org " + q.Org
			if len(orgs) > 1 {
				msg = "lifting this quarantine needs an admin of org " + strings.Join(orgs, " and an admin of org ")
			}
			return nil, g.event(ctx, c, "guard.quarantine.lift", detail, sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "%s", msg))
		}
		if c.Principal == q.Principal {
			return nil, g.event(ctx, c, "guard.quarantine.lift", detail, sekisho.TypedErrorf(sekisho.EForbidden, "two-person-rule",
				"a quarantined principal cannot lift its own quarantine"))
		}
		if q.Status != StatusActive {
			return nil, sekisho.TypedErrorf(sekisho.EConflict, "quarantine-not-active", "quarantine %s is %s", id, q.Status)
		}
		if slices.ContainsFunc(q.Lifts, func(l Lift) bool { return l.Org == c.Org }) {
			return nil, sekisho.TypedErrorf(sekisho.EConflict, ProblemLiftPending,
				"org %s has lifted quarantine %s already; it stays until an admin of org %s lifts it too", c.Org, id, strings.Join(q.needed(), " and of org "))
		}
		now := g.now().UTC()
		q.Lifts = append(q.Lifts, Lift{Org: c.Org, By: c.Principal, At: now, Reason: reason})
		q.LiftsNeeded = q.needed()
		ev := detail + " of " + q.Principal
		if len(q.LiftsNeeded) == 0 {
			q.Status, q.LiftedAt, q.LiftedBy = StatusLifted, &now, c.Principal
			if len(orgs) > 1 {
				ev += ": lifted by org " + strings.Join(orgs, " and org ")
			}
		} else {
			ev += ": lift by org " + c.Org + " recorded; still needs an admin of org " + strings.Join(q.LiftsNeeded, " and of org ")
		}
		ev += "; reason: " + reason
		if err := g.event(ctx, c, "guard.quarantine.lift", ev, nil); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(q)
		err = g.store.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindQuarantine, ID: id, Org: q.Org, Version: o.Version + 1, Body: b, Updated: now})
		if sekisho.Code(err) == sekisho.EConflict {
			continue // another lift (of the other org) came first: read it again
		}
		if err != nil {
			return nil, err
		}
		g.dropQuarantineCache(q.Principal, q.Device)
		return &q, nil
	}
	return nil, sekisho.Errorf(sekisho.EConflict, "quarantine %s changed concurrently; try again", id)
}

// qstate is a cached quarantine lookup: active, and the time before which
// tokens are refused.
type qstate struct {
	active bool
	since  time.Time // zero: never quarantined
	rule   string
	org    string    // the principal's org
	needed []string  // whose admins must still lift it
	at     time.Time // when this entry was read
}

func (g *Guard) dropQuarantineCache(principal, device string) {
	g.qmu.Lock()
	delete(g.qcache, principalQID(principal))
	delete(g.qcache, deviceQID(device))
	g.qmu.Unlock()
}

// qlookup returns the quarantine state of one subject id, cached for at
// most the cache TTL (so a quarantine made on another node applies here
// within it).
func (g *Guard) qlookup(ctx context.Context, id string) (qstate, error) {
	now := g.now()
	g.qmu.Lock()
	s, ok := g.qcache[id]
	g.qmu.Unlock()
	if ok && now.Sub(s.at) < g.cfg.CacheTTL && now.Sub(s.at) >= 0 {
		return s, nil
	}
	s = qstate{at: now}
	o, err := g.store.GetObject(ctx, sekisho.KindQuarantine, id)
	switch {
	case err == nil:
		var q Quarantine
		if json.Unmarshal(o.Body, &q) == nil {
			s.active, s.since, s.rule, s.org, s.needed = q.Status == StatusActive, q.Since, q.Rule, q.Org, q.needed()
		}
	case sekisho.Code(err) != sekisho.ENotFound:
		return s, err
	}
	g.qmu.Lock()
	if len(g.qcache) > 100_000 {
		clear(g.qcache)
	}
	g.qcache[id] = s
	g.qmu.Unlock()
	return s, nil
}

// Quarantined returns a refusal when principal or device is quarantined,
// or when the access token was issued (iat) before a quarantine of either,
// lifted or not.
func (g *Guard) Quarantined(ctx context.Context, principal, device string, iat time.Time) error {
	for _, id := range []string{principalQID(principal), deviceQID(device)} {
		if strings.HasSuffix(id, ":") {
			continue
		}
		s, err := g.qlookup(ctx, id)
		if err != nil {
			return err // fail closed: a store failure refuses
		}
		if s.active {
			return sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemQuarantined,
				"%s is quarantined by the guard; %s (sekisho quarantine lift %s --reason TEXT)", id, liftersText(s.org, s.needed), id)
		}
		if !s.since.IsZero() && !iat.IsZero() && iat.Before(s.since) {
			return sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemQuarantined,
				"this access token was revoked by a quarantine of %s; get a new one with POST /v1/token", id)
		}
	}
	return nil
}

func (g *Guard) isRootAdmin(c sekisho.Caller) bool {
	return c.Org == g.cfg.RootOrg && c.HasRole("admin")
}
