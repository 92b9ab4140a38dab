package vault_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/vault"
)

// seenGuard records every call the vault makes to its guard, and refuses
// lookups of one value.
type seenGuard struct {
	mu     sync.Mutex
	checks []sekisho.AccessRequest
	recs   []int
	raised int
	refuse string // a lookup of this normalised value is refused
}

func (g *seenGuard) Check(_ context.Context, req sekisho.AccessRequest, recs []*sekisho.SealedRecord, d sekisho.Decision) sekisho.Decision {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks = append(g.checks, req)
	g.recs = append(g.recs, len(recs))
	if req.Lookup != nil && req.Lookup.Value == g.refuse {
		return sekisho.Decision{Policy: "guard:enumeration", Reason: "quarantined by the guard (test)", Code: sekisho.EForbidden, Type: "quarantined"}
	}
	return d
}

func (g *seenGuard) Raise(context.Context, sekisho.Caller, string, string) {
	g.mu.Lock()
	g.raised++
	g.mu.Unlock()
}

// take returns the calls since the last take.
func (g *seenGuard) take() ([]sekisho.AccessRequest, []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, r := g.checks, g.recs
	g.checks, g.recs = nil, nil
	return c, r
}

// TestGuardSeamOnePerOperation (issue 14 point 3): the vault calls its
// guard once per operation on records, in one place: a read, a batch get,
// an update, an erase, a detokenization and a lookup, the lookup with its
// field and value after normalisation (its canonical JSON: full-width
// digits and spaces are the E.164 number), also when it matched nothing. A lookup the guard
// refuses is refused with the guard's problem type and audited, matched or
// not; the same lookup of another value (the control) is not.
func TestGuardSeamOnePerOperation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	g := &seenGuard{refuse: `"+819099990000"`}
	v := vault.New(e.store, e.keys, e.log, vault.Options{Guard: g})
	rec, err := v.Create(ctx, operator, "users", &sekisho.RecordInput{Region: "jp",
		Fields: fields("display_name", "Sakura Tanaka", "phone", "090-1234-5678", "email", "sakura@example.jp")})
	if err != nil {
		t.Fatal(err)
	}
	g.take()
	one := func(what string, wantRecs int, wantLookup *sekisho.LookupValue) {
		t.Helper()
		calls, recs := g.take()
		if len(calls) != 1 {
			t.Fatalf("%s: the guard was called %d times, want once", what, len(calls))
		}
		if recs[0] != wantRecs {
			t.Errorf("%s: the guard saw %d records, want %d", what, recs[0], wantRecs)
		}
		switch got := calls[0].Lookup; {
		case wantLookup == nil && got != nil:
			t.Errorf("%s: the guard saw a lookup value %+v", what, got)
		case wantLookup != nil && (got == nil || *got != *wantLookup):
			t.Errorf("%s: the guard saw lookup %+v, want %+v", what, got, wantLookup)
		}
	}
	if _, err := v.Get(ctx, operator, "users", rec.ID, []string{"phone"}); err != nil {
		t.Fatal(err)
	}
	one("get", 1, nil)
	if _, err := v.BatchGet(ctx, operator, "users", []string{rec.ID}, nil); err != nil {
		t.Fatal(err)
	}
	one("batch get", 1, nil)
	found, err := v.Lookup(ctx, operator, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(`"０９０ １２３４ ５６７８"`), Region: "jp"})
	if err != nil || len(found) != 1 {
		t.Fatalf("lookup: %v, %v", found, err)
	}
	one("lookup that matched", 1, &sekisho.LookupValue{Field: "phone", Value: `"+819012345678"`})
	if found, err := v.Lookup(ctx, operator, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(`"+81 90 5555 0000"`)}); err != nil || len(found) != 0 {
		t.Fatalf("lookup of nobody: %v, %v", found, err)
	}
	one("lookup that matched nothing", 0, &sekisho.LookupValue{Field: "phone", Value: `"+819055550000"`})
	if _, err := v.Update(ctx, operator, "users", rec.ID, fields("display_name", "Sakura T.")); err != nil {
		t.Fatal(err)
	}
	one("update", 1, nil)

	// The refusal, matched or not, and audited.
	if _, err := v.Update(ctx, operator, "users", rec.ID, fields("phone", "+81 90 9999 0000")); err != nil {
		t.Fatal(err)
	}
	one("update", 1, nil)
	for _, val := range []string{`"+819099990000"`, `"+819099990000 "`} {
		_, err := v.Lookup(ctx, operator, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(val)})
		if sekisho.Code(err) != sekisho.EForbidden {
			t.Fatalf("refused lookup: %v", err)
		}
		var se *sekisho.Error
		if e, ok := err.(*sekisho.Error); ok {
			se = e
		}
		if se == nil || se.Type != "quarantined" {
			t.Fatalf("refused lookup: %v, want the guard's type quarantined", err)
		}
		one("refused lookup", 1, &sekisho.LookupValue{Field: "phone", Value: `"+819099990000"`})
	}
	if err := v.Erase(ctx, operator, "users", rec.ID); err != nil {
		t.Fatal(err)
	}
	one("erase", 1, nil)
	_, err = v.Lookup(ctx, operator, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(`"+819099990000"`)})
	if sekisho.Code(err) != sekisho.EForbidden {
		t.Fatalf("refused lookup that matches nothing (the record was erased): %v", err)
	}
	one("refused lookup that matched nothing", 0, &sekisho.LookupValue{Field: "phone", Value: `"+819099990000"`})
	denied := 0
	entries, err := e.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: operator.Principal})
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		ev, err := sekisho.UnmarshalEvent(en.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Action == sekisho.ActionLookup && ev.Decision == sekisho.Deny && ev.Policy == "guard:enumeration" {
			denied++
		}
	}
	if denied != 3 {
		t.Fatalf("%d refused lookups audited, want 3", denied)
	}
	if g.raised != 0 {
		t.Fatalf("%d alerts raised, want none", g.raised)
	}
}
