package access_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

// TestDecisionGrant (issue 14 point 1): a decision made under a grant names
// the grant in its Grant field (the guard charges it without parsing the
// policy string); a decision of the caller's own org, and a denial, name none.
func TestDecisionGrant(t *testing.T) {
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
	clk := &clock{t: time.Now()}
	s, err := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot", Now: clk.now,
		Schema: func(_ context.Context, c string) (*sekisho.Schema, error) { return byName[c], nil }})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := dpop.GenerateKey("p256")
	if _, err := s.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		t.Fatal(err)
	}
	root := s.RootOrg()
	admin := sekisho.Caller{Principal: "admin", Org: root, Roles: []string{access.RoleAdmin}}
	if _, err := s.CreateOrg(ctx, admin, &access.Org{ID: "affiliate", HomeRegion: "jp"}); err != nil {
		t.Fatal(err)
	}
	// The org's default asks cross-org reads for hardware-bound devices; any
	// device here, so that the grant alone decides.
	if _, err := s.SetDeviceRequirements(ctx, admin, root, access.DeviceRequirements{CrossOrg: access.DeviceAny, Sensitive: access.DeviceAny}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePrincipal(ctx, admin, &access.Principal{ID: "bob", Org: "affiliate", Kind: "person", Roles: []string{access.RoleMember}}); err != nil {
		t.Fatal(err)
	}
	bob := sekisho.Caller{Principal: "bob", Org: "affiliate", Roles: []string{access.RoleMember}, Purpose: "support"}
	read := func(c sekisho.Caller, owner string, fields ...string) sekisho.Decision {
		return s.Authorize(ctx, sekisho.AccessRequest{Caller: c, Action: sekisho.ActionRead, Collection: "users", Schema: byName["users"],
			Fields: fields, Region: "jp", Owner: owner})
	}
	if d := read(bob, root, "phone"); d.Allow || d.Grant != "" {
		t.Fatalf("before any grant: allow %v grant %q (%s)", d.Allow, d.Grant, d.Reason)
	}
	g, err := s.CreateGrant(ctx, admin, &access.Grant{GranteeOrg: "affiliate", Collections: []string{"users"}, Fields: []string{"phone"},
		Regions: []string{"jp"}, Purposes: []string{"support"}, Expires: clk.now().Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	clk.add(access.MaxCacheTTL)
	if d := read(bob, root, "phone"); !d.Allow || d.Grant != g.ID || d.Policy != "grant:"+g.ID {
		t.Errorf("under the grant: allow %v grant %q policy %q (%s); want grant %s", d.Allow, d.Grant, d.Policy, d.Reason, g.ID)
	}
	// A field the grant does not list: refused, and no grant charged.
	if d := read(bob, root, "display_name"); d.Allow || d.Grant != "" {
		t.Errorf("unlisted field: allow %v grant %q", d.Allow, d.Grant)
	}
	// The caller's own org: allowed by its role, no grant.
	if d := read(bob, "affiliate", "phone"); !d.Allow || d.Grant != "" {
		t.Errorf("own org: allow %v grant %q (%s)", d.Allow, d.Grant, d.Reason)
	}
}
