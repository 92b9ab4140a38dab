package tpmkey_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/client/tpmkey"
	"github.com/sekisho/sekisho/internal/swtpmtest"
)

// TestKeyStaysInItsTPM: a key made in one swtpm signs there (the signature
// verifies with its public key), and its blob cannot sign in another swtpm
// (another state: other seeds).
func TestKeyStaysInItsTPM(t *testing.T) {
	ctx := context.Background()
	a, b := swtpmtest.Start(t), swtpmtest.Start(t)
	blob, err := tpmkey.Create(ctx, a.TCTI)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := blob.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("proof"))
	s, err := blob.Signer()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // no transient object is left behind between signatures
		sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("sign %d: %v", i, err)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatal("the TPM's signature does not verify with the key's public key")
		}
	}
	// The same blob pointed at another TPM.
	copied := *blob
	copied.TPM = b.TCTI
	cs, err := copied.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := cs.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Fatalf("another TPM signed with the copied blob (verifies: %v)", ecdsa.VerifyASN1(pub, digest[:], sig))
	} else if !strings.Contains(err.Error(), "refuses to load the device key") {
		t.Fatalf("another TPM: %v, want a refusal to load the key", err)
	}
	// A tampered private area is refused by its own TPM too.
	bad := *blob
	bad.Private = append([]byte(nil), blob.Private...)
	bad.Private[len(bad.Private)-1] ^= 1
	bs, _ := bad.Signer()
	if _, err := bs.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Fatal("a tampered blob signed")
	}
}

func TestOpenTCTI(t *testing.T) {
	for _, tcti := range []string{"mssim:host=x", "swtpm:host", "swtpm:bogus=1", "tabrmd"} {
		if _, err := tpmkey.Open(context.Background(), tcti); err == nil {
			t.Errorf("Open(%q) succeeded", tcti)
		}
	}
}
