package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/sekisho/sekisho"
)

// Actions a rule takes when it fires.
const (
	ActionLog        = "log"
	ActionAlert      = "alert"
	ActionStepUp     = "step-up"
	ActionQuarantine = "quarantine"
)

// Actions lists the actions in increasing severity.
var Actions = []string{ActionLog, ActionAlert, ActionStepUp, ActionQuarantine}

// Rule names.
const (
	RuleBudget      = "volume-budget"
	RuleNewDevice   = "new-device"
	RuleNewSource   = "new-source"
	RuleOffHours    = "off-hours"
	RuleEnumeration = "enumeration"
	RuleDeniedBurst = "denied-burst"
	RuleNewPurpose  = "new-purpose"
	RuleHoneytoken  = "honeytoken"
)

// Problem types of the guard's denials.
const (
	ProblemStepUp      = "step-up-required"
	ProblemQuarantined = "quarantined"
	// ProblemLiftPending: this org's admin has lifted the quarantine
	// already; an admin of the other org must lift it too.
	ProblemLiftPending = "quarantine-lift-pending"
	ProblemBudget      = "budget-exceeded"
)

// Rule is one anomaly rule, stored as data (kind guard-rule) and versioned:
// every change makes a new version, kept as a guard-rule-version object, and
// is audited.
type Rule struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	Enabled     bool   `json:"enabled"`
	Action      string `json:"action"`
	// Params are the rule's thresholds (see DefaultRules for each rule's).
	Params    map[string]float64 `json:"params,omitempty"`
	Version   int64              `json:"version"`
	UpdatedAt time.Time          `json:"updated_at"`
	UpdatedBy string             `json:"updated_by"`
}

func (r *Rule) param(name string, def float64) float64 {
	if v, ok := r.Params[name]; ok {
		return v
	}
	return def
}

// DefaultRules are the rules a new instance starts with.
var DefaultRules = []Rule{
	{ID: RuleBudget, Enabled: true, Action: ActionQuarantine,
		Description: "Volume budgets of the principal's role, of its device and of the grant used: a request past one is denied; the action says what else happens."},
	{ID: RuleNewDevice, Enabled: true, Action: ActionAlert,
		Description: "A device never seen for the principal (its first device is learned)."},
	{ID: RuleNewSource, Enabled: true, Action: ActionAlert,
		Description: "A source address never seen for the principal (its first address is learned)."},
	{ID: RuleOffHours, Enabled: true, Action: ActionAlert, Params: map[string]float64{"baseline_start": 8, "baseline_end": 20, "min_history": 50, "learn_after": 200, "min_share": 0.01},
		Description: "A request outside the principal's usual hours: learned per principal once it has learn_after requests (an hour is usual when it holds min_share of them, give or take an hour); before that, the baseline [baseline_start, baseline_end) in the guard's time zone."},
	{ID: RuleEnumeration, Enabled: true, Action: ActionQuarantine, Params: map[string]float64{"max_gap": 16, "run": 5, "lookup_subjects_per_minute": 15, "lookup_values_per_minute": 30},
		Description: "Lookup values (after normalisation) in arithmetic progression with any stride (run in a row), or near-sequential (run in a row within max_gap of a recent one), or more than lookup_values_per_minute distinct values, or lookup_subjects_per_minute distinct subjects, a minute."},
	{ID: RuleDeniedBurst, Enabled: true, Action: ActionStepUp, Params: map[string]float64{"denials_per_minute": 10},
		Description: "A burst of denied requests: more than denials_per_minute a minute."},
	{ID: RuleNewPurpose, Enabled: true, Action: ActionAlert,
		Description: "A purpose the principal never used before (its first purpose is learned)."},
	{ID: RuleHoneytoken, Enabled: true, Action: ActionQuarantine,
		Description: "A decoy record read, listed or matched in a lookup. Always quarantines; the request returns nothing of it."},
}

func defaultRule(id string) (Rule, bool) {
	for _, r := range DefaultRules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// rules is the loaded rule set, reloaded from the store at most every
// cacheTTL so that a change on any node applies everywhere within it.
type ruleSet struct {
	at    time.Time
	rules map[string]*Rule
}

func (g *Guard) rules(ctx context.Context) map[string]*Rule {
	now := g.now()
	g.rmu.Lock()
	rs := g.ruleCache
	g.rmu.Unlock()
	if rs != nil && now.Sub(rs.at) < g.cfg.CacheTTL && now.Sub(rs.at) >= 0 {
		return rs.rules
	}
	m := map[string]*Rule{}
	for _, r := range DefaultRules {
		r := r
		m[r.ID] = &r
	}
	objs, err := g.store.ListObjects(ctx, sekisho.KindGuardRule, "")
	if err != nil {
		if rs != nil {
			return rs.rules // keep the last known rules while the store is away
		}
		return m
	}
	for _, o := range objs {
		var r Rule
		if json.Unmarshal(o.Body, &r) == nil {
			r.Version = o.Version
			m[r.ID] = &r
		}
	}
	g.rmu.Lock()
	g.ruleCache = &ruleSet{at: now, rules: m}
	g.rmu.Unlock()
	return m
}

// ListRules returns every rule, stored or default, by id.
func (g *Guard) ListRules(ctx context.Context) ([]*Rule, error) {
	if _, err := g.store.ListObjects(ctx, sekisho.KindGuardRule, ""); err != nil {
		return nil, err
	}
	g.invalidateRules()
	m := g.rules(ctx)
	out := make([]*Rule, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// RuleVersions returns the stored versions of a rule, oldest first.
func (g *Guard) RuleVersions(ctx context.Context, id string) ([]*Rule, error) {
	objs, err := g.store.ListObjects(ctx, sekisho.KindGuardRuleVersion, "")
	if err != nil {
		return nil, err
	}
	var out []*Rule
	for _, o := range objs {
		var r Rule
		if json.Unmarshal(o.Body, &r) == nil && r.ID == id {
			out = append(out, &r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

func (g *Guard) invalidateRules() {
	g.rmu.Lock()
	g.ruleCache = nil
	g.rmu.Unlock()
}

// RuleChange is the body of a rule change: the fields given replace the
// stored ones.
type RuleChange struct {
	Enabled     *bool              `json:"enabled,omitempty"`
	Action      string             `json:"action,omitempty"`
	Params      map[string]float64 `json:"params,omitempty"`
	Description string             `json:"description,omitempty"`
}

// SetRule changes a rule (an admin of the root org). The change is a new
// version, kept beside the old ones, and is audited before it applies.
func (g *Guard) SetRule(ctx context.Context, c sekisho.Caller, id string, ch RuleChange) (*Rule, error) {
	detail := "rule " + id
	if !g.isRootAdmin(c) {
		return nil, g.event(ctx, c, "guard.rule.set", detail, sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "changing a guard rule needs an admin of the root org %s", g.cfg.RootOrg))
	}
	def, ok := defaultRule(id)
	if !ok {
		return nil, sekisho.Errorf(sekisho.ENotFound, "guard rule %q not found (rules: %s)", id, ruleIDs())
	}
	cur := def
	var version int64
	o, err := g.store.GetObject(ctx, sekisho.KindGuardRule, id)
	switch {
	case err == nil:
		if err := json.Unmarshal(o.Body, &cur); err != nil {
			return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored guard rule does not decode", Err: err}
		}
		version = o.Version
	case sekisho.Code(err) != sekisho.ENotFound:
		return nil, err
	}
	if ch.Action != "" {
		if !slices.Contains(Actions, ch.Action) {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "action", "action %q is not one of log, alert, step-up, quarantine", ch.Action)
		}
		if id == RuleHoneytoken && ch.Action != ActionQuarantine {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "action", "the honeytoken rule always quarantines")
		}
		cur.Action = ch.Action
	}
	if ch.Enabled != nil {
		if id == RuleHoneytoken && !*ch.Enabled {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "enabled", "the honeytoken rule cannot be disabled")
		}
		cur.Enabled = *ch.Enabled
	}
	for k, v := range ch.Params {
		if _, known := def.Params[k]; !known {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "params", "rule %s has no parameter %q", id, k)
		}
		if v < 0 {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "params", "parameter %s must not be negative", k)
		}
		if cur.Params == nil {
			cur.Params = map[string]float64{}
		}
		cur.Params[k] = v
	}
	if ch.Description != "" {
		cur.Description = ch.Description
	}
	cur.ID, cur.Version, cur.UpdatedAt, cur.UpdatedBy = id, version+1, g.now().UTC(), c.Principal
	b, _ := json.Marshal(cur)
	pb, _ := json.Marshal(cur.Params)
	detail = fmt.Sprintf("rule %s v%d enabled=%v action=%s params=%s", id, cur.Version, cur.Enabled, cur.Action, pb)
	// Audit first: a change that cannot be audited is not made.
	if err := g.event(ctx, c, "guard.rule.set", detail, nil); err != nil {
		return nil, err
	}
	if err := g.store.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindGuardRule, ID: id, Version: cur.Version, Body: b, Updated: cur.UpdatedAt}); err != nil {
		if sekisho.Code(err) == sekisho.EConflict {
			return nil, sekisho.Errorf(sekisho.EConflict, "guard rule %s changed concurrently; retry", id)
		}
		return nil, err
	}
	if err := g.store.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindGuardRuleVersion, ID: fmt.Sprintf("%s@%06d", id, cur.Version), Version: 1, Body: b, Updated: cur.UpdatedAt}); err != nil {
		return nil, err
	}
	g.invalidateRules()
	return &cur, nil
}

func ruleIDs() string {
	var s string
	for i, r := range DefaultRules {
		if i > 0 {
			s += ", "
		}
		s += r.ID
	}
	return s
}

// event audits one guard administration action or decision.
func (g *Guard) event(ctx context.Context, c sekisho.Caller, action, detail string, err error) error {
	ev := sekisho.Event{Time: g.now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Purpose: c.Purpose, Action: action, Decision: sekisho.Allow, Policy: "guard", Detail: detail}
	if err != nil {
		ev.Decision, ev.Reason = sekisho.Deny, sekisho.Message(err)
	}
	if g.cfg.Audit == nil {
		return err
	}
	if _, aerr := g.cfg.Audit.Append(ctx, ev); aerr != nil {
		return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable; nothing was changed", Err: aerr}
	}
	return err
}

// Rules reads the rules in force from a store without a running guard
// (reports, the offline CLI): the default rules with the stored ones over
// them.
type Rules struct {
	Store sekisho.ObjectStore
}

// InForce returns every rule in force (id -> enabled) and how many rules
// are stored (changed by an admin from their defaults).
func (rs Rules) InForce(ctx context.Context) (map[string]bool, int, error) {
	objs, err := rs.Store.ListObjects(ctx, sekisho.KindGuardRule, "")
	if err != nil {
		return nil, 0, fmt.Errorf("guard rules: %w", err)
	}
	in := map[string]bool{}
	for _, d := range DefaultRules {
		in[d.ID] = d.Enabled
	}
	for _, o := range objs {
		var r Rule
		if json.Unmarshal(o.Body, &r) == nil {
			in[r.ID] = r.Enabled
		}
	}
	return in, len(objs), nil
}
