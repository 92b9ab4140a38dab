package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// hotEvents are n audit events from index first of principals p0..p2 with
// the given request id prefix.
func hotEvents(first, n int, prefix string) []sekisho.AuditEntry {
	var es []sekisho.AuditEntry
	for i := first; i < first+n; i++ {
		es = append(es, sekisho.AuditEntry{Index: uint64(i), Leaf: []byte(fmt.Sprintf("%s-%d", prefix, i)), Time: time.Unix(int64(1000+i), 0),
			RequestID: fmt.Sprintf("%s-%d", prefix, i), Org: "o", Principal: fmt.Sprintf("p%d", i%3), Device: "d", Decision: "allow",
			Records: []string{fmt.Sprintf("%s-rec%d", prefix, i)}, RecordOrgs: []string{"o"}})
	}
	return es
}

func queryIdx(t *testing.T, s *Store, f sekisho.AuditFilter) []uint64 {
	t.Helper()
	q, err := s.QueryAudit(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range q {
		out = append(out, e.Index)
	}
	return out
}

// The audit index is its own file with its own write lock: an append
// commits while another connection holds the index file's write lock; the
// control, the database's own write lock held, keeps the append waiting
// until it is released.
func TestAuditAppendDoesNotWaitForTheIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lock := func(file string) (release func()) {
		t.Helper()
		db, err := sql.Open("sqlite3", "file:"+file+"?_txlock=immediate&_busy_timeout=10000")
		if err != nil {
			t.Fatal(err)
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		return func() { tx.Rollback(); db.Close() }
	}
	// The index file locked: the append goes through (while the lock is
	// held; a wait would end in "database is locked" after 10 s).
	release := lock(auditIndexPath(path))
	if err := s.AppendAudit(ctx, hotEvents(0, 5, "a"), nil); err != nil {
		t.Fatalf("append with the index file locked: %v", err)
	}
	release()
	if got := queryIdx(t, s, sekisho.AuditFilter{Principal: "p1"}); !slices.Equal(got, []uint64{1, 4}) {
		t.Fatalf("p1's events = %v, want [1 4] (the tail scan)", got)
	}
	// Control: the database locked, the append waits for the release.
	release = lock(path)
	done := make(chan error, 1)
	go func() { done <- s.AppendAudit(ctx, hotEvents(5, 5, "a"), nil) }()
	select {
	case err := <-done:
		t.Fatalf("the append returned (%v) while the database's write lock was held", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("append after the release: %v", err)
	}
	if n, _, err := s.indexAudit(ctx, 1000); err != nil || n != 10 {
		t.Fatalf("indexAudit = %d, %v; want 10", n, err)
	}
	if got := queryIdx(t, s, sekisho.AuditFilter{Principal: "p1"}); !slices.Equal(got, []uint64{1, 4, 7}) {
		t.Fatalf("p1's events after indexing = %v, want [1 4 7]", got)
	}
}

// An index file that is not this log's (another database's, copied over
// it) is emptied at Open and rebuilt, never used: queries answer from this
// log only. The control: the database's own index survives a reopen.
func TestAuditIndexOfAnotherLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func(path string) *Store {
		t.Helper()
		s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	next := func(s *Store) int64 {
		t.Helper()
		var n int64
		if err := s.r.QueryRowContext(ctx, `SELECT next FROM ix.audit_indexed`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	for _, c := range []struct {
		path   string
		prefix string
		n      int
	}{{a, "a", 30}, {b, "b", 20}} {
		s := open(c.path)
		if err := s.AppendAudit(ctx, hotEvents(0, c.n, c.prefix), nil); err != nil {
			t.Fatal(err)
		}
		if n, _, err := s.indexAudit(ctx, 1000); err != nil || n != c.n {
			t.Fatalf("indexAudit = %d, %v", n, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Control: a's own index is kept.
	s := open(a)
	if n := next(s); n != 30 {
		t.Fatalf("a reopened: next = %d, want 30", n)
	}
	s.Close()
	// a's index over b's: b's events 0..19 share indexes with a's.
	idx, err := os.ReadFile(auditIndexPath(a))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"-wal", "-shm"} {
		os.Remove(auditIndexPath(b) + f)
	}
	if err := os.WriteFile(auditIndexPath(b), idx, 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(b)
	defer s.Close()
	if n := next(s); n != 0 {
		t.Fatalf("b with a's index: next = %d, want 0 (emptied)", n)
	}
	if got := queryIdx(t, s, sekisho.AuditFilter{Record: "a-rec4"}); len(got) != 0 {
		t.Fatalf("b answers a query by a's record with %v", got)
	}
	if got := queryIdx(t, s, sekisho.AuditFilter{Record: "b-rec4"}); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("b's record b-rec4: %v, want [4]", got)
	}
	if n, _, err := s.indexAudit(ctx, 1000); err != nil || n != 20 {
		t.Fatalf("indexAudit of b = %d, %v; want 20", n, err)
	}
	if got := queryIdx(t, s, sekisho.AuditFilter{Principal: "p2"}); !slices.Equal(got, []uint64{2, 5, 8, 11, 14, 17}) {
		t.Fatalf("b's p2 = %v", got)
	}
}

// Without its index file a database is still answered in full: Open makes
// an empty index and the indexer rebuilds it; a read-only open (a reader
// beside a server that has not made one) scans the log.
func TestAuditIndexFileMissing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, hotEvents(0, 12, "m"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.indexAudit(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(auditIndexPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("index file mode %v, want 0600", fi.Mode().Perm())
	}
	for _, f := range []string{"", "-wal", "-shm"} {
		os.Remove(auditIndexPath(path) + f)
	}
	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := queryIdx(t, ro, sekisho.AuditFilter{Principal: "p0"}); !slices.Equal(got, []uint64{0, 3, 6, 9}) {
		t.Fatalf("read-only, no index file: p0 = %v", got)
	}
	ro.Close()
	if _, err := os.Stat(auditIndexPath(path)); err == nil {
		t.Fatal("a read-only open made the index file")
	}
	s, err = OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := queryIdx(t, s, sekisho.AuditFilter{Record: "m-rec7"}); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("reopened, index empty: m-rec7 = %v", got)
	}
	if n, _, err := s.indexAudit(ctx, 1000); err != nil || n != 12 {
		t.Fatalf("rebuild: indexAudit = %d, %v; want 12", n, err)
	}
	if got := queryIdx(t, s, sekisho.AuditFilter{Device: "d", From: 10}); !slices.Equal(got, []uint64{10, 11}) {
		t.Fatalf("rebuilt: d from 10 = %v", got)
	}
}

// An index file of another layout (a newer binary's version) is never
// read: a read-only open scans the log instead, and Open drops and rebuilds
// it at this version. The control: the same bogus row in a file of this
// version is read (so the test's row would be found if the version were
// not checked).
func TestAuditIndexOfAnotherVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, hotEvents(0, 6, "v"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.indexAudit(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A bogus index row: event 3 named as reading record "bogus".
	setIndex := func(version int) {
		t.Helper()
		db, err := sql.Open("sqlite3", "file:"+auditIndexPath(path))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range []string{`INSERT OR IGNORE INTO audit_records (record, idx) VALUES ('bogus', 3)`, fmt.Sprintf(`PRAGMA user_version = %d`, version)} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(q, err)
			}
		}
	}
	bogus := func(s *Store) []uint64 { return queryIdx(t, s, sekisho.AuditFilter{Record: "bogus"}) }
	// Control: this version's file is read.
	setIndex(auditIndexVersion)
	ro, err := OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := bogus(ro); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("control: the bogus row in a version-%d file: %v, want [3]", auditIndexVersion, got)
	}
	ro.Close()
	setIndex(99)
	ro, err = OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := bogus(ro); len(got) != 0 {
		t.Fatalf("read-only, a version-99 index was read: %v", got)
	}
	if got := queryIdx(t, ro, sekisho.AuditFilter{Record: "v-rec3"}); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("read-only, version-99 index: v-rec3 = %v, want [3] (the scan)", got)
	}
	ro.Close()
	s, err = OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var v, next int
	if err := s.ixw.QueryRowContext(ctx, `SELECT (SELECT user_version FROM pragma_user_version), next FROM main.audit_indexed`).Scan(&v, &next); err != nil {
		t.Fatal(err)
	}
	if v != auditIndexVersion || next != 0 {
		t.Fatalf("after Open: index version %d next %d, want %d and 0 (rebuilt)", v, next, auditIndexVersion)
	}
	if got := bogus(s); len(got) != 0 {
		t.Fatalf("after Open the bogus row is still read: %v", got)
	}
	if n, _, err := s.indexAudit(ctx, 1000); err != nil || n != 6 {
		t.Fatalf("rebuild: indexAudit = %d, %v; want 6", n, err)
	}
}
