package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

func TestMemoryUsedCountsTheCache(t *testing.T) {
	before, _ := MemoryUsed()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, high := MemoryUsed()
	if after <= before || high < after {
		t.Fatalf("memory used before %d, after opening a store %d (high %d): want more after", before, after, high)
	}
}

// The page caches of a store stay within Options.CacheMiB a connection
// however much of the database is written and read: 24 MiB written and
// read back through a store of 1 MiB caches (a writer and one reader) grow
// SQLite's memory by less than their 2 MiB and a few MiB of schemas and
// statements. The control is the same work with 64 MiB caches (the former
// default): SQLite's memory grows past that bound.
func TestCacheStaysWithinItsBound(t *testing.T) {
	const bound = 6 << 20 // 2 x 1 MiB of caches, with room for the rest
	for _, tc := range []struct {
		name     string
		cacheMiB int
		within   bool
	}{{"1 MiB a connection", 1, true}, {"control: 64 MiB a connection", 64, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			before, _ := MemoryUsed()
			s, err := OpenWith(ctx, filepath.Join(t.TempDir(), "m.db"), Options{CacheMiB: tc.cacheMiB, Readers: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.w.ExecContext(ctx, `CREATE TABLE filler (x BLOB)`); err != nil {
				t.Fatal(err)
			}
			if _, err := s.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 24576)
				INSERT INTO filler SELECT randomblob(1024) FROM n`); err != nil {
				t.Fatal(err)
			}
			var total int64
			if err := s.r.QueryRowContext(ctx, `SELECT sum(length(x)) FROM filler`).Scan(&total); err != nil || total != 24576*1024 {
				t.Fatalf("read back %d bytes, %v", total, err)
			}
			now, _ := MemoryUsed()
			grew := now - before
			t.Logf("SQLite memory grew %.1f MiB", float64(grew)/(1<<20))
			if (grew <= bound) != tc.within {
				t.Fatalf("SQLite memory grew %d bytes with %d MiB caches: within %d bytes %v, want %v", grew, tc.cacheMiB, bound, grew <= bound, tc.within)
			}
		})
	}
}
