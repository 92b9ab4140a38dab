package access

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
)

// MaxGrantLifetime bounds a grant's validity; a longer need is a new grant.
const MaxGrantLifetime = 366 * 24 * time.Hour

// CreateGrant creates a grant of the caller's org (the grantor). A grant
// that reaches a region other than the grantee's home region, or a sensitive
// field, is created pending: a second, distinct admin of the grantor must
// approve it (two-person rule). Otherwise it is active at once.
func (s *Service) CreateGrant(ctx context.Context, c sekisho.Caller, g *Grant) (*Grant, error) {
	if g.GrantorOrg == "" {
		g.GrantorOrg = c.Org
	}
	detail := fmt.Sprintf("grant from %s to %s", g.GrantorOrg, g.GranteeOrg)
	if err := s.requireAdminOf(c, g.GrantorOrg, "creating a grant", false); err != nil {
		return nil, s.event(ctx, c, "grant.create", detail, err)
	}
	if err := s.validateGrant(ctx, g); err != nil {
		return nil, s.event(ctx, c, "grant.create", detail, err)
	}
	now := s.now()
	g.ID = newID("g-")
	g.CreatedBy, g.CreatedAt = c.Principal, now
	g.Approvals = []Approval{{Principal: c.Principal, At: now}}
	g.RevokedAt, g.RevokedBy = nil, ""
	g.Status = StatusActive
	if g.TwoPerson != "" {
		g.Status = StatusPending
	}
	// The grant's policy is compiled and validated now: a grant that would
	// not compile is refused here, never stored to break a later snapshot.
	g.Cedar = grantCedar(g)
	if _, err := s.compile("grant:"+g.ID, g.Cedar, ProblemGrantInvalid); err != nil {
		return nil, s.event(ctx, c, "grant.create", detail, err)
	}
	if err := s.put(ctx, sekisho.KindGrant, g.ID, g.GrantorOrg, 1, g); err != nil {
		return nil, s.event(ctx, c, "grant.create", detail, err)
	}
	return g, s.event(ctx, c, "grant.create", detail+" "+g.ID+" "+g.Status, nil)
}

// badGrant is a grant-invalid problem about one field of a grant.
func badGrant(field, format string, args ...any) error {
	return &sekisho.Error{Code: sekisho.EInvalid, Type: ProblemGrantInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// validateGrant checks every name a grant holds against what exists (orgs,
// principals, collections and their fields, the configured regions, the
// known purposes, the actions), fills defaults and decides whether it needs
// two admins. Anything unknown is grant-invalid naming the value, so that
// no grant can carry a name that its policy would have to spell oddly.
func (s *Service) validateGrant(ctx context.Context, g *Grant) error {
	if g.GranteeOrg == "" || g.GranteeOrg == g.GrantorOrg {
		return badGrant("grantee_org", "a grant names another org as grantee (an org's own records need no grant)")
	}
	if !ValidID(g.GranteeOrg) {
		return badGrant("grantee_org", "org %q does not exist", g.GranteeOrg)
	}
	grantee, _, err := get[Org](ctx, s, sekisho.KindOrg, g.GranteeOrg)
	if err != nil {
		return badGrant("grantee_org", "org %q does not exist", g.GranteeOrg)
	}
	if g.GranteePrincipal != "" {
		if !ValidID(g.GranteePrincipal) {
			return badGrant("grantee_principal", "principal %q is not a principal of %s", g.GranteePrincipal, g.GranteeOrg)
		}
		p, _, err := get[Principal](ctx, s, sekisho.KindPrincipal, g.GranteePrincipal)
		if err != nil || p.Org != g.GranteeOrg {
			return badGrant("grantee_principal", "principal %q is not a principal of %s", g.GranteePrincipal, g.GranteeOrg)
		}
	}
	if len(g.Collections) == 0 {
		return badGrant("collections", "name at least one collection")
	}
	if len(g.Regions) == 0 {
		return badGrant("regions", "name at least one region")
	}
	if len(g.Purposes) == 0 {
		return badGrant("purposes", "name at least one purpose")
	}
	if len(g.Actions) == 0 {
		g.Actions = []string{sekisho.ActionRead, sekisho.ActionLookup, sekisho.ActionBatchGet}
	}
	for _, r := range g.Regions {
		if !s.regions[r] {
			return badGrant("regions", "region %q is not one of this instance's regions (%s)", r, strings.Join(s.cfg.Regions, ", "))
		}
	}
	for _, p := range g.Purposes {
		if !s.purposes[p] {
			return badGrant("purposes", "purpose %q is not a known purpose", p)
		}
	}
	for _, a := range g.Actions {
		if !slices.Contains(Actions, a) {
			return badGrant("actions", "action %q is not one of %s", a, strings.Join(Actions, ", "))
		}
	}
	var reasons []string
	for _, r := range g.Regions {
		if r != grantee.HomeRegion {
			reasons = append(reasons, fmt.Sprintf("region %s is not %s's home region %s", r, g.GranteeOrg, grantee.HomeRegion))
		}
	}
	// known: every field of the named collections; a field or masked field
	// must be a field of at least one of them.
	known := map[string]bool{}
	schemas := make([]*sekisho.Schema, 0, len(g.Collections))
	for _, col := range g.Collections {
		if !sekisho.ValidName(col) {
			return badGrant("collections", "collection %q does not exist", col)
		}
		sch, err := s.cfg.Schema(ctx, col)
		if err != nil {
			if sekisho.Code(err) == sekisho.ENotFound {
				return badGrant("collections", "collection %q does not exist", col)
			}
			return err
		}
		schemas = append(schemas, sch)
		for _, f := range sch.FieldNames() {
			known[f] = true
		}
	}
	for _, f := range g.Fields {
		if !known[f] {
			return badGrant("fields", "field %q is not a field of %s", f, strings.Join(g.Collections, ", "))
		}
	}
	for _, f := range g.MaskedFields {
		if f != "*" && !known[f] {
			return badGrant("masked_fields", "masked field %q is not a field of %s (or \"*\" for every field)", f, strings.Join(g.Collections, ", "))
		}
	}
	for i, col := range g.Collections {
		sch := schemas[i]
		fields := g.Fields
		if len(fields) == 0 {
			fields = sch.FieldNames()
		}
		for _, f := range fields {
			fd, ok := sch.Field(f)
			if !ok {
				continue // a field of another of the grant's collections
			}
			if fd.Classification == sekisho.ClassSensitive && !slices.Contains(g.MaskedFields, f) && !slices.Contains(g.MaskedFields, "*") {
				reasons = append(reasons, fmt.Sprintf("field %s.%s is sensitive", col, f))
			}
		}
	}
	now := s.now()
	g.NotBefore = timeOr(g.NotBefore, now).UTC()
	if g.Expires.IsZero() {
		return badGrant("expires", "a grant must expire (at most %d days)", int(MaxGrantLifetime.Hours()/24))
	}
	g.Expires = g.Expires.UTC()
	if !g.Expires.After(g.NotBefore) || g.Expires.Sub(g.NotBefore) > MaxGrantLifetime {
		return badGrant("expires", "expires must be after not_before and at most %d days later", int(MaxGrantLifetime.Hours()/24))
	}
	if err := checkDeviceLevel("device_requirement", g.DeviceRequirement); err != nil {
		return badGrant("device_requirement", "%s", sekisho.Message(err))
	}
	if g.BudgetPerHour < 0 || g.BudgetTotal < 0 {
		return badGrant("budget_per_hour", "budgets are record counts (0 means none)")
	}
	for _, l := range [][]string{g.Collections, g.Fields, g.MaskedFields, g.Regions, g.Purposes, g.Actions} {
		sort.Strings(l)
	}
	g.TwoPerson = strings.Join(reasons, "; ")
	return nil
}

// MinApproverTenure is how long before a grant was created its second
// approver must have held the admin role with an approved device, so that
// an admin cannot satisfy the two-person rule with an admin it has just
// created.
const MinApproverTenure = 24 * time.Hour

// ApproveGrant records a second admin's approval of a pending grant, which
// makes it active. The creator cannot approve their own grant, and the
// approver must have held the admin role for MinApproverTenure before the
// grant was created.
func (s *Service) ApproveGrant(ctx context.Context, c sekisho.Caller, id string) (*Grant, error) {
	g, v, err := get[Grant](ctx, s, sekisho.KindGrant, id)
	if err != nil {
		return nil, err
	}
	detail := "grant " + id
	if err := s.requireAdminOf(c, g.GrantorOrg, "approving a grant", false); err != nil {
		return nil, s.event(ctx, c, "grant.approve", detail, err)
	}
	if g.Status != StatusPending {
		return nil, sekisho.TypedErrorf(sekisho.EConflict, "grant-not-pending", "grant %s is %s, not pending", id, g.Status)
	}
	approved := g.CreatedBy == c.Principal
	for _, a := range g.Approvals {
		approved = approved || a.Principal == c.Principal
	}
	if approved {
		return nil, s.event(ctx, c, "grant.approve", detail, sekisho.TypedErrorf(sekisho.EForbidden, "two-person-rule",
			"grant %s needs a second admin (%s): %s created or has already approved it", id, g.TwoPerson, c.Principal))
	}
	since, err := s.adminSince(ctx, c.Principal)
	if err != nil {
		return nil, err
	}
	if since.IsZero() || since.After(g.CreatedAt.Add(-MinApproverTenure)) {
		return nil, s.event(ctx, c, "grant.approve", detail, sekisho.TypedErrorf(sekisho.EForbidden, "approver-too-recent",
			"grant %s needs a second admin who held the admin role (and an approved device) at least %s before the grant was created (%s); %s did not",
			id, MinApproverTenure, g.CreatedAt.Format(time.RFC3339), c.Principal))
	}
	g.Approvals = append(g.Approvals, Approval{Principal: c.Principal, At: s.now()})
	g.Status = StatusActive
	if err := s.put(ctx, sekisho.KindGrant, g.ID, g.GrantorOrg, v+1, g); err != nil {
		return nil, err
	}
	return g, s.event(ctx, c, "grant.approve", detail+" approved by "+g.Approvals[0].Principal+" and "+c.Principal, nil)
}

// RevokeGrant ends a grant (an admin of the grantor or of the grantee).
func (s *Service) RevokeGrant(ctx context.Context, c sekisho.Caller, id string) (*Grant, error) {
	g, v, err := get[Grant](ctx, s, sekisho.KindGrant, id)
	if err != nil {
		return nil, err
	}
	detail := "grant " + id
	if s.requireAdminOf(c, g.GrantorOrg, "", true) != nil && s.requireAdminOf(c, g.GranteeOrg, "", false) != nil {
		return nil, s.event(ctx, c, "grant.revoke", detail, errAdmin("revoking a grant"))
	}
	now := s.now()
	g.Status, g.RevokedAt, g.RevokedBy = StatusRevoked, &now, c.Principal
	if err := s.put(ctx, sekisho.KindGrant, g.ID, g.GrantorOrg, v+1, g); err != nil {
		return nil, err
	}
	return g, s.event(ctx, c, "grant.revoke", detail, nil)
}

// GetGrant returns a grant the caller's org gives or holds.
func (s *Service) GetGrant(ctx context.Context, c sekisho.Caller, id string) (*Grant, error) {
	g, _, err := get[Grant](ctx, s, sekisho.KindGrant, id)
	if err != nil || (g.GrantorOrg != c.Org && g.GranteeOrg != c.Org && !s.seesAll(c)) {
		return nil, sekisho.Errorf(sekisho.ENotFound, "grant %q not found", id)
	}
	return g, nil
}

// ListGrants lists the grants the caller's org gives or holds; root admins
// and auditors may list any org's (org "" for all).
func (s *Service) ListGrants(ctx context.Context, c sekisho.Caller, org string) ([]*Grant, error) {
	if org != "" && org != c.Org && !s.seesAll(c) {
		return nil, s.event(ctx, c, "grant.list", "org "+org, errScope(org))
	}
	if org == "" && !s.seesAll(c) {
		org = c.Org
	}
	all, err := list[Grant](ctx, s, sekisho.KindGrant, "")
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, g := range all {
		if org == "" || g.GrantorOrg == org || g.GranteeOrg == org {
			out = append(out, g)
		}
	}
	return out, nil
}

// grantCedar compiles a grant to the Cedar policy that enforces it. Every
// name is quoted with cedarString, so no value, whatever it holds, can
// produce text the Cedar parser refuses or read as anything but a string.
func grantCedar(g *Grant) string {
	var b strings.Builder
	fmt.Fprintf(&b, "@id(%s)\n", cedarString("grant:"+g.ID))
	if len(g.MaskedFields) > 0 {
		fmt.Fprintf(&b, "@masked(%s)\n", cedarString(strings.Join(g.MaskedFields, ",")))
	}
	b.WriteString("permit (\n  ")
	if g.GranteePrincipal != "" {
		fmt.Fprintf(&b, "principal == Principal::%s", cedarString(g.GranteePrincipal))
	} else {
		fmt.Fprintf(&b, "principal in Org::%s", cedarString(g.GranteeOrg))
	}
	b.WriteString(",\n  action in [")
	for i, a := range g.Actions {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "Action::%s", cedarString(a))
	}
	b.WriteString("],\n  resource\n) when {\n")
	fmt.Fprintf(&b, "  principal.org == %s &&\n  context.owner == %s &&\n", cedarString(g.GranteeOrg), cedarString(g.GrantorOrg))
	fmt.Fprintf(&b, "  %s.contains(context.collection) &&\n", cedarSet(g.Collections))
	fmt.Fprintf(&b, "  %s.contains(context.purpose) &&\n", cedarSet(g.Purposes))
	fmt.Fprintf(&b, "  %s.contains(context.region) &&\n", cedarSet(g.Regions))
	if len(g.Fields) > 0 {
		fmt.Fprintf(&b, "  %s.containsAll(context.fields) &&\n", cedarSet(g.Fields))
	}
	switch g.DeviceRequirement {
	case DeviceHardwareBound:
		b.WriteString("  context.device_key_storage != \"file\" &&\n")
	case DeviceAttested:
		b.WriteString("  context.device_key_storage != \"file\" && context.device_attested &&\n")
	}
	fmt.Fprintf(&b, "  context.now >= %d && context.now < %d\n};\n", g.NotBefore.Unix(), g.Expires.Unix())
	return b.String()
}

func cedarSet(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = cedarString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// adminSince returns when principal came to hold the admin role: the later
// of its creation (roles are fixed at creation) and its first device
// approval (revoked devices count). Zero when it is not an admin or has
// never had a device approved.
func (s *Service) adminSince(ctx context.Context, principal string) (time.Time, error) {
	p, _, err := get[Principal](ctx, s, sekisho.KindPrincipal, principal)
	if err != nil {
		if sekisho.Code(err) == sekisho.ENotFound {
			return time.Time{}, nil
		}
		return time.Time{}, err
	}
	if !p.HasRole(RoleAdmin) {
		return time.Time{}, nil
	}
	devs, err := list[Device](ctx, s, sekisho.KindDevice, p.Org)
	if err != nil {
		return time.Time{}, err
	}
	var first time.Time
	for _, d := range devs {
		if d.Principal == p.ID && d.ApprovedAt != nil && (first.IsZero() || d.ApprovedAt.Before(first)) {
			first = *d.ApprovedAt
		}
	}
	if first.IsZero() {
		return first, nil
	}
	if p.CreatedAt.After(first) {
		return p.CreatedAt, nil
	}
	return first, nil
}
