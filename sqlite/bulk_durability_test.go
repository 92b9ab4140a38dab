package sqlite

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A bulk load commits with synchronous=NORMAL (no WAL sync per batch) and
// EndBulk returns the writer to synchronous=FULL, whose last commit syncs
// the whole load. Control: outside a bulk load the writer is FULL.
func TestBulkSynchronousRestored(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sync := func() int {
		var n int
		if err := s.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const normal, full = 1, 2
	if got := sync(); got != full {
		t.Fatalf("synchronous before the bulk load = %d, want FULL (%d)", got, full)
	}
	if err := s.BeginBulk(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sync(); got != normal {
		t.Fatalf("synchronous during the bulk load = %d, want NORMAL (%d)", got, normal)
	}
	if err := s.EndBulk(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sync(); got != full {
		t.Fatalf("synchronous after EndBulk = %d, want FULL (%d)", got, full)
	}
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'bulk_load'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("bulk_load left after EndBulk: %d, %v", n, err)
	}
}

// Records written by a multi-row INSERT read back column for column, both
// with the batch's shared columns bound once (sharedRecords: the same
// collection, org, flags and times) and without (a record of another time
// in the chunk), in a bulk load and outside one.
func TestMultiRowInsertsReadBack(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	shared := benchRecords(3*recordsPerInsert, 0)
	mixed := benchRecords(2*recordsPerInsert, 1000)
	for i, r := range append(shared, mixed...) {
		r.Region = []string{"jp", "th", "tw", "id"}[i%4]
		r.KEKVersion = 1 + i%3
	}
	mixed[5].CreatedAt = mixed[5].CreatedAt.Add(time.Second)
	mixed[70].Honeytoken = true
	if err := s.BeginBulk(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadRecords(ctx, shared, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.EndBulk(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRecords(ctx, mixed); err != nil {
		t.Fatal(err)
	}
	for _, want := range append(shared, mixed...) {
		got, err := s.GetRecords(ctx, want.Collection, []string{want.ID})
		if err != nil || len(got) != 1 {
			t.Fatalf("GetRecords(%s) = %v, %v", want.ID, got, err)
		}
		g := got[0]
		if g.Org != want.Org || g.Region != want.Region || g.KEKVersion != want.KEKVersion || !bytes.Equal(g.WrappedDEK, want.WrappedDEK) ||
			g.Honeytoken != want.Honeytoken || g.Version != want.Version || !g.CreatedAt.Equal(want.CreatedAt.Truncate(time.Microsecond)) ||
			!g.UpdatedAt.Equal(want.UpdatedAt.Truncate(time.Microsecond)) || !reflect.DeepEqual(g.Fields, want.Fields) || !reflect.DeepEqual(g.Index, want.Index) {
			t.Fatalf("record %s read back as %+v, want %+v", want.ID, g, want)
		}
		for f, tok := range want.Index {
			ids, err := s.Lookup(ctx, want.Collection, f, tok, 10)
			if err != nil || len(ids) != 1 || ids[0] != want.ID {
				t.Fatalf("Lookup(%s of %s) = %q, %v", f, want.ID, ids, err)
			}
		}
	}
}

// Read back in several passes (an interrupted load, or one past
// bulkPending), the index entries go through lookup_stage and SQLite's
// sorter; every record is then found by every token, the stage and
// bulk_load are gone. Control: the same records are not found before.
func TestFinishBulkInPasses(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := benchRecords(150, 0)
	if err := s.BeginBulk(ctx); err != nil {
		t.Fatal(err)
	}
	for at := 0; at < len(recs); at += 50 {
		if err := s.LoadRecords(ctx, recs[at:at+50], nil); err != nil {
			t.Fatal(err)
		}
	}
	for f, tok := range recs[0].Index {
		if ids, _ := s.Lookup(ctx, "users", f, tok, 10); len(ids) != 0 {
			t.Fatalf("found before the index was built: %q", ids)
		}
	}
	// As after a crash: the entries in memory are gone.
	s.bulk.Store(false)
	s.pending = nil
	s.testPass = 40
	if err := s.finishBulk(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		for f, tok := range r.Index {
			ids, err := s.Lookup(ctx, "users", f, tok, 10)
			if err != nil || len(ids) != 1 || ids[0] != r.ID {
				t.Fatalf("Lookup(%s of %s) = %q, %v", f, r.ID, ids, err)
			}
		}
	}
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name IN ('lookup_stage', 'bulk_load')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d of lookup_stage, bulk_load left, %v", n, err)
	}
}

// EndBulk's statements of groupedEntries rows each: every entry of several
// statements a group (and a remainder of single rows) is found by its
// token. A failure in the middle (a trigger refuses the 1,500th entry)
// returns the error, and the next open finishes the load. Control: before
// EndBulk nothing is found.
func TestEndBulkFailsMidwayThenOpenFinishes(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	n := 5*groupedEntries + 40 // per group (phone, email)
	recs := benchRecords(n, 0)
	load := func(s *Store) {
		if err := s.BeginBulk(ctx); err != nil {
			t.Fatal(err)
		}
		for at := 0; at < n; at += 1000 {
			if err := s.LoadRecords(ctx, recs[at:min(n, at+1000)], nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	found := func(s *Store) int {
		got := 0
		for _, r := range recs {
			for f, tok := range r.Index {
				if ids, err := s.Lookup(ctx, r.Collection, f, tok, 10); err == nil && len(ids) == 1 && ids[0] == r.ID {
					got++
				}
			}
		}
		return got
	}
	load(s)
	if got := found(s); got != 0 {
		t.Fatalf("%d entries found before EndBulk", got)
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TRIGGER refuse BEFORE INSERT ON lookup_index
		WHEN (SELECT count(*) FROM lookup_index) >= 1500 BEGIN SELECT RAISE(ABORT, 'injected'); END`); err != nil {
		t.Fatal(err)
	}
	if err := s.EndBulk(ctx); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("EndBulk with a refusing trigger: %v", err)
	}
	if _, err := s.w.ExecContext(ctx, `DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := found(s); got != 2*n {
		t.Fatalf("after the next open %d of %d entries found", got, 2*n)
	}
}
