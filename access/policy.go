package access

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cedar-policy/cedar-go"

	"github.com/sekisho/sekisho"
)

// DefaultPolicies are the role policies a new instance starts with. Each
// permits one role within its own org (context.owner == principal.org) and
// lists the purposes it allows; @masked lists fields returned masked only
// ("*": every field). They are data: list them with GET /v1/policies and
// change them with PUT /v1/policies/{id}.
var DefaultPolicies = []Policy{
	{ID: "role-admin", Description: "An org's admins may do anything with their own org's records, for any known purpose.",
		Cedar: `permit (principal in Role::"admin", action, resource)
when { context.owner == principal.org };`},
	{ID: "role-member", Description: "Members create, read and change their own org's records for support, ops, payroll and fraud.",
		Cedar: `permit (
  principal in Role::"member",
  action in [Action::"create", Action::"read", Action::"update", Action::"lookup", Action::"batch-get"],
  resource
) when { context.owner == principal.org && ["support", "ops", "payroll", "fraud"].contains(context.purpose) };`},
	{ID: "role-support", Description: "Support staff read their own org's records for support only, every field masked.",
		Cedar: `@masked("*")
permit (
  principal in Role::"support",
  action in [Action::"read", Action::"lookup", Action::"batch-get"],
  resource
) when { context.owner == principal.org && context.purpose == "support" };`},
	{ID: "role-service", Description: "Services import and read their own org's records for ops, import and fraud.",
		Cedar: `permit (
  principal in Role::"service",
  action in [Action::"create", Action::"import", Action::"read", Action::"update", Action::"lookup", Action::"batch-get"],
  resource
) when { context.owner == principal.org && ["ops", "import", "fraud"].contains(context.purpose) };`},
	{ID: "role-auditor", Description: "Auditors read their own org's records only to answer a person's access request or to notify the persons of a breach.",
		Cedar: `permit (
  principal in Role::"auditor",
  action in [Action::"read", Action::"batch-get"],
  resource
) when { context.owner == principal.org && ["subject-access", "breach-notification"].contains(context.purpose) };`},
}

// parsePolicy parses the text of one Cedar policy.
func parsePolicy(text string) (*cedar.Policy, error) {
	ps, err := cedar.NewPolicySetFromBytes("policy", []byte(text))
	if err != nil {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "cedar", "policy does not parse: %v", err)
	}
	var out *cedar.Policy
	n := 0
	for _, p := range ps.All() {
		out = p
		n++
	}
	if n != 1 {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "cedar", "a policy object holds exactly one Cedar policy, not %d", n)
	}
	return out, nil
}

// EnsurePolicies stores the default policies that do not exist yet.
func (s *Service) EnsurePolicies(ctx context.Context) error {
	for _, p := range DefaultPolicies {
		if _, err := s.store.GetObject(ctx, sekisho.KindPolicy, p.ID); err == nil {
			continue
		} else if sekisho.Code(err) != sekisho.ENotFound {
			return err
		}
		p.Version, p.UpdatedAt, p.UpdatedBy = 1, s.now(), "sekisho"
		if err := s.put(ctx, sekisho.KindPolicy, p.ID, "", 1, &p); err != nil && sekisho.Code(err) != sekisho.EConflict {
			return err
		}
		if err := s.put(ctx, sekisho.KindPolicyVersion, fmt.Sprintf("%s@%d", p.ID, p.Version), "", 1, &p); err != nil && sekisho.Code(err) != sekisho.EConflict {
			return err
		}
	}
	return nil
}

// ListPolicies lists the stored policies (admins and auditors).
func (s *Service) ListPolicies(ctx context.Context, c sekisho.Caller) ([]*Policy, error) {
	if !c.HasRole(RoleAdmin) && !c.HasRole(RoleAuditor) {
		return nil, errAdmin("listing policies")
	}
	return list[Policy](ctx, s, sekisho.KindPolicy, "")
}

// GetPolicy returns a policy, or one version of it when version > 0.
func (s *Service) GetPolicy(ctx context.Context, c sekisho.Caller, id string, version int64) (*Policy, error) {
	if !c.HasRole(RoleAdmin) && !c.HasRole(RoleAuditor) {
		return nil, errAdmin("reading policies")
	}
	if version > 0 {
		p, _, err := get[Policy](ctx, s, sekisho.KindPolicyVersion, fmt.Sprintf("%s@%d", id, version))
		return p, err
	}
	p, _, err := get[Policy](ctx, s, sekisho.KindPolicy, id)
	return p, err
}

// PutPolicy creates or replaces a policy (root admins); every change is a
// new version, and the old ones stay readable.
func (s *Service) PutPolicy(ctx context.Context, c sekisho.Caller, p *Policy) (*Policy, error) {
	detail := "policy " + p.ID
	if !s.isRootAdmin(c) {
		return nil, s.event(ctx, c, "policy.put", detail, errAdmin("changing a policy"))
	}
	if !ValidID(p.ID) || strings.HasPrefix(p.ID, "grant") {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "id", "policy id %q: use lower-case letters, digits, '-' and '_' (not grant…)", p.ID)
	}
	if _, err := s.compile(p.ID, p.Cedar, ProblemPolicyInvalid); err != nil {
		return nil, s.event(ctx, c, "policy.put", detail, err)
	}
	old, v, err := get[Policy](ctx, s, sekisho.KindPolicy, p.ID)
	switch {
	case sekisho.Code(err) == sekisho.ENotFound:
		v = 0
	case err != nil:
		return nil, err
	default:
		_ = old
	}
	p.Version, p.UpdatedAt, p.UpdatedBy = v+1, s.now(), c.Principal
	if err := s.put(ctx, sekisho.KindPolicyVersion, fmt.Sprintf("%s@%d", p.ID, p.Version), "", 1, p); err != nil {
		return nil, err
	}
	if err := s.put(ctx, sekisho.KindPolicy, p.ID, "", p.Version, p); err != nil {
		return nil, s.event(ctx, c, "policy.put", detail, err)
	}
	return p, s.event(ctx, c, "policy.put", fmt.Sprintf("%s version %d", detail, p.Version), nil)
}

// snapshot is the compiled authorisation state: the stored policies for an
// org's own records, and for other orgs' records only the grants' policies
// and the stored forbids, so that no role policy can open another org.
type snapshot struct {
	own, cross *cedar.PolicySet
	names      map[cedar.PolicyID]string   // policy id -> "id@version"
	masks      map[cedar.PolicyID][]string // policy id -> masked fields
	grants     []*Grant
	at         time.Time
}

type snapshotCache struct {
	mu  sync.Mutex
	cur *snapshot
	// compiled holds the policies the current snapshot compiled, by their
	// Cedar text, so that a rebuild (every cache TTL, to see changes made on
	// other nodes) parses only the policies and grants whose text changed.
	// A rebuild keeps only the texts it used, so it holds no more than the
	// current policies and active grants.
	compiled map[string]*cedar.Policy
	// failed holds the texts that did not compile, so that each is audited
	// and alerted once (when it first fails on this node), not on every
	// rebuild.
	failed map[string]bool
}

func (c *snapshotCache) invalidate() {
	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
}

// snapshot returns the current snapshot, rebuilding it when older than the
// cache TTL (a grant revoked on another node is seen within it).
func (s *Service) snapshot(ctx context.Context) (*snapshot, error) {
	now := s.cfg.Now()
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	if cur := s.snap.cur; cur != nil && now.Sub(cur.at) < s.cacheTTL && now.Sub(cur.at) >= 0 {
		return cur, nil
	}
	sn := &snapshot{own: cedar.NewPolicySet(), cross: cedar.NewPolicySet(), names: map[cedar.PolicyID]string{},
		masks: map[cedar.PolicyID][]string{}, at: now}
	compiled := make(map[string]*cedar.Policy, len(s.snap.compiled))
	failed := map[string]bool{}
	var broken []string // "policy x: why" of those that failed now for the first time
	// compile returns the policy of text, or nil when it does not compile
	// (or validate): that policy or grant alone is left out of the
	// snapshot, and every other decision goes on.
	compile := func(what, id, text, typ string) *cedar.Policy {
		if cp, ok := s.snap.compiled[text]; ok {
			compiled[text] = cp
			return cp
		}
		if !s.snap.failed[text] {
			cp, err := s.compile(id, text, typ)
			if err == nil {
				compiled[text] = cp
				return cp
			}
			broken = append(broken, what+": "+sekisho.Message(err))
		}
		failed[text] = true
		return nil
	}
	pols, err := list[Policy](ctx, s, sekisho.KindPolicy, "")
	if err != nil {
		return nil, err
	}
	for _, p := range pols {
		cp := compile("policy "+p.ID+"@"+fmt.Sprint(p.Version), p.ID, p.Cedar, ProblemPolicyInvalid)
		if cp == nil {
			continue
		}
		id := cedar.PolicyID(p.ID)
		sn.own.Add(id, cp)
		if cp.Effect() == cedar.Forbid {
			sn.cross.Add(id, cp)
		}
		sn.names[id] = fmt.Sprintf("%s@%d", p.ID, p.Version)
		sn.masks[id] = maskAnnotation(cp)
	}
	grants, err := list[Grant](ctx, s, sekisho.KindGrant, "")
	if err != nil {
		return nil, err
	}
	sn.grants = grants
	for _, g := range grants {
		if g.Status != StatusActive {
			continue
		}
		cp := compile("grant "+g.ID+" of "+g.GrantorOrg, "grant:"+g.ID, grantCedar(g), ProblemGrantInvalid)
		if cp == nil {
			continue
		}
		id := cedar.PolicyID("grant:" + g.ID)
		sn.cross.Add(id, cp)
		sn.names[id] = "grant:" + g.ID
		sn.masks[id] = g.MaskedFields
	}
	s.snap.failed = failed
	for _, b := range broken {
		s.reportBroken(ctx, b)
	}
	s.snap.cur, s.snap.compiled = sn, compiled
	return sn, nil
}

// RuleCompileFailed names the alert raised when a stored policy or grant
// no longer compiles and is left out of the decisions.
const RuleCompileFailed = "policy-compile-failed"

// reportBroken audits and alerts a stored policy or grant that does not
// compile and is left out of the snapshot (for example after a schema
// change). It runs under the snapshot lock, once per text and node.
func (s *Service) reportBroken(ctx context.Context, what string) {
	detail := what + "; it is left out of every decision until it is fixed or revoked"
	c := sekisho.Caller{Principal: "sekisho", Org: s.rootOrg, Device: "sekisho"}
	ev := sekisho.Event{Time: s.now(), Org: c.Org, Principal: c.Principal, Device: c.Device, Action: "policy.compile",
		Decision: sekisho.Deny, Policy: "access-admin", Reason: RuleCompileFailed, Detail: detail}
	if s.cfg.Audit != nil {
		s.cfg.Audit.Append(context.WithoutCancel(ctx), ev)
	}
	if s.cfg.Alert != nil {
		s.cfg.Alert(ctx, RuleCompileFailed, s.rootOrg, detail)
	}
}

func maskAnnotation(p *cedar.Policy) []string {
	v, ok := p.Annotations()["masked"]
	if !ok {
		return nil
	}
	var out []string
	for _, f := range strings.Split(string(v), ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Authorizer decides the vault's requests with Cedar; see Service.Authorize.
func (s *Service) Authorizer() sekisho.Authorizer { return authorizer{s} }

type authorizer struct{ s *Service }

func (a authorizer) Authorize(ctx context.Context, req sekisho.AccessRequest) sekisho.Decision {
	return a.s.Authorize(ctx, req)
}

// cedarRequest builds the Cedar request and entities of an access request.
func cedarRequest(req sekisho.AccessRequest, owner, purpose string, dev deviceFacts, now time.Time) (cedar.EntityGetter, cedar.Request) {
	return cedarRequestFor(newCallerEntity(req.Caller), req, owner, purpose, dev, now)
}

// cedarRequestFor is cedarRequest with the caller's entity already built.
func cedarRequestFor(ce *callerEntity, req sekisho.AccessRequest, owner, purpose string, dev deviceFacts, now time.Time) (cedar.EntityGetter, cedar.Request) {
	c := req.Caller
	fields := make([]cedar.Value, len(req.Fields))
	for i, f := range req.Fields {
		fields[i] = cedar.String(f)
	}
	return ce, cedar.Request{
		Principal: ce.uid,
		Action:    cedar.NewEntityUID("Action", cedar.String(req.Action)),
		Resource:  cedar.NewEntityUID("Collection", cedar.String(req.Collection)),
		Context: cedar.NewRecord(cedar.RecordMap{
			"owner": cedar.String(owner), "region": cedar.String(req.Region), "purpose": cedar.String(purpose),
			"collection": cedar.String(req.Collection), "fields": cedar.NewSet(fields...),
			"device": cedar.String(c.Device), "now": cedar.Long(now.Unix()),
			"device_key_storage": cedar.String(dev.storage), "device_attested": cedar.Boolean(dev.attested),
		}),
	}
}

// callerEntity is the one entity a decision reads: the caller as a Cedar
// principal, in its org and roles, with its org and device as attributes.
// It is the entity getter of the decision (no map for one entity).
type callerEntity struct {
	uid cedar.EntityUID
	ent cedar.Entity
}

func newCallerEntity(c sekisho.Caller) *callerEntity {
	uid := cedar.NewEntityUID("Principal", cedar.String(c.Principal))
	parents := make([]cedar.EntityUID, 0, 1+len(c.Roles))
	parents = append(parents, cedar.NewEntityUID("Org", cedar.String(c.Org)))
	for _, r := range c.Roles {
		parents = append(parents, cedar.NewEntityUID("Role", cedar.String(r)))
	}
	return &callerEntity{uid: uid, ent: cedar.Entity{UID: uid, Parents: cedar.NewEntityUIDSet(parents...),
		Attributes: cedar.NewRecord(cedar.RecordMap{"org": cedar.String(c.Org), "device": cedar.String(c.Device)})}}
}

// Get implements cedar.EntityGetter.
func (e *callerEntity) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	if uid == e.uid {
		return e.ent, true
	}
	return cedar.Entity{}, false
}

// maxCallerEntities bounds the callerEntities cache (a few hundred bytes
// each; the map starts over when it is full).
const maxCallerEntities = 4096

// callerEntities keeps the callers' Cedar entities, built once per caller
// rather than on every decision. An entity is a function of the caller's
// principal, org, device and roles alone, and all of them are its key, so
// an entry never goes stale: a caller whose roles change is another key.
type callerEntities struct {
	mu sync.Mutex
	m  map[string]*callerEntity
}

func (ce *callerEntities) get(c sekisho.Caller) *callerEntity {
	// Each part length-prefixed: no two callers share a key, whatever
	// bytes their names hold.
	b := make([]byte, 0, len(c.Principal)+len(c.Org)+len(c.Device)+16*len(c.Roles)+16)
	add := func(part string) {
		b = strconv.AppendInt(b, int64(len(part)), 10)
		b = append(b, ':')
		b = append(b, part...)
	}
	add(c.Principal)
	add(c.Org)
	add(c.Device)
	for _, r := range c.Roles {
		add(r)
	}
	ce.mu.Lock()
	defer ce.mu.Unlock()
	if e, ok := ce.m[string(b)]; ok {
		return e
	}
	if ce.m == nil || len(ce.m) >= maxCallerEntities {
		ce.m = make(map[string]*callerEntity)
	}
	e := newCallerEntity(c)
	ce.m[string(b)] = e
	return e
}

func deny(policy, typ, format string, args ...any) sekisho.Decision {
	return sekisho.Decision{Allow: false, Policy: policy, Type: typ, Code: sekisho.EForbidden, Reason: fmt.Sprintf(format, args...)}
}

// Authorize decides one access request, default deny. Requests on the
// caller's own org's records are decided by the stored policies; requests
// on another org's records only by active grants (and stored forbids). The
// decision names the policy or grant that decided; a denial carries a
// specific problem type saying why.
func (s *Service) Authorize(ctx context.Context, req sekisho.AccessRequest) sekisho.Decision {
	sn, err := s.snapshot(ctx)
	if err != nil {
		return sekisho.Decision{Policy: "none", Code: sekisho.EUnavailable, Reason: "policies could not be loaded"}
	}
	owner := req.Owner
	if owner == "" {
		owner = req.Caller.Org
	}
	cross := owner != req.Caller.Org
	ps := sn.own
	if cross {
		ps = sn.cross
	}
	now := s.cfg.Now()
	dev := s.deviceOf(ctx, req.Caller.Device)
	ce := s.entities.get(req.Caller)
	ents, creq := cedarRequestFor(ce, req, owner, req.Caller.Purpose, dev, now)
	dec, diag := cedar.Authorize(ps, ents, creq)
	if dec == cedar.Allow {
		if d, ok := s.checkDevice(ctx, req, owner, dev); !ok {
			return d
		}
		return s.allow(req, sn, diag)
	}
	if d, ok := s.deniedForDevice(ps, req, owner, dev, sn, diag, now); ok {
		return d
	}
	if len(diag.Reasons) > 0 {
		id := diag.Reasons[0].PolicyID
		return deny(sn.names[id], "policy-forbids", "policy %s forbids %s on %s", sn.names[id], req.Action, req.Collection)
	}
	if cross {
		return s.diagnoseCross(req, sn, owner, now)
	}
	for _, p := range s.cfg.Purposes {
		if p == req.Caller.Purpose {
			continue
		}
		_, alt := cedarRequestFor(ce, req, owner, p, dev, now)
		if d, _ := cedar.Authorize(ps, ents, alt); d == cedar.Allow {
			return deny("default-deny", "purpose-not-permitted", "your roles (%s) do not permit purpose %q for %s on %s",
				strings.Join(req.Caller.Roles, ", "), req.Caller.Purpose, req.Action, req.Collection)
		}
	}
	return deny("default-deny", "role-not-permitted", "no policy permits your roles (%s) to %s records of %s",
		strings.Join(req.Caller.Roles, ", "), req.Action, req.Collection)
}

// allow turns a Cedar allow into a decision: its policies, masks and grant.
// It charges nothing: a grant's budget is the guard's (Authorize has no
// side effects).
func (s *Service) allow(req sekisho.AccessRequest, sn *snapshot, diag cedar.Diagnostic) sekisho.Decision {
	var names []string
	var masked map[string]bool
	for i, r := range diag.Reasons {
		names = append(names, sn.names[r.PolicyID])
		// A field is masked only if every permitting policy masks it.
		m := map[string]bool{}
		for _, f := range sn.masks[r.PolicyID] {
			if f == "*" {
				for _, ff := range req.Fields {
					m[ff] = true
				}
			} else {
				m[f] = true
			}
		}
		if i == 0 {
			masked = m
		} else {
			for f := range masked {
				if !m[f] {
					delete(masked, f)
				}
			}
		}
	}
	sort.Strings(names)
	d := sekisho.Decision{Allow: true, Policy: strings.Join(names, ","), Reason: "permitted by " + strings.Join(names, ", ")}
	// The first permitting policy, when a grant, is the grant the request
	// is made under (and the guard charges it).
	if len(names) > 0 {
		if id, ok := strings.CutPrefix(names[0], "grant:"); ok {
			d.Grant = id
		}
	}
	if len(masked) > 0 {
		d.MaskedFields = masked
	}
	return d
}

// diagnoseCross explains a cross-org denial from the grants that came
// closest to allowing it.
func (s *Service) diagnoseCross(req sekisho.AccessRequest, sn *snapshot, owner string, now time.Time) sekisho.Decision {
	c := req.Caller
	best, bestRank := sekisho.Decision{}, -1
	for _, g := range sn.grants {
		if g.GrantorOrg != owner || g.GranteeOrg != c.Org || (g.GranteePrincipal != "" && g.GranteePrincipal != c.Principal) {
			continue
		}
		name := "grant:" + g.ID
		var rank int
		var d sekisho.Decision
		// The first check a grant fails ranks it: the later, the closer it
		// came, and the closest grant explains the denial.
		switch {
		case !slices.Contains(g.Collections, req.Collection):
			rank, d = 1, deny(name, "grant-collection-not-listed", "grant %s does not list collection %s", g.ID, req.Collection)
		case !slices.Contains(g.Actions, string(req.Action)):
			rank, d = 2, deny(name, "grant-action-not-listed", "grant %s does not list action %s", g.ID, req.Action)
		case now.Before(g.NotBefore):
			rank, d = 3, deny(name, "grant-not-yet-valid", "grant %s is valid from %s", g.ID, g.NotBefore.Format(time.RFC3339))
		case !now.Before(g.Expires):
			rank, d = 3, deny(name, "grant-expired", "grant %s expired at %s", g.ID, g.Expires.Format(time.RFC3339))
		case !slices.Contains(g.Purposes, c.Purpose):
			rank, d = 4, deny(name, "grant-purpose-not-listed", "grant %s does not list purpose %q (it lists %s)", g.ID, c.Purpose, strings.Join(g.Purposes, ", "))
		case !slices.Contains(g.Regions, req.Region):
			rank, d = 5, deny(name, "grant-region-not-listed", "grant %s does not reach region %s (it lists %s)", g.ID, req.Region, strings.Join(g.Regions, ", "))
		case len(g.Fields) > 0 && !containsAll(g.Fields, req.Fields):
			rank, d = 6, deny(name, "grant-field-not-listed", "grant %s does not list field(s) %s (ask only for %s)", g.ID,
				strings.Join(missing(g.Fields, req.Fields), ", "), strings.Join(g.Fields, ","))
		case g.Status == StatusRevoked:
			rank, d = 7, deny(name, "grant-revoked", "grant %s was revoked", g.ID)
		case g.Status == StatusPending:
			rank, d = 7, deny(name, "grant-pending", "grant %s awaits a second admin's approval (%s)", g.ID, g.TwoPerson)
		default:
			rank, d = 8, deny(name, "grant-denied", "grant %s does not allow this request", g.ID)
		}
		if rank > bestRank {
			best, bestRank = d, rank
		}
	}
	if bestRank < 0 {
		return deny("default-deny", "no-grant", "records of org %s are not yours, and no grant gives org %s access to them", owner, c.Org)
	}
	return best
}

func containsAll(have, want []string) bool { return len(missing(have, want)) == 0 }

func missing(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}
