package access_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/sqlite"
)

// TestPolicyChangeSeenWithinTTL checks that the compiled policies a node
// keeps between rebuilds of its snapshot do not outlive a change: a policy
// changed on one node decides on another within MaxCacheTTL, and so does
// its next version.
func TestPolicyChangeSeenWithinTTL(t *testing.T) {
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
	key, _ := dpop.GenerateKey("ed25519")
	if _, err := n1.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		t.Fatal(err)
	}
	admin := sekisho.Caller{Principal: "admin", Org: n1.RootOrg(), Roles: []string{access.RoleAdmin}, Purpose: "support"}
	read := func() sekisho.Decision {
		return n2.Authorize(ctx, sekisho.AccessRequest{Caller: admin, Action: sekisho.ActionRead, Collection: "users",
			Fields: []string{"email"}, Region: "jp", Owner: admin.Org})
	}
	if d := read(); !d.Allow {
		t.Fatalf("denied before the change: %s", d.Reason)
	}
	for i, tc := range []struct {
		cedar string
		allow bool
	}{
		{`forbid (principal, action, resource) when { context.purpose == "support" };`, false},
		{`forbid (principal, action, resource) when { context.purpose == "never" };`, true},
		{`forbid (principal, action, resource) when { context.purpose == "support" };`, false},
	} {
		if _, err := n1.PutPolicy(ctx, admin, &access.Policy{ID: "no-support", Cedar: tc.cedar}); err != nil {
			t.Fatal(err)
		}
		clk.add(access.MaxCacheTTL)
		if d := read(); d.Allow != tc.allow {
			t.Fatalf("version %d: allow %v (%s), want %v", i+1, d.Allow, d.Reason, tc.allow)
		}
	}
}
