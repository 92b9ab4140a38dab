package access_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/sqlite"
)

// TestDeviceKeyStorage (issue 16 point 2): a device records where its
// enrolment said the key lives (file when nothing is claimed), never
// attested on a claim alone; an unknown claim is refused on the field
// key_storage; a device stored before the field existed reads as file.
func TestDeviceKeyStorage(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot",
		Schema: func(context.Context, string) (*sekisho.Schema, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := dpop.GenerateKey("p256")
	res, err := s.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK(), KeyStorage: "tpm"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Device.KeyStorage != "tpm" || res.Device.Attested {
		t.Fatalf("bootstrap device: %q attested %v", res.Device.KeyStorage, res.Device.Attested)
	}
	admin := sekisho.Caller{Principal: "admin", Org: s.RootOrg(), Roles: []string{access.RoleAdmin}}
	if _, err := s.CreatePrincipal(ctx, admin, &access.Principal{ID: "bob", Org: s.RootOrg(), Kind: "person", Roles: []string{access.RoleMember}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ claim, want string }{{"", "file"}, {"file", "file"}, {"tpm", "tpm"}, {"pkcs11", "pkcs11"}, {"webauthn", "webauthn"}} {
		k, _ := dpop.GenerateKey("ed25519")
		d, err := s.EnrolDevice(ctx, sekisho.Caller{}, "bob", "laptop", tc.claim, k.JWK())
		if err != nil {
			t.Fatalf("enrol claiming %q: %v", tc.claim, err)
		}
		got, err := s.GetDevice(ctx, admin, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.KeyStorage != tc.want || got.KeyStorage != tc.want || got.Attested {
			t.Errorf("claim %q: enrolled %q, stored %q attested %v; want %q, false", tc.claim, d.KeyStorage, got.KeyStorage, got.Attested, tc.want)
		}
		if d, err := s.ApproveDevice(ctx, admin, d.ID); err != nil || d.KeyStorage != tc.want {
			t.Errorf("approve: %v %+v", err, d)
		}
	}
	for _, bad := range []string{"TPM", "hsm", "file "} {
		k, _ := dpop.GenerateKey("ed25519")
		_, err := s.EnrolDevice(ctx, sekisho.Caller{}, "bob", "laptop", bad, k.JWK())
		var fe *sekisho.Error
		if sekisho.Code(err) != sekisho.EInvalid || !errors.As(err, &fe) || fe.Field != "key_storage" {
			t.Errorf("claim %q: %v, want invalid key_storage", bad, err)
		}
	}
	var old access.Device
	if err := json.Unmarshal([]byte(`{"id":"x","principal":"bob","status":"approved"}`), &old); err != nil || old.KeyStorage != "file" || old.Attested {
		t.Fatalf("a device stored before key_storage: %v %+v", err, old)
	}
}
