package guard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
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

// BenchmarkSyncOwnEvents measures the guard's tail of the audit log on a
// node that served the reads itself: 1,000 reads charged by Check, their
// events appended to the log, then one Sync (timed) folds the log in. The
// node's own events are already counted, so the sync only has to skip them.
func BenchmarkSyncOwnEvents(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, b.TempDir()+"/sekisho.db")
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	g := guard.New(guard.Config{Store: store})
	var idx uint64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		entries := make([]sekisho.AuditEntry, 0, 1000)
		for i := range 1000 {
			c := sekisho.Caller{Principal: fmt.Sprintf("p%d", i%100), Org: "operator", Device: fmt.Sprintf("d%d", i%100),
				Roles: []string{"service"}, Source: "10.0.0.1", Purpose: "ops", RequestID: fmt.Sprintf("req-%d", idx)}
			entries = append(entries, chargedRead(b, g, c, fmt.Sprintf("r%08d", idx%50_000), idx))
			idx++
		}
		if err := store.AppendAudit(ctx, entries, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := g.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "us/event")
}

// chargedRead has g check an allowed read of one record by c, as a server
// does before it answers, and returns the read's audit entry at index idx.
func chargedRead(tb testing.TB, g *guard.Guard, c sekisho.Caller, recID string, idx uint64) sekisho.AuditEntry {
	tb.Helper()
	d := sekisho.Decision{Allow: true, Policy: "role-service"}
	rec := &sekisho.SealedRecord{ID: recID, Collection: "users", Org: "operator"}
	if out := g.Check(context.Background(), sekisho.AccessRequest{Caller: c, Action: sekisho.ActionRead, Collection: "users"}, []*sekisho.SealedRecord{rec}, d); !out.Allow {
		tb.Fatalf("denied: %s", out.Reason)
	}
	ev := sekisho.Event{Time: time.Now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device, Purpose: c.Purpose,
		Action: sekisho.ActionRead, Collection: "users", Records: []string{rec.ID}, Fields: []string{"display_name", "phone"},
		Decision: sekisho.Allow, Policy: d.Policy, RecordOrgs: []string{"operator"}}
	e := audit.Entry(ev, sekisho.MarshalEvent(ev))
	e.Index = idx
	return e
}
