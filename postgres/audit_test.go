package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/storetest"
)

// A small append (the hot read's group commit, one statement) keeps every
// list element as it was given, quotes, backslashes, commas and braces
// included; an append at a stale index writes nothing (EConflict), and the
// same append at the right index then succeeds.
func TestAppendAuditOneStatement(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	odd := []string{`a"b`, `c\d`, `e,f`, `{g}`, ``, `NULL`}
	e := storetest.NewEntry(0)
	e.Records, e.RecordOrgs = odd, []string{"org,1", `org"2`}
	if err := st.AppendAudit(ctx, []sekisho.AuditEntry{e}, []sekisho.AuditNode{{Level: 0, Index: 0, Hash: []byte{1}}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.AuditLeaves(ctx, 0, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("leaves: %v %v", got, err)
	}
	if !slices.Equal(got[0].Records, odd) || !slices.Equal(got[0].RecordOrgs, e.RecordOrgs) {
		t.Fatalf("records %q record orgs %q, want %q %q", got[0].Records, got[0].RecordOrgs, odd, e.RecordOrgs)
	}
	for _, r := range odd {
		if es, err := st.QueryAudit(ctx, sekisho.AuditFilter{Record: r}); err != nil || len(es) != 1 {
			t.Fatalf("query by record %q: %d entries, %v", r, len(es), err)
		}
	}
	if es, err := st.QueryAudit(ctx, sekisho.AuditFilter{Org: "org,1"}); err != nil || len(es) != 1 {
		t.Fatalf("query by record org: %d entries, %v", len(es), err)
	}

	// Stale: index 0 again. Nothing of it is written.
	stale := storetest.NewEntry(0)
	stale.Records = []string{"stale-record"}
	if err := st.AppendAudit(ctx, []sekisho.AuditEntry{stale}, nil); sekisho.Code(err) != sekisho.EConflict {
		t.Fatalf("append at a stale index: %v, want EConflict", err)
	}
	if es, err := st.QueryAudit(ctx, sekisho.AuditFilter{Record: "stale-record"}); err != nil || len(es) != 0 {
		t.Fatalf("the refused append left %d entries (%v)", len(es), err)
	}
	// Control: the same entry at the log's size is written.
	stale.Index = 1
	if err := st.AppendAudit(ctx, []sekisho.AuditEntry{stale}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := st.AuditSize(ctx); err != nil || n != 2 {
		t.Fatalf("size %d %v, want 2", n, err)
	}
}
