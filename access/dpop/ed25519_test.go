package dpop

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// verifyEdLikeProofs verifies as KeyCache.Verify does an Ed25519 proof:
// the key expanded once (a key that does not expand is refused), then
// edVerify.
func verifyEdLikeProofs(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	xp, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return false
	}
	return voi.VerifyExpandedWithOptions(xp, msg, sig, edVerify)
}

func stdVerify(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(ed25519.PublicKey(pub), msg, sig)
}

// edCases are signatures the two verifiers must agree on: valid ones, and
// the malleations and degenerate keys where Ed25519 verifiers are known to
// differ (non-canonical S and R, small-order and non-canonical A, the
// identity; cofactored against cofactorless checks).
func edCases(t testing.TB) [][3][]byte {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("GET https://vault.example/v1/collections/users/records/u1")
	sig := ed25519.Sign(priv, msg)
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	// S + L: the same signature with a non-canonical S (malleability).
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	le := func(b []byte) *big.Int {
		r := make([]byte, len(b))
		for i := range b {
			r[len(b)-1-i] = b[i]
		}
		return new(big.Int).SetBytes(r)
	}
	toLE := func(n *big.Int) []byte {
		be := n.FillBytes(make([]byte, 32))
		r := make([]byte, 32)
		for i := range be {
			r[31-i] = be[i]
		}
		return r
	}
	sPlusL := append(append([]byte(nil), sig[:32]...), toLE(new(big.Int).Add(le(sig[32:]), l))...)
	hx := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	identity := hx("0100000000000000000000000000000000000000000000000000000000000000")
	// A non-canonical encoding of the identity (y = p + 1).
	nonCanonID := hx("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	order2 := hx("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f") // y = -1
	order4 := hx("0000000000000000000000000000000000000000000000000000000000000000") // y = 0
	order8 := hx("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	zeroS := func(r []byte) []byte { return append(append([]byte(nil), r...), make([]byte, 32)...) }
	cases := [][3][]byte{
		{pub, msg, sig},
		{pub, flip(msg, 3), sig},
		{pub, msg, flip(sig, 0)},
		{pub, msg, flip(sig, 40)},
		{pub, msg, sPlusL},
		{pub, msg, append(append([]byte(nil), sig[:63]...), sig[63]|0xe0)},
		{pub, msg, sig[:63]},
		{flip(pub, 5), msg, sig},
		{pub[:31], msg, sig},
		{pub, msg, make([]byte, 64)},
	}
	// Small-order and non-canonical keys, with R a small-order point and
	// S = 0: these verify or not by the exact rules (cofactorless: R must
	// equal the encoding of -kA).
	for _, a := range [][]byte{identity, nonCanonID, order2, order4, order8} {
		for _, r := range [][]byte{identity, nonCanonID, order2, order4, order8} {
			cases = append(cases, [3][]byte{a, msg, zeroS(r)}, [3][]byte{a, nil, zeroS(r)})
		}
	}
	return cases
}

// TestEd25519MatchesStdlib: the proofs' Ed25519 verification (curve25519-voi
// with VerifyOptionsStdLib and an expanded key) accepts exactly what
// crypto/ed25519.Verify accepts, on valid signatures, malleated ones and
// degenerate keys; and a valid proof and a tampered one through
// KeyCache.Verify (control: the tampered one fails).
func TestEd25519MatchesStdlib(t *testing.T) {
	accepted := 0
	for i, c := range edCases(t) {
		want, got := stdVerify(c[0], c[1], c[2]), verifyEdLikeProofs(c[0], c[1], c[2])
		if want != got {
			t.Errorf("case %d (A %x, sig %x): crypto/ed25519 %v, proofs' verifier %v", i, c[0], c[2], want, got)
		}
		if want {
			accepted++
		}
	}
	if accepted == 0 {
		t.Fatal("no case verified: the valid signature must")
	}
	k, err := GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Proof("GET", "https://h/v1/x", "tok", time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := NewKeyCache(4)
	for range 2 { // uncached, then cached
		if _, err := c.Verify(p); err != nil {
			t.Fatalf("a valid proof: %v", err)
		}
		bad := p[:len(p)-3] + string("AB"[(p[len(p)-3]-'A'+1)%2]) + p[len(p)-2:]
		if bad == p {
			t.Fatal("test bug: the tampered proof is the proof")
		}
		if _, err := c.Verify(bad); err == nil {
			t.Fatal("a proof with a changed signature verifies")
		}
	}
}

// FuzzEd25519MatchesStdlib: for any key, message and signature bytes, the
// proofs' verifier and crypto/ed25519.Verify agree.
func FuzzEd25519MatchesStdlib(f *testing.F) {
	for _, c := range edCases(f) {
		f.Add(c[0], c[1], c[2])
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if want, got := stdVerify(pub, msg, sig), verifyEdLikeProofs(pub, msg, sig); want != got {
			t.Fatalf("A %x msg %x sig %x: crypto/ed25519 %v, proofs' verifier %v", pub, msg, sig, want, got)
		}
		// A valid signature of the fuzzed message under a fresh key: both accept.
		pk, sk, _ := ed25519.GenerateKey(rand.Reader)
		s := ed25519.Sign(sk, msg)
		if !verifyEdLikeProofs(pk, msg, s) {
			t.Fatalf("a valid signature of %x is refused", msg)
		}
	})
}

// BenchmarkVerifyEd25519 is one proof's signature check: crypto/ed25519
// (the key decoded at every call) against the proofs' verifier (the key
// expanded once per device, as KeyCache holds it).
func BenchmarkVerifyEd25519(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 400) // a proof's signing input is ~400 bytes
	sig := ed25519.Sign(priv, msg)
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("proofs", func(b *testing.B) {
		xp, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if !voi.VerifyExpandedWithOptions(xp, msg, sig, edVerify) {
				b.Fatal("does not verify")
			}
		}
	})
}
