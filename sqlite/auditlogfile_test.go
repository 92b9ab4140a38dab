package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// rawCount counts the rows of table in the SQLite file at path (-1: no
// such table).
func rawCount(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return -1
	}
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The audit log's tables are in the log file, none in the database; an
// append (audit events, a proof's replay record) commits to the log file
// alone, so the database a reader reads has no new commit (its page cache
// stays); the control, an object written, is a commit to the database.
func TestAuditLogIsItsOwnFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sekisho.db")
	s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AppendAudit(ctx, hotEvents(0, 10, "a"), nil); err != nil {
		t.Fatal(err)
	}
	// One reading connection, its data_version of each file before and
	// after: it changes when another connection committed to the file.
	c, err := s.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	versions := func() (db, log int64) {
		t.Helper()
		if err := c.QueryRowContext(ctx, `SELECT (SELECT data_version FROM pragma_data_version), (SELECT count(*) FROM audit_events)`).Scan(&db, new(int)); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA lg.data_version`).Scan(&log); err != nil {
			t.Fatal(err)
		}
		return db, log
	}
	db0, log0 := versions()
	if err := s.AppendAudit(ctx, hotEvents(10, 5, "b"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseOnce(ctx, []byte("proof-1"), time.Now().Add(time.Minute), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, hotEvents(15, 1, "c"), nil); err != nil {
		t.Fatal(err)
	}
	db1, log1 := versions()
	if db1 != db0 {
		t.Errorf("audit appends committed to the database (data_version %d -> %d)", db0, db1)
	}
	if log1 == log0 {
		t.Errorf("audit appends did not commit to the log file (data_version %d)", log1)
	}
	// Control: a write of the database is seen as one.
	if err := s.PutObject(ctx, &sekisho.Object{Kind: "k", ID: "1", Org: "o", Version: 1, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if db2, _ := versions(); db2 == db1 {
		t.Errorf("an object written: the database's data_version stayed %d", db2)
	}
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lp := auditLogPath(path)
	if lp != filepath.Join(filepath.Dir(path), "sekisho.audit.db") {
		t.Fatalf("log file %s", lp)
	}
	for _, tb := range auditLogTables {
		if n := rawCount(t, path, tb); n != -1 {
			t.Errorf("the database holds table %s (%d rows)", tb, n)
		}
		if n := rawCount(t, lp, tb); n < 0 {
			t.Errorf("the log file has no table %s", tb)
		}
	}
	if n := rawCount(t, lp, "audit_events"); n != 16 {
		t.Errorf("the log file holds %d events, want 16", n)
	}
	if n := rawCount(t, lp, "replay"); n != 1 {
		t.Errorf("the log file holds %d replay records, want 1", n)
	}
	if fi, err := os.Stat(lp); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

// A database of schema 8 (the log in it) opens with its log moved into the
// log file, every row, and whatever an interrupted move left in the file
// replaced; the database then holds no log table.
func TestAuditLogMovedFromTheDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sekisho.db")
	db := dbAtSchema(t, path, 8)
	exec := func(db *sql.DB, q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range hotEvents(0, 40, "old") {
		exec(db, `INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs) VALUES (?,?,?,?,?,?,?,?,?,?)`,
			int64(e.Index), e.Leaf, micros(e.Time), e.RequestID, e.Org, e.Principal, e.Device, e.Decision, jsonList(e.Records), jsonList(e.RecordOrgs))
	}
	exec(db, `INSERT INTO audit_nodes_low (end, level, hash) VALUES (1, 1, x'01'), (3, 2, x'02')`)
	exec(db, `INSERT INTO audit_nodes (level, idx, hash) VALUES (5, 0, x'05')`)
	exec(db, `INSERT INTO audit_checkpoints (size, note, time) VALUES (40, x'6e6f7465', 1)`)
	exec(db, `INSERT INTO replay (expires, key) VALUES (?, x'6b6579')`, micros(time.Now().Add(time.Hour)))
	exec(db, `PRAGMA user_version = 8`)
	db.Close()
	// An interrupted move left a log file with rows that are not the log's.
	lp := auditLogPath(path)
	stale, err := sql.Open("sqlite3", "file:"+lp)
	if err != nil {
		t.Fatal(err)
	}
	exec(stale, strings.ReplaceAll(auditLogSchema, "lg.", ""))
	exec(stale, `INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs) VALUES (99, x'00', 0, 'x', 'o', 'p', 'd', 'allow', '[]', '[]')`)
	stale.Close()

	s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.AuditLeaves(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 40 || got[0].RequestID != "old-0" || got[39].RequestID != "old-39" || !slices.Equal(got[7].Records, []string{"old-rec7"}) {
		t.Fatalf("after the move: %d events", len(got))
	}
	if idx := queryIdx(t, s, sekisho.AuditFilter{Principal: "p1"}); len(idx) != 13 {
		t.Errorf("query by principal after the move: %v", idx)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil || len(cps) != 1 || cps[0].Size != 40 {
		t.Errorf("checkpoints after the move: %+v (%v)", cps, err)
	}
	if fresh, err := s.UseOnce(ctx, []byte("key"), time.Now().Add(time.Hour), time.Now()); err != nil || fresh {
		t.Errorf("a replay key recorded before the move is fresh again (%v)", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tb := range auditLogTables {
		if n := rawCount(t, path, tb); n != -1 {
			t.Errorf("the database still holds %s (%d rows)", tb, n)
		}
	}
	for tb, want := range map[string]int{"audit_events": 40, "audit_nodes_low": 2, "audit_nodes": 1, "audit_checkpoints": 1, "replay": 1} {
		if n := rawCount(t, lp, tb); n != want {
			t.Errorf("the log file's %s holds %d rows, want %d", tb, n, want)
		}
	}
	if v, err := fileSchema(ctx, path); err != nil || v != auditLogMoved {
		t.Errorf("schema %d (%v), want %d", v, err, auditLogMoved)
	}
}

// A store whose log file is gone does not open, for writing or reading:
// a log is never started over beside the records it audited. The control:
// the file put back, it opens with its events.
func TestOpenRefusesAMissingAuditLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sekisho.db")
	s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, hotEvents(0, 3, "a"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lp := auditLogPath(path)
	aside := filepath.Join(dir, "aside.db")
	if err := os.Rename(lp, aside); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path); err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), lp) {
		t.Fatalf("Open without the log file: %v", err)
	}
	if _, err := OpenReadOnly(ctx, path); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("OpenReadOnly without the log file: %v", err)
	}
	if _, err := os.Stat(lp); err == nil {
		t.Fatal("a refused Open created a log file")
	}
	if err := os.Rename(aside, lp); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.AuditLeaves(ctx, 0, 10); err != nil || len(got) != 3 {
		t.Fatalf("the log file put back: %d events (%v)", len(got), err)
	}
}

// Backup copies the log file beside the database; the copy opens
// read-only with every event.
func TestBackupCopiesTheAuditLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "sekisho.db")
	s, err := Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AppendAudit(ctx, hotEvents(0, 25, "a"), nil); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "copy", "sekisho.db")
	if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Backup(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(ctx, auditLogPath(dst)); err != nil {
		t.Fatal(err)
	}
	c, err := OpenReadOnly(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.AuditLeaves(ctx, 0, 100); err != nil || len(got) != 25 {
		t.Fatalf("the copy holds %d events (%v)", len(got), err)
	}
}
