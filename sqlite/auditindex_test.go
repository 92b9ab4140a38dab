package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// A query by principal, device, record or org finds every event whether the
// indexer has indexed it or not: with the log half indexed, each query's answer is the
// one a scan of the whole log gives (the control), and stays the same after
// the indexer has caught up; the index tables then hold the events (so the
// first half of the answers did come from them).
func TestAuditQueryIndexedAndTail(t *testing.T) {
	ctx := context.Background()
	s, err := OpenWith(ctx, filepath.Join(t.TempDir(), "db"), Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	const n = 400
	var all []sekisho.AuditEntry
	for i := range n {
		e := sekisho.AuditEntry{Index: uint64(i), Leaf: []byte(fmt.Sprint(i)), Time: t0.Add(time.Duration(i%97) * time.Minute),
			RequestID: fmt.Sprintf("r%d", i), Org: "o", Principal: fmt.Sprintf("p%d", i%7), Device: fmt.Sprintf("d%d", i%11),
			Decision: "allow", Records: []string{fmt.Sprintf("rec%d", i%13)}, RecordOrgs: []string{"o"}}
		if i%50 == 0 {
			e.Principal, e.Device = "", "" // the node's own events name no caller
		}
		switch i % 5 {
		case 1: // a record of another org, read by a caller of o
			e.RecordOrgs = []string{fmt.Sprintf("o%d", i%3)}
		case 2: // several records, of two orgs
			e.Records = append(e.Records, fmt.Sprintf("rec%d", i%17), `a"quoted\id`)
			e.RecordOrgs = []string{"o", fmt.Sprintf("o%d", i%3)}
		case 3: // an event of another org naming no record
			e.Org, e.Records, e.RecordOrgs = "o1", nil, nil
		}
		all = append(all, e)
	}
	if err := s.AppendAudit(ctx, all[:n/2], nil); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.indexAudit(ctx, 1000); err != nil || got != n/2 {
		t.Fatalf("indexAudit = %d, %v; want %d", got, err, n/2)
	}
	if err := s.AppendAudit(ctx, all[n/2:], nil); err != nil {
		t.Fatal(err)
	}
	// Appends write no audit_records or audit_record_orgs rows: the
	// second half is in neither before the indexer has run.
	var nr, no int
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_records WHERE idx >= ?), (SELECT COUNT(*) FROM audit_record_orgs WHERE idx >= ?)`, n/2, n/2).Scan(&nr, &no); err != nil {
		t.Fatal(err)
	}
	if nr != 0 || no != 0 {
		t.Errorf("before indexing, the tail has %d audit_records and %d audit_record_orgs rows, want 0", nr, no)
	}
	want := func(f sekisho.AuditFilter) []uint64 {
		var out []uint64
		for _, e := range all {
			if e.Index < f.From || (f.Principal != "" && e.Principal != f.Principal) || (f.Device != "" && e.Device != f.Device) ||
				(!f.Since.IsZero() && e.Time.Before(f.Since)) || (!f.Until.IsZero() && !e.Time.Before(f.Until)) ||
				(f.Record != "" && !slices.Contains(e.Records, f.Record)) ||
				(f.Org != "" && e.Org != f.Org && !slices.Contains(e.RecordOrgs, f.Org)) {
				continue
			}
			out = append(out, e.Index)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
		return out
	}
	filters := []sekisho.AuditFilter{
		{Principal: "p3"},
		{Device: "d5"},
		{Principal: "p3", Device: "d5"},
		{Principal: "p1", Since: t0.Add(10 * time.Minute), Until: t0.Add(40 * time.Minute)},
		{Device: "d2", From: 150, Limit: 7},
		{Principal: "p6", From: 190, Limit: 3}, // straddles the indexed part and the tail
		{Principal: "nobody"},
		{Record: "rec4"},
		{Record: "rec9", From: 150, Limit: 5}, // straddles the indexed part and the tail
		{Record: `a"quoted\id`},
		{Record: "rec16", Principal: "p2"},
		{Record: "nothing"},
		{Org: "o"},
		{Org: "o1"},
		{Org: "o2", Since: t0.Add(10 * time.Minute), Until: t0.Add(70 * time.Minute)},
		{Org: "o0", From: 180, Limit: 9},
		{Org: "o2", Record: "rec7"},
	}
	check := func(stage string) {
		t.Helper()
		for _, f := range filters {
			q, err := s.QueryAudit(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range q {
				got = append(got, e.Index)
			}
			if w := want(f); !slices.Equal(got, w) {
				t.Errorf("%s: QueryAudit(%+v) = %v, want %v", stage, f, got, w)
			}
		}
	}
	check("half indexed")
	if got, _, err := s.indexAudit(ctx, 1000); err != nil || got != n/2 {
		t.Fatalf("indexAudit = %d, %v; want %d", got, err, n/2)
	}
	if got, _, err := s.indexAudit(ctx, 1000); err != nil || got != 0 {
		t.Fatalf("indexAudit again = %d, %v; want 0", got, err)
	}
	check("all indexed")
	var np, nd int
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_by_principal), (SELECT COUNT(*) FROM audit_by_device)`).Scan(&np, &nd); err != nil {
		t.Fatal(err)
	}
	if want := n - n/50; np != want || nd != want {
		t.Errorf("index tables hold %d and %d events, want %d each", np, nd, want)
	}
	var wr, wo int
	for _, e := range all { // each value once per event
		wr += len(slices.Compact(slices.Sorted(slices.Values(e.Records))))
		wo += len(slices.Compact(slices.Sorted(slices.Values(e.RecordOrgs))))
	}
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_records), (SELECT COUNT(*) FROM audit_record_orgs)`).Scan(&nr, &no); err != nil {
		t.Fatal(err)
	}
	if nr != wr || no != wo {
		t.Errorf("audit_records holds %d rows, audit_record_orgs %d; want %d and %d", nr, no, wr, wo)
	}
}

// The background indexer catches up by itself.
func TestAuditIndexerCatchesUp(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var es []sekisho.AuditEntry
	for i := range 50 {
		es = append(es, sekisho.AuditEntry{Index: uint64(i), Leaf: []byte{byte(i)}, Time: time.Now(), RequestID: "r", Org: "o",
			Principal: "p", Device: "d", Decision: "allow", Records: []string{}, RecordOrgs: []string{}})
	}
	if err := s.AppendAudit(ctx, es, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var next int
		if err := s.r.QueryRowContext(ctx, `SELECT next FROM audit_indexed`).Scan(&next); err != nil {
			t.Fatal(err)
		}
		if next == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the indexer stands at %d after 10 s, want 50", next)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A database made before the index tables existed (schema version 3, the
// indexes on audit_events) has its events in the index tables after Open
// migrates it, and the indexer goes on from its end.
func TestAuditIndexMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	db := dbAtSchema(t, path, 3)
	for i := range 30 {
		if _, err := db.Exec(`INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs)
			VALUES (?, x'00', ?, 'r', 'o', ?, ?, 'allow', '[]', '[]')`, i, 1000+i, fmt.Sprintf("p%d", i%3), fmt.Sprintf("d%d", i%5)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var np, nd, next int
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_by_principal WHERE principal = 'p1'), (SELECT COUNT(*) FROM audit_by_device), (SELECT next FROM audit_indexed)`).Scan(&np, &nd, &next); err != nil {
		t.Fatal(err)
	}
	if np != 10 || nd != 30 || next != 30 {
		t.Errorf("after the migration: p1 has %d indexed events (want 10), devices %d (want 30), next %d (want 30)", np, nd, next)
	}
	// Schema 8 moved them to the index file: the database keeps none.
	var left int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM main.sqlite_master WHERE name IN ('audit_by_principal', 'audit_by_device', 'audit_records', 'audit_record_orgs', 'audit_indexed')`).Scan(&left); err != nil || left != 0 {
		t.Errorf("the database still has %d index tables (%v)", left, err)
	}
	var ixNext int
	if err := s.ixw.QueryRowContext(ctx, `SELECT next FROM main.audit_indexed`).Scan(&ixNext); err != nil || ixNext != 30 {
		t.Errorf("the index file's next = %d (%v), want 30", ixNext, err)
	}
	q, err := s.QueryAudit(ctx, sekisho.AuditFilter{Principal: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 10 || q[0].Index != 1 || q[9].Index != 28 {
		t.Errorf("QueryAudit(p1) = %d events, want 10 (1, 4, ..., 28)", len(q))
	}
}

// One indexer transaction takes events while their record ids (at least 1
// an event) fit the budget, and at least one event however many ids it
// names; the steps together index every event and every record id.
func TestAuditIndexBudget(t *testing.T) {
	ctx := context.Background()
	s, err := OpenWith(ctx, filepath.Join(t.TempDir(), "db"), Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	counts := []int{1, 1, 2, 0, 10, 1, 1, 1, 1, 3}
	var es []sekisho.AuditEntry
	rows := 0
	for i, k := range counts {
		e := sekisho.AuditEntry{Index: uint64(i), Leaf: []byte{byte(i)}, Time: time.Now(), RequestID: "r", Org: "o",
			Principal: "p", Device: "d", Decision: "allow", Records: []string{}, RecordOrgs: []string{}}
		for j := range k {
			e.Records = append(e.Records, fmt.Sprintf("rec-%d-%d", i, j))
		}
		rows += k
		es = append(es, e)
	}
	if err := s.AppendAudit(ctx, es, nil); err != nil {
		t.Fatal(err)
	}
	// Budget 4: {1,1,2}, {0 (costs 1)}, {10: alone}, {1,1,1,1}, {3}.
	want := []int{3, 1, 1, 4, 1}
	for i, w := range want {
		n, more, err := s.indexAudit(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		if n != w || more != (i < len(want)-1) {
			t.Fatalf("step %d: indexed %d events, more %v; want %d, %v", i, n, more, w, i < len(want)-1)
		}
	}
	if n, more, err := s.indexAudit(ctx, 4); err != nil || n != 0 || more {
		t.Fatalf("after the last step: %d, %v, %v; want 0, false", n, more, err)
	}
	var nr, np int
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_records), (SELECT COUNT(*) FROM audit_by_principal)`).Scan(&nr, &np); err != nil {
		t.Fatal(err)
	}
	if nr != rows || np != len(counts) {
		t.Errorf("indexed %d record ids and %d events, want %d and %d", nr, np, rows, len(counts))
	}
}

// dbAtSchema creates the database at path with the first n migrations
// applied, as a binary of schema n left it, and returns it open (setting
// PRAGMA user_version, once its rows are in, is the caller's).
func dbAtSchema(t *testing.T, path string, n int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:n] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	return db
}
