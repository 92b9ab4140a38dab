package access_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/sqlite"
)

// TestServerNonce: with RequireNonce, a proof without the server's nonce,
// with a forged one or one two lifetimes old is refused with
// dpop-nonce-required; a proof with the nonce one node gave is accepted
// by another node (nonces are stateless under the shared token key); and
// without RequireNonce no nonce is asked for.
func TestServerNonce(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clk := &clock{t: time.Now()}
	node := func(require bool) *access.Service {
		s, err := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot", Now: clk.now,
			RequireNonce: require, Schema: func(context.Context, string) (*sekisho.Schema, error) { return nil, nil }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	n1, n2, plain := node(true), node(true), node(false)
	key, _ := dpop.GenerateKey("ed25519")
	if _, err := plain.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		t.Fatal(err)
	}
	const url = "http://sekisho.test/v1/token"
	token := func(s *access.Service, nonce string) error {
		p, err := key.ProofNonce("POST", url, "", nonce, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", url, nil)
		r.Header.Set("DPoP", p)
		_, err = s.IssueToken(r)
		return err
	}
	refusedNonce := func(err error) {
		t.Helper()
		var e *sekisho.Error
		if !errors.As(err, &e) || e.Type != access.ProblemNonce {
			t.Fatalf("got %v, want %s", err, access.ProblemNonce)
		}
	}
	if plain.Nonce() != "" {
		t.Fatal("a service without RequireNonce hands out nonces")
	}
	if err := token(plain, ""); err != nil {
		t.Fatalf("without RequireNonce: %v", err)
	}
	refusedNonce(token(n1, ""))
	refusedNonce(token(n1, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	nonce := n1.Nonce()
	if nonce == "" || n2.Nonce() != nonce {
		t.Fatalf("nodes disagree on the nonce: %q %q", nonce, n2.Nonce())
	}
	if err := token(n2, nonce); err != nil {
		t.Fatalf("another node's nonce: %v", err)
	}
	// Still accepted in the next period, not in the one after.
	clk.add(access.NonceLifetime)
	if err := token(n1, nonce); err != nil {
		t.Fatalf("a nonce one lifetime old: %v", err)
	}
	clk.add(access.NonceLifetime)
	refusedNonce(token(n1, nonce))
	if err := token(n1, n1.Nonce()); err != nil {
		t.Fatalf("the new nonce: %v", err)
	}
}
