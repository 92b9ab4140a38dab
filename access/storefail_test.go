package access_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/sqlite"
)

// failingStore is a real SQLite store whose reads of one kind fail as an
// unreachable store does (the PostgreSQL store's EUnavailable), while
// failKind is set.
type failingStore struct {
	sekisho.ObjectStore
	failKind atomic.Value // string
}

func (s *failingStore) GetObject(ctx context.Context, kind, id string) (*sekisho.Object, error) {
	if k, _ := s.failKind.Load().(string); k == kind {
		return nil, &sekisho.Error{Code: sekisho.EUnavailable, Message: "the store is not reachable"}
	}
	return s.ObjectStore.GetObject(ctx, kind, id)
}

// TestAuthenticateStoreDown: a store that cannot be read while the
// principal or the org of a caller is looked up is a 503 the client may
// retry, never a 401 that says the principal was revoked or the org
// suspended (a PostgreSQL failover answered org-suspended). Control: the
// same request succeeds with the store up (httpapi's access tests keep a
// revoked principal refused with principal-revoked, 401).
func TestAuthenticateStoreDown(t *testing.T) {
	ctx := context.Background()
	base, err := sqlite.Open(ctx, t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	store := &failingStore{ObjectStore: base}
	store.failKind.Store("")
	now := time.Now()
	clk := func() time.Time { return now }
	key, _ := dpop.GenerateKey("ed25519")
	const url = "http://sekisho.test/v1/whoami"
	for _, kind := range []string{sekisho.KindPrincipal, sekisho.KindOrg} {
		t.Run(kind, func(t *testing.T) {
			// A fresh service each time: its caches are empty.
			svc, err := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot", Now: clk,
				Schema: func(context.Context, string) (*sekisho.Schema, error) { return nil, nil }})
			if err != nil {
				t.Fatal(err)
			}
			if kind == sekisho.KindPrincipal {
				if _, err := svc.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
					t.Fatal(err)
				}
			}
			r := httptest.NewRequest("POST", "http://sekisho.test/v1/token", nil)
			p, _ := key.Proof("POST", "http://sekisho.test/v1/token", "", now)
			r.Header.Set("DPoP", p)
			store.failKind.Store("")
			tok, err := svc.IssueToken(r)
			if err != nil {
				t.Fatal(err)
			}
			authn := func() error {
				svc, _ := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot", Now: clk,
					Schema: func(context.Context, string) (*sekisho.Schema, error) { return nil, nil }})
				r := httptest.NewRequest("GET", url, nil)
				p, _ := key.Proof("GET", url, tok.AccessToken, now)
				r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
				r.Header.Set("DPoP", p)
				_, err := svc.Authenticate(r)
				return err
			}
			if err := authn(); err != nil {
				t.Fatalf("control, store up: %v", err)
			}
			store.failKind.Store(kind)
			err = authn()
			store.failKind.Store("")
			var e *sekisho.Error
			if !errors.As(err, &e) || e.Code != sekisho.EUnavailable {
				t.Fatalf("%s unreadable: %v, want the store's unavailable error (503), not a 401", kind, err)
			}
		})
	}
}
