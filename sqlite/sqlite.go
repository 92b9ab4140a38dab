// Package sqlite is the embedded store: one SQLite database file in the data
// directory, in WAL mode with synchronous=FULL so that a commit that returned
// survives a crash or power loss. It uses github.com/mattn/go-sqlite3 (cgo):
// on our workload (BenchmarkCreate/BenchmarkGet in the vault package) it was
// measured against modernc.org/sqlite, see the README.
//
// One connection writes (SQLite has one writer anyway, and a single
// connection avoids busy-retry storms); a pool of connections reads.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/sekisho/sekisho"
)

// Store implements sekisho.Store on SQLite.
type Store struct {
	w *sql.DB // one connection, for writes
	r *sql.DB // readers

	// stmts caches prepared statements of the hot paths, per pool and
	// query text: database/sql keeps one prepared copy per connection.
	stmts sync.Map // stmtKey -> *sql.Stmt

	// bulk is set between BeginBulk and EndBulk: index entries are
	// deferred (bulk.go).
	bulk atomic.Bool
	// pending holds the deferred index entries of the records this Store
	// loaded since BeginBulk, so that EndBulk need not read them back; nil
	// once they outgrow bulkPending (EndBulk then reads the tokens).
	pendingMu sync.Mutex
	pending   *entrySet
	overflow  bool
	testPass  int // records per read-back pass, in tests (0: bulkPassRecords)

	// cacheKiB is the page cache of each connection (Options.CacheMiB).
	cacheKiB int

	// The group writer (group.go).
	ops       chan *groupOp
	quit      chan struct{}
	groupDone chan struct{}
	closeOnce sync.Once

	// The background checkpointer (checkpoint.go); ckptStats counts its
	// runs that copied the WAL to its end and the WAL restarts it saw
	// (tests).
	ckpt      *sql.DB
	ckptDone  chan struct{}
	ckptStats struct{ caughtUp, restarts, synced atomic.Int64 }
	// dbFile is the database file, for the checkpointer's syncs of the
	// pages it copied (checkpoint.go).
	dbFile *os.File

	// The audit indexer (auditindex.go); idxDone is nil when it does not
	// run. ixw is the one connection writing the index file, which has the
	// database attached read-only as log (auditindexfile.go).
	idxDone chan struct{}
	ixw     *sql.DB

	// Replay keys reserved and not yet committed (replay.go); a send on
	// replayNudge (buffered, 1) asks the group writer to commit them.
	replay      replayState
	replayNudge chan struct{}
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// prep returns the prepared statement of q on db, preparing it once.
func (s *Store) prep(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	k := stmtKey{db, q}
	if st, ok := s.stmts.Load(k); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if prev, loaded := s.stmts.LoadOrStore(k, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

var _ sekisho.Store = (*Store)(nil)

// Options tune a Store's memory.
type Options struct {
	// CacheMiB bounds the page cache of each connection, in MiB (SQLite's
	// cache_size; default DefaultCacheMiB). A Store has one writing
	// connection and Readers reading ones, so its page caches hold at most
	// CacheMiB x (1 + Readers) MiB; sekisho_sqlite_memory_bytes (MemoryUsed)
	// is what they hold now.
	CacheMiB int
	// Readers is the size of the read pool (default DefaultReaders()).
	Readers int

	// noAuditIndexer leaves the audit indexer off (tests: the log's tail
	// stays unindexed until indexAudit is called).
	noAuditIndexer bool
}

// DefaultCacheMiB is the page cache of a connection by default (it was
// 64 MiB: with 5 connections up to 320 MiB outside the Go heap, filled
// slowly as the audit tables grow; issue 19's soak).
const DefaultCacheMiB = 16

// DefaultReaders is the read pool by default: 2 x GOMAXPROCS, at least 4.
func DefaultReaders() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// Open opens or creates the database at path and migrates it, with the
// default Options.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, o Options) (*Store, error) {
	if o.CacheMiB <= 0 {
		o.CacheMiB = DefaultCacheMiB
	}
	if o.Readers <= 0 {
		o.Readers = DefaultReaders()
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_secure_delete", "on") // erased ciphertexts are overwritten, not left in free pages
	q.Set("_txlock", "immediate")
	q.Set("_cache_size", fmt.Sprintf("-%d", o.CacheMiB<<10)) // negative: KiB
	dsn := "file:" + path + "?" + q.Encode()
	w := sql.OpenDB(connector{dsn: dsn, d: &sqlite3.SQLiteDriver{ConnectHook: writerPragmas}})
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, cacheKiB: o.CacheMiB << 10, ops: make(chan *groupOp), quit: make(chan struct{}), groupDone: make(chan struct{}), replayNudge: make(chan struct{}, 1)}
	// fail closes what is open so far (every error path below).
	fail := func(err error) (*Store, error) {
		for _, db := range []*sql.DB{s.ckpt, s.r, s.ixw, w} {
			if db != nil {
				db.Close()
			}
		}
		return nil, err
	}
	// The migrations before the audit index's move, the move, then the
	// others.
	err := s.migrate(ctx, auditIndexMoved-1)
	if err == nil {
		err = s.openAuditIndex(ctx, path)
	}
	if err == nil {
		err = s.migrate(ctx, len(migrations))
	}
	if err != nil {
		return fail(err)
	}
	// A bulk load that was interrupted is finished before anything reads.
	if err := s.finishBulk(ctx); err != nil {
		return fail(err)
	}
	// The replay keys are decided in memory (replay.go).
	if err := s.loadReplay(ctx); err != nil {
		return fail(err)
	}
	// The database holds ciphertexts and the audit log's metadata: readable
	// by its owner only, whatever the umask was.
	if err := restrictFiles(path); err != nil {
		return fail(err)
	}
	q.Set("mode", "ro")
	q.Del("_txlock")
	r := sql.OpenDB(connector{dsn: "file:" + path + "?" + q.Encode(), d: &sqlite3.SQLiteDriver{ConnectHook: attachIndex(auditIndexPath(path))}})
	r.SetMaxOpenConns(o.Readers)
	r.SetMaxIdleConns(o.Readers)
	s.r = r
	q.Del("mode")
	s.ckpt = sql.OpenDB(connector{dsn: "file:" + path + "?" + q.Encode(), d: &sqlite3.SQLiteDriver{}})
	if s.dbFile, err = os.Open(path); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err))
	}
	s.ckpt.SetMaxOpenConns(1)
	s.ckptDone = make(chan struct{})
	go s.groupWriter()
	go s.checkpointer()
	if !o.noAuditIndexer {
		s.idxDone = make(chan struct{})
		go s.auditIndexer()
	}
	return s, nil
}

// restrictFiles makes the SQLite database at path, its WAL and its shared
// memory file readable and writable by their owner only (the ones that
// exist).
func restrictFiles(path string) error {
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite: restrict %s: %w", f, err)
		}
	}
	return nil
}

// connector opens connections with a driver of our own, so that no driver
// is registered globally and the writer gets its pragmas on every connect.
type connector struct {
	dsn string
	d   *sqlite3.SQLiteDriver
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.d }

// writerPragmas tunes the one writing connection: checkpoint the WAL every
// 16k pages (64 MiB) rather than 1k, so that bulk imports rewrite hot index
// pages into the database file less often. Commits stay durable
// (synchronous=FULL); only the checkpoint cadence changes. The background
// checkpointer (checkpoint.go) normally copies the WAL long before that:
// this is the writer's fallback if it falls behind.
func writerPragmas(c *sqlite3.SQLiteConn) error {
	_, err := c.Exec("PRAGMA wal_autocheckpoint = 16384", nil)
	return err
}

// migrations are applied in order; PRAGMA user_version records how many ran.
var migrations = []string{`
CREATE TABLE records (
	collection  TEXT NOT NULL,
	id          TEXT NOT NULL,
	org         TEXT NOT NULL,
	region      TEXT NOT NULL,
	kek_version INTEGER NOT NULL,
	wrapped_dek BLOB,
	fields      BLOB,
	tokens      BLOB,
	honeytoken  INTEGER NOT NULL DEFAULT 0,
	version     INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	erased_at   INTEGER
);
-- A rowid table: rows are appended in insert order and only this index
-- takes random keys; a WITHOUT ROWID table would split pages of whole
-- records on every random id.
CREATE UNIQUE INDEX records_id ON records (collection, id);
CREATE INDEX records_org ON records (collection, org, id);
CREATE TABLE lookup_index (
	collection TEXT NOT NULL,
	field      TEXT NOT NULL,
	token      BLOB NOT NULL,
	id         TEXT NOT NULL,
	PRIMARY KEY (collection, field, token, id)
) WITHOUT ROWID;
CREATE INDEX lookup_index_record ON lookup_index (collection, id);
CREATE TABLE schemas (
	collection TEXT PRIMARY KEY,
	version    INTEGER NOT NULL,
	body       BLOB NOT NULL
);
CREATE TABLE objects (
	kind    TEXT NOT NULL,
	id      TEXT NOT NULL,
	org     TEXT NOT NULL,
	version INTEGER NOT NULL,
	body    BLOB NOT NULL,
	updated INTEGER NOT NULL,
	PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE INDEX objects_org ON objects (kind, org, id);
CREATE TABLE audit_events (
	idx        INTEGER PRIMARY KEY,
	leaf       BLOB NOT NULL,
	time       INTEGER NOT NULL,
	request_id TEXT NOT NULL,
	org        TEXT NOT NULL,
	principal  TEXT NOT NULL,
	device     TEXT NOT NULL,
	decision   TEXT NOT NULL,
	records    TEXT NOT NULL,
	record_orgs TEXT NOT NULL
);
CREATE INDEX audit_principal_time ON audit_events (principal, time);
CREATE INDEX audit_device_time ON audit_events (device, time);
CREATE INDEX audit_org_time ON audit_events (org, time);
CREATE INDEX audit_request ON audit_events (request_id);
CREATE INDEX audit_time ON audit_events (time);
CREATE TABLE audit_records (
	record TEXT NOT NULL,
	idx    INTEGER NOT NULL,
	PRIMARY KEY (record, idx)
) WITHOUT ROWID;
CREATE TABLE audit_record_orgs (
	org TEXT NOT NULL,
	idx INTEGER NOT NULL,
	PRIMARY KEY (org, idx)
) WITHOUT ROWID;
CREATE TABLE audit_nodes (
	level INTEGER NOT NULL,
	idx   INTEGER NOT NULL,
	hash  BLOB NOT NULL,
	PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE audit_checkpoints (
	size INTEGER PRIMARY KEY,
	note BLOB NOT NULL,
	time INTEGER NOT NULL
);
`, `
CREATE TABLE replay (
	key     BLOB PRIMARY KEY,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX replay_expires ON replay (expires);
`, `
-- A record's blind-index entries are deleted by their keys (the record's
-- tokens column names them), so lookup_index needs no index by record id:
-- one random B-tree insert less per entry.
DROP INDEX IF EXISTS lookup_index_record;
`, `
-- The audit log's principal and device indexes are kept by the audit
-- indexer (auditindex.go), in batches, not by each append: an append's
-- transaction touched one tail page of each index per principal and device
-- in its group, about 14 of the ~33 pages a group of 8 hot-read events
-- wrote. audit_indexed.next is where the indexer stands: the events before
-- it are in these tables, the ones from it on are found by a scan of the
-- log's tail (QueryAudit).
CREATE TABLE audit_by_principal (
	principal TEXT NOT NULL,
	time      INTEGER NOT NULL,
	idx       INTEGER NOT NULL,
	PRIMARY KEY (principal, time, idx)
) WITHOUT ROWID;
CREATE TABLE audit_by_device (
	device TEXT NOT NULL,
	time   INTEGER NOT NULL,
	idx    INTEGER NOT NULL,
	PRIMARY KEY (device, time, idx)
) WITHOUT ROWID;
CREATE TABLE audit_indexed (
	id   INTEGER PRIMARY KEY CHECK (id = 0),
	next INTEGER NOT NULL
);
INSERT INTO audit_by_principal (principal, time, idx) SELECT principal, time, idx FROM audit_events WHERE principal != '';
INSERT INTO audit_by_device (device, time, idx) SELECT device, time, idx FROM audit_events WHERE device != '';
INSERT INTO audit_indexed (id, next) SELECT 0, COALESCE(MAX(idx)+1, 0) FROM audit_events;
DROP INDEX audit_principal_time;
DROP INDEX audit_device_time;
`, `
-- The replay table in expiry order (replay.go): UseOnce decides from the
-- keys the store holds in memory, so nothing reads the table by its key; a
-- proof's record is inserted near the tail and the expired ones deleted
-- from the head, not a random page of a key-ordered table and of its
-- expiry index for each.
CREATE TABLE replay_by_expiry (
	expires INTEGER NOT NULL,
	key     BLOB NOT NULL,
	PRIMARY KEY (expires, key)
) WITHOUT ROWID;
INSERT INTO replay_by_expiry (expires, key) SELECT expires, key FROM replay;
DROP TABLE replay;
ALTER TABLE replay_by_expiry RENAME TO replay;
`, `
-- From schema 6 on, audit_records and audit_record_orgs are kept by the
-- audit indexer too, not by each append (auditindex.go): the events from
-- audit_indexed.next on may have no rows there yet, and QueryAudit scans
-- the log's tail for them. Nothing to convert (the rows of the events
-- appended before are all there); the version keeps an older binary, whose
-- queries by record or org read those tables alone, from opening it.
UPDATE audit_indexed SET next = next WHERE id = 0;
`, `
-- The audit tree's lowest levels (0-3: ~94% of its nodes, and new ones in
-- every commit of a few events) keyed for appending: by the last leaf a
-- node covers, end = ((idx + 1) << level) - 1, then level. A commit's new
-- low nodes are then all at the table's tail (one or two pages), not at
-- the tail of each level (a leaf and an interior page per level: half the
-- pages of a hot-read commit were audit_nodes). The higher levels stay in
-- audit_nodes (auditLowNode says which table holds a node).
CREATE TABLE audit_nodes_low (
	end   INTEGER NOT NULL,
	level INTEGER NOT NULL,
	hash  BLOB NOT NULL,
	PRIMARY KEY (end, level)
) WITHOUT ROWID;
INSERT INTO audit_nodes_low (end, level, hash)
	SELECT ((idx + 1) << level) - 1, level, hash FROM audit_nodes WHERE level < 4 AND idx < 288230376151711744;
DELETE FROM audit_nodes WHERE level < 4 AND idx < 288230376151711744;
`, `
-- The audit index is its own file from schema 8 on (auditindexfile.go):
-- Open has copied these tables into it before this runs.
DROP TABLE audit_by_principal;
DROP TABLE audit_by_device;
DROP TABLE audit_records;
DROP TABLE audit_record_orgs;
DROP TABLE audit_indexed;
`}

// auditIndexMoved is the schema version whose migration drops the index
// tables from the database: Open moves them to the index file first.
const auditIndexMoved = 8

// migrate applies the migrations the database lacks up to schema version
// upTo.
func (s *Store) migrate(ctx context.Context, upTo int) error {
	var v int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("sqlite: database schema version %d is newer than this binary (%d)", v, len(migrations))
	}
	for i := v; i < upTo; i++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", i+1, err)
		}
	}
	return nil
}

// Ping implements sekisho.Store.
func (s *Store) Ping(ctx context.Context) error { return s.r.PingContext(ctx) }

// Close implements sekisho.Store.
func (s *Store) Close() error {
	if s.quit != nil { // the group writer runs (not OpenReadOnly)
		s.closeOnce.Do(func() {
			close(s.quit)
			if s.idxDone != nil {
				<-s.idxDone
			}
			<-s.groupDone
			if s.ckpt != nil {
				<-s.ckptDone
				s.ckpt.Close()
				s.dbFile.Close()
			}
			if s.ixw != nil {
				s.ixw.Close()
			}
		})
	}
	s.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	var err error
	if s.r != nil {
		err = s.r.Close()
	}
	if e := s.w.Close(); e != nil {
		err = e
	}
	return err
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return full(fmt.Errorf("sqlite: begin: %w", err))
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return full(err)
	}
	if err := tx.Commit(); err != nil {
		return full(fmt.Errorf("sqlite: commit: %w", err))
	}
	return nil
}

// full turns SQLite's "database or disk is full" (SQLITE_FULL), and an I/O
// error caused by ENOSPC, into the storage-full problem; other errors pass
// unchanged. The transaction was rolled back: nothing of it is stored.
func full(err error) error {
	var e sqlite3.Error
	if errors.As(err, &e) && (e.Code == sqlite3.ErrFull || (e.Code == sqlite3.ErrIoErr && e.SystemErrno == syscall.ENOSPC)) {
		return &sekisho.Error{Code: sekisho.EUnavailable, Type: sekisho.ProblemStorageFull,
			Message: "the store's disk is full: writes are refused until space is freed", Err: err}
	}
	return err
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

func isUnique(err error) bool {
	var e sqlite3.Error
	return errors.As(err, &e) && e.Code == sqlite3.ErrConstraint
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
