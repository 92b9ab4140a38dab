package dpop

import (
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
