package vault_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/vault"
)

// fakeClock is the injected clock of the retention tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var legal = sekisho.Caller{Principal: "lee", Org: "operator", Device: "d2", Roles: []string{"admin"}, RequestID: "req-hold"}

// Records expire by the schema's rule (a date field plus a period, or the
// creation time when the field is not set) or by their own retain_until;
// the sweeper erases them in batches, each erasure an audit event with
// reason retention; a held record stays until its hold is lifted; the
// dry run lists exactly what the sweep then erases.
func TestRetentionSweep(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	clk := &fakeClock{t: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	v := vault.New(e.store, e.keys, e.log, vault.Options{Now: clk.Now})
	if _, err := v.PutSchema(ctx, legal, &sekisho.Schema{Collection: "sessions", Fields: []sekisho.Field{
		{Name: "name", Type: sekisho.TypeString, Classification: sekisho.ClassIdentifier, Lookup: true},
		{Name: "last_active", Type: sekisho.TypeDate, Classification: sekisho.ClassUsage},
	}, Retention: &sekisho.Retention{Field: "last_active", Keep: "30d"}}); err != nil {
		t.Fatal(err)
	}
	create := func(name, lastActive string, retainUntil *time.Time) string {
		t.Helper()
		f := fields("name", name)
		if lastActive != "" {
			f = fields("name", name, "last_active", lastActive)
		}
		rec, err := v.Create(ctx, operator, "sessions", &sekisho.RecordInput{Region: "jp", Fields: f, RetainUntil: retainUntil})
		if err != nil {
			t.Fatal(err)
		}
		return rec.ID
	}
	far := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	soon := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	var old []string // expire on 2026-01-31 at the latest
	for _, d := range []string{"2025-12-01", "2025-12-10", "2025-12-20", "2025-12-31", "2025-12-15"} {
		old = append(old, create("old "+d, d, nil))
	}
	recent := create("recent", "2026-01-20", nil) // expires 2026-02-19
	noField := create("no date", "", nil)         // created 2026-01-01: expires 2026-01-31 09:00
	kept := create("kept", "2025-11-01", &far)    // retain_until wins over the rule
	short := create("short", "2026-01-25", &soon) // retain_until: 2026-01-05
	held := create("held", "2025-11-01", nil)     // expired, but on legal hold
	if _, err := v.SetHold(ctx, legal, held, "litigation 2026-17"); err != nil {
		t.Fatal(err)
	}
	// Only an admin of the record's org sets a hold.
	if _, err := v.SetHold(ctx, operator, old[0], "x"); sekisho.Code(err) != sekisho.EForbidden {
		t.Fatalf("hold by a non-admin: %v", err)
	}
	if _, err := v.SetHold(ctx, sekisho.Caller{Principal: "x", Org: "affiliate", Roles: []string{"admin"}}, old[0], "x"); sekisho.Code(err) != sekisho.EForbidden {
		t.Fatalf("hold by another org's admin: %v", err)
	}

	// On 2026-01-01 only the record last active on 2025-12-01 has run out
	// (and the held one, which stays).
	p, err := v.PlanRetention(ctx, legal, "sessions", vault.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(p.Expired), []string{old[0]}) || len(p.Held) != 1 {
		t.Fatalf("plan at %s: %+v", p.At, p)
	}

	clk.Advance(40 * 24 * time.Hour) // 2026-02-10 09:00
	plan, err := v.PlanRetention(ctx, legal, "sessions", vault.SweepOptions{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(old), noField, short)
	slices.Sort(want)
	if got := ids(plan.Expired); !slices.Equal(got, want) {
		t.Fatalf("plan lists %v, want %v", got, want)
	}
	if len(plan.Held) != 1 || plan.Held[0].ID != held || plan.Held[0].Hold != "litigation 2026-17" {
		t.Fatalf("plan holds %+v", plan.Held)
	}
	if plan.Scanned != 10 {
		t.Fatalf("plan scanned %d records, want 10", plan.Scanned)
	}
	// The dry run erased nothing.
	if n, _ := e.store.CountRecords(ctx, "sessions", ""); n != 10 {
		t.Fatalf("%d live records after the plan, want 10", n)
	}

	var progress []vault.SweepProgress
	total, err := v.SweepRetention(ctx, "", vault.SweepOptions{Batch: 3, Progress: func(p vault.SweepProgress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if total.Erased != len(want) || total.Held != 1 {
		t.Fatalf("sweep: %+v", total)
	}
	var sessionBatches int
	for _, p := range progress {
		if p.Collection == "sessions" {
			sessionBatches++
		}
	}
	if sessionBatches != 4 { // 10 records, 3 at a time
		t.Fatalf("sessions swept in %d batches, want 4: %+v", sessionBatches, progress)
	}
	// Exactly the planned records are gone; the others are readable.
	var erased []string
	for _, id := range append(append(slices.Clone(want), recent, kept, held), old...) {
		_, err := v.Get(ctx, operator, "sessions", id, []string{"name"})
		switch sekisho.Code(err) {
		case sekisho.EGone:
			if !slices.Contains(erased, id) {
				erased = append(erased, id)
			}
		case "":
		default:
			t.Fatalf("read %s: %v", id, err)
		}
	}
	slices.Sort(erased)
	if !slices.Equal(erased, want) {
		t.Fatalf("erased %v, planned %v", erased, want)
	}
	// The index entries went with them.
	if got, err := v.Lookup(ctx, operator, "sessions", vault.LookupRequest{Field: "name", Value: []byte(`"no date"`)}); err != nil || len(got) != 0 {
		t.Fatalf("lookup of an erased record: %v %v", got, err)
	}
	// Each erasure is one audit event: action erase, reason retention.
	for _, id := range want {
		evs, err := e.store.QueryAudit(ctx, sekisho.AuditFilter{Record: id})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, en := range evs {
			ev, err := sekisho.UnmarshalEvent(en.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Action == sekisho.ActionErase && ev.Reason == vault.ReasonRetention && ev.Principal == vault.RetentionPrincipal && slices.Equal(ev.Records, []string{id}) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("record %s: %d retention erasure events, want 1", id, n)
		}
	}

	// A hold stops an erasure by hand too, with its own problem type.
	if err := v.Erase(ctx, operator, "sessions", held); sekisho.Code(err) != sekisho.EConflict {
		t.Fatalf("erasure of a held record: %v", err)
	}
	// Lifting the hold: the next sweep erases the record; lifting is audited.
	if err := v.LiftHold(ctx, operator, held); sekisho.Code(err) != sekisho.EForbidden {
		t.Fatalf("lift by a non-admin: %v", err)
	}
	if err := v.LiftHold(ctx, legal, held); err != nil {
		t.Fatal(err)
	}
	plan, err = v.PlanRetention(ctx, legal, "sessions", vault.SweepOptions{})
	if err != nil || !slices.Equal(ids(plan.Expired), []string{held}) {
		t.Fatalf("plan after the lift: %+v %v", plan, err)
	}
	if total, err := v.SweepRetention(ctx, "sessions", vault.SweepOptions{}); err != nil || total.Erased != 1 {
		t.Fatalf("sweep after the lift: %+v %v", total, err)
	}
	if _, err := v.Get(ctx, operator, "sessions", held, nil); sekisho.Code(err) != sekisho.EGone {
		t.Fatalf("held record after the lift and a sweep: %v", err)
	}
	for _, action := range []string{"hold.set", "hold.lift"} {
		evs, _ := e.store.QueryAudit(ctx, sekisho.AuditFilter{Record: held})
		found := false
		for _, en := range evs {
			ev, _ := sekisho.UnmarshalEvent(en.Leaf)
			found = found || (ev.Action == action && ev.Decision == sekisho.Allow && ev.Principal == "lee")
		}
		if !found {
			t.Fatalf("no %s event", action)
		}
	}
}

func ids(es []vault.Expired) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	slices.Sort(out)
	return out
}

// RunRetention is the server's sweeper: it sweeps every interval until its
// context ends.
func TestRunRetention(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	past := time.Now().Add(-time.Hour)
	rec, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "Old"), RetainUntil: &past})
	if err != nil {
		t.Fatal(err)
	}
	keep, err := e.v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "New")})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.v.RunRetention(rctx, 10*time.Millisecond, slog.New(slog.DiscardHandler)); close(done) }()
	// The sweeper runs every 10 ms; a minute without an erasure means it
	// does not run at all.
	for deadline := time.Now().Add(time.Minute); ; {
		_, err := e.v.Get(ctx, operator, "users", rec.ID, nil)
		if sekisho.Code(err) == sekisho.EGone {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not erase an expired record")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-done
	if _, err := e.v.Get(ctx, operator, "users", keep.ID, nil); err != nil {
		t.Fatalf("a record without retention: %v", err)
	}
}

// Two nodes over one store sweep in turn: every expired record is erased
// once, with one audit event.
func TestRunRetentionTwoNodes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	past := time.Now().Add(-time.Hour)
	in := make([]*sekisho.RecordInput, 40)
	for i := range in {
		in[i] = &sekisho.RecordInput{Region: "jp", Fields: fields("display_name", "Old"), RetainUntil: &past}
	}
	items, err := e.v.CreateBatch(ctx, operator, "users", in)
	if err != nil {
		t.Fatal(err)
	}
	node2 := vault.New(e.store, e.keys, e.log, vault.Options{})
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, v := range []*vault.Vault{e.v, node2} {
		wg.Add(1)
		go func() { defer wg.Done(); v.RunRetention(rctx, 2*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		n, err := e.store.CountRecords(ctx, "users", "")
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records left: the sweepers do not run", n)
		}
	}
	stop()
	wg.Wait()
	for _, it := range items {
		evs, err := e.store.QueryAudit(ctx, sekisho.AuditFilter{Record: it.ID})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, en := range evs {
			ev, _ := sekisho.UnmarshalEvent(en.Leaf)
			if ev.Action == sekisho.ActionErase && ev.Reason == vault.ReasonRetention {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("record %s: %d retention erasure events, want 1", it.ID, n)
		}
	}
}
