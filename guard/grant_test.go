package guard_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

// TestGrantBudgetChargedByTheGuard (issue 14 point 3): a grant's budget is
// charged in the guard, and only there. The access service decides the
// same request under the grant as often as it is asked, each time an
// allow naming the grant; the guard charges each record of the grantor
// read under it and refuses, as the grant's (grant-budget-exceeded, policy
// grant:<id>), the request that goes past its budget. Control: a decision
// under no grant charges nothing.
func TestGrantBudgetChargedByTheGuard(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	defs, _ := schemas.Defaults()
	byName := map[string]*sekisho.Schema{}
	for _, s := range defs {
		byName[s.Collection] = s
	}
	now := time.Date(2025, 6, 10, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	acc, err := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot", Now: clock,
		Schema: func(_ context.Context, c string) (*sekisho.Schema, error) { return byName[c], nil }})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := dpop.GenerateKey("p256")
	if _, err := acc.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		t.Fatal(err)
	}
	root := acc.RootOrg()
	admin := sekisho.Caller{Principal: "admin", Org: root, Roles: []string{access.RoleAdmin}}
	if _, err := acc.CreateOrg(ctx, admin, &access.Org{ID: "affiliate", HomeRegion: "jp"}); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.SetDeviceRequirements(ctx, admin, root, access.DeviceRequirements{CrossOrg: access.DeviceAny, Sensitive: access.DeviceAny}); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.CreatePrincipal(ctx, admin, &access.Principal{ID: "bob", Org: "affiliate", Kind: "person", Roles: []string{access.RoleMember}}); err != nil {
		t.Fatal(err)
	}
	const budget = 5
	gr, err := acc.CreateGrant(ctx, admin, &access.Grant{GranteeOrg: "affiliate", Collections: []string{"users"}, Fields: []string{"phone"},
		Regions: []string{"jp"}, Purposes: []string{"support"}, Expires: now.Add(24 * time.Hour), BudgetPerHour: budget})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(access.MaxCacheTTL)
	bob := sekisho.Caller{Principal: "bob", Org: "affiliate", Device: "bob-laptop", Roles: []string{access.RoleMember}, Purpose: "support", Source: "10.0.0.1"}
	req := sekisho.AccessRequest{Caller: bob, Action: sekisho.ActionRead, Collection: "users", Schema: byName["users"],
		Fields: []string{"phone"}, Region: "jp", Owner: root}

	// Authorize has no side effects: asked many more times than the
	// budget, it allows every time, under the grant.
	var d sekisho.Decision
	for i := range 3 * budget {
		d = acc.Authorize(ctx, req)
		if !d.Allow || d.Grant != gr.ID {
			t.Fatalf("authorisation %d under the grant: allow %v grant %q (%s)", i+1, d.Allow, d.Grant, d.Reason)
		}
	}

	g := guard.New(guard.Config{Store: store, Directory: access.NewDirectory(store), Now: clock})
	n := 0
	recs := func(org string, k int) []*sekisho.SealedRecord {
		var out []*sekisho.SealedRecord
		for range k {
			n++
			out = append(out, &sekisho.SealedRecord{ID: fmt.Sprintf("r%06d", n), Collection: "users", Org: org, Region: "jp"})
		}
		return out
	}
	check := func(d sekisho.Decision, rs []*sekisho.SealedRecord) sekisho.Decision {
		now = now.Add(time.Second)
		bob.RequestID = fmt.Sprint("req-", n)
		r := req
		r.Caller = bob
		return g.Check(ctx, r, rs, d)
	}
	// Control first: the grantor's records under a decision that names no
	// grant charge nothing (the budget is whole afterwards).
	if out := check(sekisho.Decision{Allow: true, Policy: "role-member"}, recs(root, 2)); !out.Allow {
		t.Fatalf("no grant: refused (%s)", out.Reason)
	}
	// The grant's budget: 2 + 2 records pass, the next 2 go past 5.
	for i := range 2 {
		if out := check(d, recs(root, 2)); !out.Allow {
			t.Fatalf("request %d under the grant (%d of %d records): refused (%s)", i+1, 2*(i+1), budget, out.Reason)
		}
	}
	out := check(d, recs(root, 2))
	if out.Allow || out.Type != guard.ProblemGrantBudget || out.Policy != "grant:"+gr.ID || out.Code != sekisho.EForbidden {
		t.Fatalf("past the budget: allow %v type %q policy %q code %q (%s); want grant-budget-exceeded under grant:%s",
			out.Allow, out.Type, out.Policy, out.Code, out.Reason, gr.ID)
	}
	// And the access service still allows the request: the refusal is the guard's.
	if d := acc.Authorize(ctx, req); !d.Allow {
		t.Fatalf("after the budget was used, Authorize refuses (%s): it must not count", d.Reason)
	}
}
