package dpop

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestProofRoundTripAndTamper(t *testing.T) {
	for _, kt := range []string{"ed25519", "p256"} {
		t.Run(kt, func(t *testing.T) {
			k, err := GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			p, err := k.Proof("GET", "https://h/v1/x?q=1", "tok", time.Unix(1700000000, 0))
			if err != nil {
				t.Fatal(err)
			}
			v, err := Verify(p)
			if err != nil {
				t.Fatal(err)
			}
			if v.HTU != "https://h/v1/x" || v.ATH != TokenHash("tok") || v.Thumbprint != k.Thumbprint() {
				t.Fatalf("claims %+v", v)
			}
			parts := strings.Split(p, ".")
			other, _ := GenerateKey(kt)
			q, _ := other.Proof("POST", "https://h/v1/x", "", time.Unix(1700000000, 0))
			// Another key's signature over this header and payload, and this
			// header with another payload, are refused.
			for name, bad := range map[string]string{
				"signature": parts[0] + "." + parts[1] + "." + strings.Split(q, ".")[2],
				"payload":   parts[0] + "." + strings.Split(q, ".")[1] + "." + parts[2],
				"short":     parts[0] + "." + parts[1],
			} {
				if _, err := Verify(bad); err == nil {
					t.Errorf("%s: tampered proof verified", name)
				}
			}
			pem, _ := k.MarshalPEM()
			k2, err := ParsePEM(pem)
			if err != nil || k2.Thumbprint() != k.Thumbprint() {
				t.Fatalf("PEM round trip: %v", err)
			}
		})
	}
}

// TestKeyCache checks that a cached header changes nothing but the cost:
// every proof's signature is still verified, tampered proofs of a cached
// key are refused, and the cache stays within its bound.
func TestKeyCache(t *testing.T) {
	for _, kt := range []string{"ed25519", "p256"} {
		t.Run(kt, func(t *testing.T) {
			c := NewKeyCache(2)
			k, _ := GenerateKey(kt)
			other, _ := GenerateKey(kt)
			now := time.Unix(1700000000, 0)
			p1, _ := k.Proof("GET", "https://h/v1/x", "tok", now)
			p2, _ := k.Proof("POST", "https://h/v1/y", "", now)
			for i, p := range []string{p1, p2, p1} {
				v, err := c.Verify(p)
				if err != nil || v.Thumbprint != k.Thumbprint() || v.JWK != k.JWK() {
					t.Fatalf("proof %d: %v %+v", i, err, v)
				}
			}
			if c.Len() != 1 {
				t.Fatalf("%d cached headers, want 1", c.Len())
			}
			parts := strings.Split(p1, ".")
			q, _ := other.Proof("GET", "https://h/v1/x", "tok", now)
			qp := strings.Split(q, ".")
			for name, bad := range map[string]string{
				"other key's signature": parts[0] + "." + parts[1] + "." + qp[2],
				"other payload":         parts[0] + "." + qp[1] + "." + parts[2],
				"other header":          qp[0] + "." + parts[1] + "." + parts[2],
				"no signature":          parts[0] + "." + parts[1] + ".",
				"four parts":            p1 + ".x",
				"two parts":             parts[0] + "." + parts[1],
			} {
				if _, err := c.Verify(bad); err == nil {
					t.Errorf("%s: tampered proof verified with a cached header", name)
				}
			}
			if c.Len() != 1 {
				t.Fatalf("a proof that did not verify was cached: %d headers", c.Len())
			}
			for range 3 {
				k3, _ := GenerateKey(kt)
				p3, _ := k3.Proof("GET", "https://h/v1/x", "", now)
				if _, err := c.Verify(p3); err != nil {
					t.Fatal(err)
				}
				if c.Len() > 2 {
					t.Fatalf("%d cached headers, bound 2", c.Len())
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, kt := range []string{"ed25519", "p256"} {
		b.Run(kt, func(b *testing.B) {
			k, _ := GenerateKey(kt)
			p, _ := k.Proof("GET", "https://h/v1/x", "tok", time.Now())
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Verify(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached is Verify with the header (key, thumbprint) cached,
// as the server does: only the signature and the claims per proof.
func BenchmarkVerifyCached(b *testing.B) {
	for _, kt := range []string{"ed25519", "p256"} {
		b.Run(kt, func(b *testing.B) {
			k, _ := GenerateKey(kt)
			p, _ := k.Proof("GET", "https://h/v1/x", "tok", time.Now())
			c := NewKeyCache(0)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := c.Verify(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestJWKStrict: coordinates are decoded strictly, so a key has one
// spelling, and its thumbprint is that of the canonical spelling.
func TestJWKStrict(t *testing.T) {
	k, err := GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	e, err := GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string {
		const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		return s[:len(s)-1] + string(alpha[strings.IndexByte(alpha, s[len(s)-1])^1])
	}
	ec, ed := k.JWK(), e.JWK()
	for _, c := range []struct {
		name string
		k    JWK
		ok   bool
	}{
		{"p256", ec, true},
		{"ed25519", ed, true},
		{"p256 x unused bit", JWK{Kty: "EC", Crv: "P-256", X: flip(ec.X), Y: ec.Y}, false},
		{"p256 y unused bit", JWK{Kty: "EC", Crv: "P-256", X: ec.X, Y: flip(ec.Y)}, false},
		{"ed25519 unused bit", JWK{Kty: "OKP", Crv: "Ed25519", X: flip(ed.X)}, false},
		{"ed25519 padding", JWK{Kty: "OKP", Crv: "Ed25519", X: ed.X + "="}, false},
		{"ed25519 CR", JWK{Kty: "OKP", Crv: "Ed25519", X: "\r" + ed.X}, false},
		{"ed25519 LF", JWK{Kty: "OKP", Crv: "Ed25519", X: ed.X[:5] + "\n" + ed.X[5:]}, false},
		{"ed25519 short", JWK{Kty: "OKP", Crv: "Ed25519", X: ed.X[:40]}, false},
		{"ed25519 long", JWK{Kty: "OKP", Crv: "Ed25519", X: ed.X + "AAAA"}, false},
		{"ed25519 with y", JWK{Kty: "OKP", Crv: "Ed25519", X: ed.X, Y: ed.X}, false},
		{"p256 without y", JWK{Kty: "EC", Crv: "P-256", X: ec.X}, false},
		{"unknown curve", JWK{Kty: "EC", Crv: "P-384", X: ec.X, Y: ec.Y}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := c.k.PublicKey()
			if (err == nil) != c.ok {
				t.Fatalf("PublicKey: %v, want ok=%v", err, c.ok)
			}
			if c.ok {
				cn, err := c.k.Canonical()
				if err != nil || cn != c.k {
					t.Fatalf("canonical %+v (%v) of a canonical key", cn, err)
				}
			}
		})
	}
}

// FuzzJWK: whatever the coordinates, a key that parses is its own
// canonical spelling, and two spellings that parse to the same key have the
// same thumbprint.
func FuzzJWK(f *testing.F) {
	e, _ := GenerateKey("ed25519")
	f.Add(e.JWK().X)
	f.Add(e.JWK().X + "=")
	f.Add("")
	f.Fuzz(func(t *testing.T, x string) {
		k := JWK{Kty: "OKP", Crv: "Ed25519", X: x}
		pub, _, err := k.PublicKey()
		if err != nil {
			if _, cerr := k.Canonical(); cerr == nil {
				t.Fatalf("%q: Canonical accepts what PublicKey refuses", x)
			}
			return
		}
		c, err := k.Canonical()
		if err != nil || c != k {
			t.Fatalf("%q: not its own canonical spelling (%+v, %v)", x, c, err)
		}
		canon := JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(pub.(ed25519.PublicKey))}
		if canon.Thumbprint() != k.Thumbprint() {
			t.Fatalf("%q: thumbprint differs from the key's", x)
		}
	})
}

// TestAlgEd25519 accepts the fully specified "Ed25519" (RFC 9864) as well
// as "EdDSA" for an Ed25519 key, and refuses either name on a P-256 key
// and ES256 on an Ed25519 key.
func TestAlgEd25519(t *testing.T) {
	ed, _ := GenerateKey("ed25519")
	p256, _ := GenerateKey("p256")
	build := func(k *Key, alg string) string {
		jwk := k.JWK()
		h, _ := json.Marshal(header{Typ: ProofType, Alg: alg, JWK: &jwk})
		c, _ := json.Marshal(Claims{JTI: "j1", HTM: "GET", HTU: "https://h/x", IAT: 1700000000})
		input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
		sig, err := k.sign([]byte(input))
		if err != nil {
			t.Fatal(err)
		}
		return input + "." + b64.EncodeToString(sig)
	}
	for _, tc := range []struct {
		name string
		key  *Key
		alg  string
		ok   bool
	}{
		{"EdDSA on Ed25519", ed, AlgEdDSA, true},
		{"Ed25519 on Ed25519", ed, AlgEd25519, true},
		{"ES256 on P-256", p256, AlgES256, true},
		{"Ed25519 on P-256", p256, AlgEd25519, false},
		{"EdDSA on P-256", p256, AlgEdDSA, false},
		{"ES256 on Ed25519", ed, AlgES256, false},
		{"none", ed, "none", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewKeyCache(0).Verify(build(tc.key, tc.alg))
			if (err == nil) != tc.ok {
				t.Fatalf("Verify: %v, want ok %v", err, tc.ok)
			}
			if tc.ok && v.Thumbprint != tc.key.Thumbprint() {
				t.Fatal("wrong thumbprint")
			}
		})
	}
}
