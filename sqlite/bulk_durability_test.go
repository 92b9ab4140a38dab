package sqlite

import (
	"path/filepath"
	"testing"
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
