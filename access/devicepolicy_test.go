package access_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

// TestDeviceRequirements (issue 16 point 3): grants, org defaults and Cedar
// policies require hardware-bound devices through
// context.device_key_storage; a file-key device of the same principal is
// refused with device-not-hardware-bound where its TPM device is allowed
// (positive control beside every refusal).
func TestDeviceRequirements(t *testing.T) {
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
	affAdmin := sekisho.Caller{Principal: "aff-admin", Org: "affiliate", Roles: []string{access.RoleAdmin}}
	for _, p := range []*access.Principal{
		{ID: "bob", Org: "affiliate", Kind: "person", Roles: []string{access.RoleMember}},
		{ID: "carol", Org: root, Kind: "person", Roles: []string{access.RoleMember}},
	} {
		c := admin
		if _, err := s.CreatePrincipal(ctx, c, p); err != nil {
			t.Fatal(err)
		}
	}
	enrol := func(principal, storage string) string {
		k, _ := dpop.GenerateKey("p256")
		d, err := s.EnrolDevice(ctx, sekisho.Caller{}, principal, "laptop", storage, k.JWK())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ApproveDevice(ctx, admin, d.ID); err != nil {
			t.Fatal(err)
		}
		return d.ID
	}
	bobFile, bobTPM, carolFile, carolTPM := enrol("bob", "file"), enrol("bob", "tpm"), enrol("carol", "file"), enrol("carol", "tpm")
	bob := func(dev string) sekisho.Caller {
		return sekisho.Caller{Principal: "bob", Org: "affiliate", Device: dev, Roles: []string{access.RoleMember}, Purpose: "support"}
	}
	carol := func(dev string) sekisho.Caller {
		return sekisho.Caller{Principal: "carol", Org: root, Device: dev, Roles: []string{access.RoleMember}, Purpose: "support"}
	}
	read := func(c sekisho.Caller, fields ...string) sekisho.Decision {
		return s.Authorize(ctx, sekisho.AccessRequest{Caller: c, Action: sekisho.ActionRead, Collection: "users", Schema: byName["users"],
			Fields: fields, Region: "jp", Owner: root})
	}
	expect := func(what string, d sekisho.Decision, allow bool) {
		t.Helper()
		if d.Allow != allow || (!allow && d.Type != access.ProblemDeviceNotHardwareBound) {
			t.Errorf("%s: allow %v type %q (%s); want allow %v", what, d.Allow, d.Type, d.Reason, allow)
		}
	}
	settle := func() { clk.add(access.MaxCacheTTL) }

	// A grant that requires hardware-bound devices (the org's own cross-org
	// requirement set to any, so the grant alone decides).
	if _, err := s.SetDeviceRequirements(ctx, admin, root, access.DeviceRequirements{CrossOrg: access.DeviceAny, Sensitive: access.DeviceAny}); err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGrant(ctx, admin, &access.Grant{GranteeOrg: "affiliate", Collections: []string{"users"}, Fields: []string{"phone", "email"},
		Regions: []string{"jp"}, Purposes: []string{"support"}, Expires: clk.now().Add(24 * time.Hour), DeviceRequirement: access.DeviceHardwareBound})
	if err != nil || g.Status != access.StatusActive {
		t.Fatalf("grant: %v %+v", err, g)
	}
	settle()
	expect("grant hardware-bound, bob's file key", read(bob(bobFile), "phone"), false)
	expect("grant hardware-bound, bob's TPM key", read(bob(bobTPM), "phone"), true)
	if d := read(bob(bobFile), "phone"); d.Policy != "grant:"+g.ID {
		t.Errorf("the refusal names %q, want the grant", d.Policy)
	}
	// The same grant's other checks still explain their own refusals.
	if d := read(bob(bobTPM), "display_name"); d.Allow || d.Type != "grant-field-not-listed" {
		t.Errorf("TPM key, unlisted field: %v %q", d.Allow, d.Type)
	}
	if _, err := s.RevokeGrant(ctx, admin, g.ID); err != nil {
		t.Fatal(err)
	}

	// A grant that says nothing: the grantor org's cross-org requirement
	// decides: any (set above), then back to the default (hardware-bound).
	g, err = s.CreateGrant(ctx, admin, &access.Grant{GranteeOrg: "affiliate", Collections: []string{"users"}, Fields: []string{"phone"},
		Regions: []string{"jp"}, Purposes: []string{"support"}, Expires: clk.now().Add(24 * time.Hour)})
	if err != nil || g.DeviceRequirement != "" || strings.Contains(g.Cedar, "device_key_storage") {
		t.Fatalf("grant without a requirement: %v %+v", err, g)
	}
	settle()
	expect("org cross_org any, bob's file key", read(bob(bobFile), "phone"), true)
	if _, err := s.SetDeviceRequirements(ctx, admin, root, access.DeviceRequirements{}); err != nil {
		t.Fatal(err)
	}
	settle()
	expect("default cross_org, bob's file key", read(bob(bobFile), "phone"), false)
	expect("default cross_org, bob's TPM key", read(bob(bobTPM), "phone"), true)
	if _, err := s.SetDeviceRequirements(ctx, admin, root, access.DeviceRequirements{CrossOrg: access.DeviceAttested}); err != nil {
		t.Fatal(err)
	}
	settle()
	expect("cross_org attested, bob's TPM key (not attested)", read(bob(bobTPM), "phone"), false)

	// Sensitive fields of the org's own records (users.gender): the
	// default wants a hardware-bound device; other fields do not.
	expect("default sensitive, carol's file key, gender", read(carol(carolFile), "gender"), false)
	expect("default sensitive, carol's file key, phone", read(carol(carolFile), "phone"), true)
	expect("default sensitive, carol's TPM key, gender", read(carol(carolTPM), "gender"), true)
	if _, err := s.SetDeviceRequirements(ctx, admin, root, access.DeviceRequirements{Sensitive: access.DeviceAny}); err != nil {
		t.Fatal(err)
	}
	settle()
	expect("sensitive any, carol's file key, gender", read(carol(carolFile), "gender"), true)

	// A Cedar policy on context.device_key_storage: fraud work only from
	// hardware-bound devices.
	if _, err := s.PutPolicy(ctx, admin, &access.Policy{ID: "fraud-hardware",
		Cedar: `forbid (principal, action, resource) when { context.purpose == "fraud" && (context.device_key_storage == "file" || !context.device_attested && context.device_key_storage == "webauthn") };`}); err != nil {
		t.Fatal(err)
	}
	settle()
	fraud := func(c sekisho.Caller) sekisho.Caller { c.Purpose = "fraud"; return c }
	expect("policy, carol's file key", read(fraud(carol(carolFile)), "phone"), false)
	expect("policy, carol's TPM key", read(fraud(carol(carolTPM)), "phone"), true)
	if d := read(fraud(carol(carolFile)), "phone"); d.Policy != "fraud-hardware@1" {
		t.Errorf("the refusal names %q, want the forbidding policy", d.Policy)
	}

	// Who may set it, and what it may be.
	if _, err := s.SetDeviceRequirements(ctx, affAdmin, root, access.DeviceRequirements{CrossOrg: access.DeviceAny}); sekisho.Code(err) != sekisho.EForbidden {
		t.Errorf("another org's admin set the requirements: %v", err)
	}
	if _, err := s.SetDeviceRequirements(ctx, affAdmin, "affiliate", access.DeviceRequirements{CrossOrg: access.DeviceAny}); err != nil {
		t.Errorf("the org's own admin: %v", err)
	}
	var fe *sekisho.Error
	if _, err := s.SetDeviceRequirements(ctx, admin, root, access.DeviceRequirements{Sensitive: "tpm"}); !errors.As(err, &fe) || fe.Field != "sensitive" {
		t.Errorf("sensitive tpm: %v", err)
	}
	_, err = s.CreateGrant(ctx, admin, &access.Grant{GranteeOrg: "affiliate", Collections: []string{"users"}, Regions: []string{"jp"},
		Purposes: []string{"support"}, Expires: clk.now().Add(time.Hour), DeviceRequirement: "yubikey"})
	if !errors.As(err, &fe) || fe.Field != "device_requirement" || fe.Type != access.ProblemGrantInvalid {
		t.Errorf("grant device_requirement yubikey: %v", err)
	}
}
