package access_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

// TestDirectory (issue 14 point 2): the directory shows what the access
// service stored, as the views other packages read: an org's time zone, a
// principal's org and roles, a device's principal, a grant's parties and
// budgets, and an org's active admins (a revoked admin is not one). A
// missing object is ENotFound.
func TestDirectory(t *testing.T) {
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
	if _, err := s.CreateOrg(ctx, admin, &access.Org{ID: "affiliate", HomeRegion: "th", TimeZone: "Asia/Bangkok"}); err != nil {
		t.Fatal(err)
	}
	// The root org's admin seats the affiliate's first admin, who makes the rest.
	if _, err := s.CreatePrincipal(ctx, admin, &access.Principal{ID: "aff-admin", Org: "affiliate", Kind: "person", Roles: []string{access.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	affAdmin := sekisho.Caller{Principal: "aff-admin", Org: "affiliate", Roles: []string{access.RoleAdmin}}
	for _, p := range []*access.Principal{
		{ID: "aff-old", Org: "affiliate", Kind: "person", Roles: []string{access.RoleAdmin}},
		{ID: "bob", Org: "affiliate", Kind: "person", Roles: []string{access.RoleMember}},
	} {
		if _, err := s.CreatePrincipal(ctx, affAdmin, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RevokePrincipal(ctx, affAdmin, "aff-old"); err != nil {
		t.Fatal(err)
	}
	bobKey, _ := dpop.GenerateKey("p256")
	dev, err := s.EnrolDevice(ctx, sekisho.Caller{}, "bob", "bob's laptop", "", bobKey.JWK())
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGrant(ctx, admin, &access.Grant{GranteeOrg: "affiliate", Collections: []string{"users"}, Fields: []string{"phone"},
		Regions: []string{"th"}, Purposes: []string{"support"}, Expires: clk.now().Add(24 * time.Hour), BudgetPerHour: 30, BudgetTotal: 300})
	if err != nil {
		t.Fatal(err)
	}

	dir := access.NewDirectory(store)
	if o, err := dir.Org(ctx, "affiliate"); err != nil || o.TimeZone != "Asia/Bangkok" || o.HomeRegion != "th" {
		t.Errorf("org affiliate: %+v, %v", o, err)
	}
	if p, err := dir.Principal(ctx, "bob"); err != nil || p.Org != "affiliate" || !p.HasRole(access.RoleMember) || p.HasRole(access.RoleAdmin) || p.Status != access.StatusActive {
		t.Errorf("principal bob: %+v, %v", p, err)
	}
	if d, err := dir.Device(ctx, dev.ID); err != nil || d.Principal != "bob" || d.Org != "affiliate" || d.Status != access.StatusPending || d.KeyStorage != access.KeyStorageFile {
		t.Errorf("device of bob: %+v, %v", d, err)
	}
	if e, err := dir.Grant(ctx, g.ID); err != nil || e.GrantorOrg != root || e.GranteeOrg != "affiliate" || e.BudgetPerHour != 30 || e.BudgetTotal != 300 ||
		!slices.Equal(e.Collections, []string{"users"}) {
		t.Errorf("grant %s: %+v, %v", g.ID, e, err)
	}
	if admins, err := dir.OrgAdmins(ctx, "affiliate"); err != nil || !slices.Equal(admins, []string{"aff-admin"}) {
		t.Errorf("admins of affiliate: %v, %v; want [aff-admin] (aff-old was revoked)", admins, err)
	}
	if admins, err := dir.OrgAdmins(ctx, root); err != nil || !slices.Equal(admins, []string{"admin"}) {
		t.Errorf("admins of %s: %v, %v", root, admins, err)
	}
	ps, err := dir.Principals(ctx)
	if err != nil || len(ps) != 4 {
		t.Errorf("principals: %d, %v; want 4", len(ps), err)
	}
	ds, err := dir.Devices(ctx)
	if err != nil || len(ds) != 2 { // the bootstrap admin's and bob's
		t.Errorf("devices: %d, %v; want 2", len(ds), err)
	}
	gs, err := dir.Grants(ctx)
	if err != nil || len(gs) != 1 || gs[0].ID != g.ID {
		t.Errorf("grants: %+v, %v", gs, err)
	}
	for what, err := range map[string]error{
		"principal": func() error { _, err := dir.Principal(ctx, "nobody"); return err }(),
		"device":    func() error { _, err := dir.Device(ctx, "nokey"); return err }(),
		"grant":     func() error { _, err := dir.Grant(ctx, "g-none"); return err }(),
		"org":       func() error { _, err := dir.Org(ctx, "noorg"); return err }(),
	} {
		if sekisho.Code(err) != sekisho.ENotFound {
			t.Errorf("missing %s: %v, want not found", what, err)
		}
	}
}
