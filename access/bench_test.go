package access_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

// newService returns a service over a real SQLite store, with the first
// admin enrolled through the bootstrap with key.
func newService(tb testing.TB, key *dpop.Key) *access.Service {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, tb.TempDir()+"/s.db")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	defs, _ := schemas.Defaults()
	byName := map[string]*sekisho.Schema{}
	for _, s := range defs {
		byName[s.Collection] = s
	}
	s, err := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot",
		Schema: func(_ context.Context, c string) (*sekisho.Schema, error) { return byName[c], nil }})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkAuthenticate is the per-request cost of a DPoP-bound credential
// on the server: token MAC, proof signature, claims, replay cache and the
// (cached) device, principal and org state. The client's signing is done
// before the timer starts.
func BenchmarkAuthenticate(b *testing.B) {
	for _, kt := range []string{"ed25519", "p256"} {
		b.Run(kt, func(b *testing.B) { benchAuth(b, kt, false) })
	}
}

// BenchmarkAuthenticateAuthorize adds the Cedar decision of one read of
// the caller's own org's record.
func BenchmarkAuthenticateAuthorize(b *testing.B) {
	for _, kt := range []string{"ed25519", "p256"} {
		b.Run(kt, func(b *testing.B) { benchAuth(b, kt, true) })
	}
}

// benchToken is an access token of s bound to key, issued as POST
// /v1/token issues it.
func benchToken(b *testing.B, s *access.Service, key *dpop.Key) *sekisho.TokenResponse {
	b.Helper()
	r := httptest.NewRequest("POST", "http://sekisho.test/v1/token", nil)
	p, _ := key.Proof("POST", "http://sekisho.test/v1/token", "", time.Now())
	r.Header.Set("DPoP", p)
	tok, err := s.IssueToken(r)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func benchAuth(b *testing.B, kt string, authz bool) {
	key, err := dpop.GenerateKey(kt)
	if err != nil {
		b.Fatal(err)
	}
	s := newService(b, key)
	tok := benchToken(b, s, key)
	const url = "http://sekisho.test/v1/collections/users/records/abc"
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i], _ = key.Proof("GET", url, tok.AccessToken, time.Now())
	}
	az := s.Authorizer()
	ctx := context.Background()
	b.ReportAllocs()
	// The process's CPU time per request (what the server pays; on a shared
	// machine the wall time is the other tenants' too): the proof's replay
	// records the store commits in the background count in it.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	defer func(c0 time.Duration) {
		b.StopTimer()
		b.ReportMetric(float64((cpu()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
	}(cpu())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("GET", url, nil)
		r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		r.Header.Set("DPoP", proofs[i])
		c, err := s.Authenticate(r)
		if err != nil {
			b.Fatal(err)
		}
		if authz {
			c.Purpose = "support"
			d := az.Authorize(ctx, sekisho.AccessRequest{Caller: c, Action: sekisho.ActionRead, Collection: "users",
				Fields: []string{"phone", "email"}, Region: "jp", Owner: c.Org})
			if !d.Allow {
				b.Fatal(d.Reason)
			}
		}
	}
}

// BenchmarkAuthorize is the Cedar decision alone of one read of the
// caller's own org's record (5 fields), as the hot read makes it.
func BenchmarkAuthorize(b *testing.B) {
	key, err := dpop.GenerateKey("ed25519")
	if err != nil {
		b.Fatal(err)
	}
	s := newService(b, key)
	tok := benchToken(b, s, key)
	const url = "http://sekisho.test/v1/collections/users/records/abc"
	r := httptest.NewRequest("GET", url, nil)
	r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	p, _ := key.Proof("GET", url, tok.AccessToken, time.Now())
	r.Header.Set("DPoP", p)
	c, err := s.Authenticate(r)
	if err != nil {
		b.Fatal(err)
	}
	c.Purpose = "support"
	az := s.Authorizer()
	ctx := context.Background()
	req := sekisho.AccessRequest{Caller: c, Action: sekisho.ActionRead, Collection: "users",
		Fields: []string{"display_name", "phone", "email", "birth_date", "country"}, Region: "jp", Owner: c.Org}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if d := az.Authorize(ctx, req); !d.Allow {
			b.Fatal(d.Reason)
		}
	}
}
