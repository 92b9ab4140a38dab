package access_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/sqlite"
)

// TestBootstrapAttestationRefused: a bootstrap whose evidence does not
// verify is attestation-invalid and leaves the bootstrap token unspent
// (control: the same bootstrap without evidence then succeeds,
// unattested).
func TestBootstrapAttestationRefused(t *testing.T) {
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
	bad := &access.TPMEvidence{Format: "tpm", EKCert: []byte("not a certificate"), Challenge: "1"}
	_, err = s.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK(), KeyStorage: "tpm", Attestation: bad})
	var se *sekisho.Error
	if err == nil || !errors.As(err, &se) || se.Type != access.ProblemAttestationInvalid {
		t.Fatalf("bootstrap with evidence that does not verify: %v", err)
	}
	res, err := s.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK(), KeyStorage: "tpm"})
	if err != nil || res.Device.Attested || res.Device.KeyStorage != "tpm" {
		t.Fatalf("control: the token after the refusal: %v %+v", err, res)
	}
}
