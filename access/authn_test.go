package access_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/sqlite"
)

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestAuthenticateCaches checks that the caches of the authenticator (the
// device's parsed key, the access token whose MAC checked out, the state
// of devices, principals and orgs) change nothing but the cost: a device
// revoked on one node is refused by another within MaxCacheTTL although
// its token and key are cached there, and every proof check still applies
// to a cached token and key.
func TestAuthenticateCaches(t *testing.T) {
	for _, kt := range []string{"ed25519", "p256"} {
		t.Run(kt, func(t *testing.T) { testAuthenticateCaches(t, kt) })
	}
}

func testAuthenticateCaches(t *testing.T, kt string) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clk := &clock{t: time.Now()}
	node := func() *access.Service {
		s, err := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot", Now: clk.now,
			Schema: func(context.Context, string) (*sekisho.Schema, error) { return nil, nil }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	n1, n2 := node(), node()
	key, _ := dpop.GenerateKey(kt)
	if _, err := n1.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		t.Fatal(err)
	}
	const url = "http://sekisho.test/v1/whoami"
	authn := func(s *access.Service, tok, proof string) error {
		r := httptest.NewRequest("GET", url, nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", proof)
		_, err := s.Authenticate(r)
		return err
	}
	proof := func(method, u, tok string) string {
		p, err := key.Proof(method, u, tok, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	refused := func(err error, typ string) {
		t.Helper()
		if err == nil {
			t.Fatalf("accepted, want %s", typ)
		}
		var e *sekisho.Error
		if !errors.As(err, &e) || e.Type != typ {
			t.Fatalf("refused with %v, want %s", err, typ)
		}
	}
	r := httptest.NewRequest("POST", "http://sekisho.test/v1/token", nil)
	r.Header.Set("DPoP", proof("POST", "http://sekisho.test/v1/token", ""))
	tok, err := n1.IssueToken(r)
	if err != nil {
		t.Fatal(err)
	}
	at := tok.AccessToken
	// Twice on each node: the second use is served from the caches.
	for _, s := range []*access.Service{n1, n1, n2, n2} {
		if err := authn(s, at, proof("GET", url, at)); err != nil {
			t.Fatal(err)
		}
	}
	// Proof checks with a cached token and key.
	p := proof("GET", url, at)
	if err := authn(n2, at, p); err != nil {
		t.Fatal(err)
	}
	refused(authn(n2, at, p), "dpop-proof-replayed")
	refused(authn(n2, at, proof("GET", "http://sekisho.test/v1/other", at)), "dpop-proof-mismatch")
	refused(authn(n2, at, proof("POST", url, at)), "dpop-proof-mismatch")
	refused(authn(n2, at, proof("GET", url, "another-token")), "dpop-proof-invalid")
	refused(authn(n2, at, proof("GET", url, "")), "dpop-proof-invalid")
	old, _ := key.Proof("GET", url, at, clk.now().Add(-2*time.Minute))
	refused(authn(n2, at, old), "dpop-proof-stale")
	other, _ := dpop.GenerateKey(kt)
	op, _ := other.Proof("GET", url, at, clk.now())
	refused(authn(n2, at, op), "token-key-mismatch")
	// A token that differs from a cached one in its MAC or claims is checked
	// afresh and refused.
	i := strings.LastIndexByte(at, '.')
	flip := func(s string, j int) string {
		b := []byte(s)
		b[j] ^= 'A' ^ 'B'
		if b[j] == s[j] {
			b[j] = 'C'
		}
		return string(b)
	}
	for _, bad := range []string{flip(at, len(at)-2), flip(at, i-2), at[:i] + ".", at[:i]} {
		refused(authn(n2, bad, proof("GET", url, bad)), "token-invalid")
	}

	// Revoked on node 1: refused there at once, and on node 2 within
	// MaxCacheTTL although its token and key are cached there.
	admin := sekisho.Caller{Principal: "admin", Org: n1.RootOrg(), Roles: []string{access.RoleAdmin}}
	if _, err := n1.RevokeDevice(ctx, admin, key.Thumbprint()); err != nil {
		t.Fatal(err)
	}
	refused(authn(n1, at, proof("GET", url, at)), "device-revoked")
	clk.add(access.MaxCacheTTL)
	refused(authn(n2, at, proof("GET", url, at)), "device-revoked")

	// A cached token is refused once it expires.
	clk.add(5 * time.Minute)
	refused(authn(n2, at, proof("GET", url, at)), "token-expired")
}
