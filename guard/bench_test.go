package guard_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/sqlite"
)

// BenchmarkCheck measures the guard's cost per request: an allowed
// single-record read by one of 100 principals, over a real SQLite store
// (rules and quarantine state come from its caches, as on the hot path).
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, b.TempDir()+"/sekisho.db")
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	g := guard.New(guard.Config{Store: store})
	var reqs []sekisho.AccessRequest
	for i := range 100 {
		reqs = append(reqs, sekisho.AccessRequest{Caller: sekisho.Caller{Principal: fmt.Sprintf("p%d", i), Org: "operator",
			Device: fmt.Sprintf("d%d", i), Roles: []string{"service"}, Source: "10.0.0.1", Purpose: "ops"},
			Action: sekisho.ActionRead, Collection: "users"})
	}
	d := sekisho.Decision{Allow: true, Policy: "role-service"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := reqs[i%len(reqs)]
		r.Caller.RequestID = fmt.Sprint(i)
		rec := &sekisho.SealedRecord{ID: fmt.Sprintf("r%08d", i%50_000), Collection: "users"}
		if out := g.Check(ctx, r, []*sekisho.SealedRecord{rec}, d); !out.Allow {
			b.Fatalf("denied: %s", out.Reason)
		}
	}
}
