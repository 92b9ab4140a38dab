package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"
)

// opaque is a P-256 key that only signs, as a TPM or a token does.
type opaque struct {
	k   *ecdsa.PrivateKey
	bad bool
}

func (o opaque) Public() crypto.PublicKey { return &o.k.PublicKey }
func (o opaque) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o.bad {
		return []byte{0x30, 0x00}, nil
	}
	return o.k.Sign(r, d, opts)
}

// TestOpaqueSigner: a key that cannot be exported signs ES256 proofs that
// verify, as the same key in memory would (same thumbprint); it refuses
// MarshalPEM; a signer answering a malformed signature fails the proof.
func TestOpaqueSigner(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := NewKey(opaque{k: priv})
	if err != nil {
		t.Fatal(err)
	}
	mem, _ := NewKey(priv)
	if k.Alg() != AlgES256 || k.Thumbprint() != mem.Thumbprint() || k.Exportable() || !mem.Exportable() {
		t.Fatalf("alg %s, thumbprints %s %s, exportable %v", k.Alg(), k.Thumbprint(), mem.Thumbprint(), k.Exportable())
	}
	p, err := k.Proof("GET", "https://h/v1/x", "tok", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(p); err != nil || v.Thumbprint != mem.Thumbprint() {
		t.Fatalf("verify: %v", err)
	}
	if _, err := k.MarshalPEM(); !errors.Is(err, ErrNotExportable) {
		t.Fatalf("MarshalPEM of an opaque key: %v", err)
	}
	bad, _ := NewKey(opaque{k: priv, bad: true})
	if _, err := bad.Proof("GET", "https://h/v1/x", "", time.Now()); err == nil {
		t.Fatal("a malformed signature made a proof")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewKey(opaque{k: p384}); err == nil {
		t.Fatal("a P-384 signer was accepted")
	}
}
