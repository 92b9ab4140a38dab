package dpop

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: any string offered as a DPoP proof is refused with an error
// or verifies; one that verifies, verifies the same through a KeyCache
// (cached and uncached), names the key it carries, and stops verifying when
// its signature is changed.
func FuzzVerify(f *testing.F) {
	for _, kt := range []string{"ed25519", "p256"} {
		k, err := GenerateKey(kt)
		if err != nil {
			f.Fatal(err)
		}
		p, err := k.Proof("GET", "https://h/v1/x", "tok", time.Unix(1700000000, 0))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
		hdr, _, _ := strings.Cut(p, ".")
		f.Add(hdr + ".e30.AAAA")
	}
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	cache := NewKeyCache(4)
	f.Fuzz(func(t *testing.T, proof string) {
		v, err := Verify(proof)
		v2, err2 := cache.Verify(proof)
		v3, err3 := cache.Verify(proof)
		if (err == nil) != (err2 == nil) || (err == nil) != (err3 == nil) {
			t.Fatalf("proof %q: uncached %v, cached %v then %v", proof, err, err2, err3)
		}
		if err != nil {
			return
		}
		if v.Thumbprint != v.JWK.Thumbprint() || v2.Thumbprint != v.Thumbprint || v3.Thumbprint != v.Thumbprint {
			t.Fatalf("proof %q: thumbprints %s %s %s", proof, v.Thumbprint, v2.Thumbprint, v3.Thumbprint)
		}
		if _, _, err := v.JWK.PublicKey(); err != nil {
			t.Fatalf("proof %q verified with a key that does not parse: %v", proof, err)
		}
		i := strings.LastIndexByte(proof, '.')
		if i < 0 || i == len(proof)-1 {
			t.Fatalf("proof %q verified without a signature", proof)
		}
		flip := []byte(proof)
		c := flip[len(flip)-2]
		flip[len(flip)-2] = map[bool]byte{true: 'B', false: 'A'}[c == 'A']
		if _, err := Verify(string(flip)); err == nil {
			t.Fatalf("proof %q still verifies with its signature changed", flip)
		}
	})
}

// FuzzDecodeJWK: any JSON offered as a device key either is refused or parses to
// a public key of a supported algorithm; a key that parses keeps its
// thumbprint through a JSON round trip.
func FuzzDecodeJWK(f *testing.F) {
	for _, kt := range []string{"ed25519", "p256"} {
		k, err := GenerateKey(kt)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(k.JWK())
		f.Add(b)
	}
	f.Add([]byte(`{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"kty":"OKP","crv":"Ed25519","x":"","y":"x"}`))
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var k JWK
		if json.Unmarshal(data, &k) != nil {
			return
		}
		pub, alg, err := k.PublicKey()
		if err != nil {
			return
		}
		if pub == nil || (alg != AlgEdDSA && alg != AlgES256) {
			t.Fatalf("jwk %s: key %v, alg %q", data, pub, alg)
		}
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		var back JWK
		if err := json.Unmarshal(b, &back); err != nil || back.Thumbprint() != k.Thumbprint() {
			t.Fatalf("jwk %s: thumbprint changed through JSON (%v)", data, err)
		}
	})
}
