package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// The audit index lives in its own SQLite file beside the database (see
// auditindex.go for what it holds), so that the indexer writes under its
// own write lock: its transactions (a few hundred random audit_records
// pages every auditIndexInterval) no longer hold the database's writer, on
// which every request waits for its audit event to be durable. Queries
// read it attached to the read connections as schema ix.
//
// It is derived data: every row comes from audit_events. Its commits are
// synchronous=NORMAL (a machine crash may lose its last ones: the indexer
// indexes those events again, INSERT OR IGNORE), and a missing or foreign
// file is rebuilt from the log. ix.audit_indexed keeps, beside next, the
// leaf of event next-1; Open compares it with the log's, so an index left
// by another database (a file copied or restored over this one) is
// dropped, never used.

// auditIndexPath is the index file of the database at path.
func auditIndexPath(path string) string {
	return strings.TrimSuffix(path, ".db") + ".audit-index.db"
}

// auditIndexSchema creates the index tables (the same as schema 4 and 6
// made in the database before schema 8).
const auditIndexSchema = `
CREATE TABLE IF NOT EXISTS audit_by_principal (
	principal TEXT NOT NULL,
	time      INTEGER NOT NULL,
	idx       INTEGER NOT NULL,
	PRIMARY KEY (principal, time, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_by_device (
	device TEXT NOT NULL,
	time   INTEGER NOT NULL,
	idx    INTEGER NOT NULL,
	PRIMARY KEY (device, time, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_records (
	record TEXT NOT NULL,
	idx    INTEGER NOT NULL,
	PRIMARY KEY (record, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_record_orgs (
	org TEXT NOT NULL,
	idx INTEGER NOT NULL,
	PRIMARY KEY (org, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_indexed (
	id   INTEGER PRIMARY KEY CHECK (id = 0),
	next INTEGER NOT NULL,
	last BLOB
);
INSERT OR IGNORE INTO audit_indexed (id, next) VALUES (0, 0);
`

// auditIndexTables are the index tables, in the order they are copied.
var auditIndexTables = []string{"audit_by_principal", "audit_by_device", "audit_records", "audit_record_orgs"}

// auditIndexVersion is the index file's layout (its PRAGMA user_version;
// 0 is a file from before it was set, the same layout). A file of another
// version, a newer binary's, is derived data: Open drops it and rebuilds
// from the log, a read-only open does not read it.
const auditIndexVersion = 1

// knownIndexVersion reports whether an index file of version v is read.
func knownIndexVersion(v int) bool { return v == 0 || v == auditIndexVersion }

// attachIndex attaches the index file at ix to a connection as schema ix,
// read-only; when the file does not exist (a read-only open of a database
// whose server never ran this version) an empty in-memory index, next 0,
// stands in for it, so that queries scan the whole log.
func attachIndex(ix string) func(*sqlite3.SQLiteConn) error {
	return func(c *sqlite3.SQLiteConn) error {
		if _, err := os.Stat(ix); errors.Is(err, fs.ErrNotExist) {
			return attachEmptyIndex(c)
		}
		_, err := c.Exec(`ATTACH DATABASE '`+uriFile(ix, "ro")+`' AS ix`, nil)
		if err != nil {
			return fmt.Errorf("sqlite: attach the audit index: %w", err)
		}
		rows, err := c.Query(`PRAGMA ix.user_version`, nil)
		if err != nil {
			return fmt.Errorf("sqlite: audit index version: %w", err)
		}
		v := []driver.Value{int64(0)}
		err = rows.Next(v)
		rows.Close()
		if err != nil {
			return fmt.Errorf("sqlite: audit index version: %w", err)
		}
		if n, _ := v[0].(int64); !knownIndexVersion(int(n)) {
			// Another layout: not read; the log is scanned instead.
			if _, err := c.Exec(`DETACH DATABASE ix`, nil); err != nil {
				return fmt.Errorf("sqlite: detach the audit index: %w", err)
			}
			return attachEmptyIndex(c)
		}
		return nil
	}
}

// attachEmptyIndex attaches an empty in-memory index (next 0) as ix.
func attachEmptyIndex(c *sqlite3.SQLiteConn) error {
	if _, err := c.Exec(`ATTACH DATABASE ':memory:' AS ix`, nil); err != nil {
		return fmt.Errorf("sqlite: attach an empty audit index: %w", err)
	}
	_, err := c.Exec(strings.ReplaceAll(strings.ReplaceAll(auditIndexSchema, "EXISTS audit_", "EXISTS ix.audit_"), "INTO audit_", "INTO ix.audit_"), nil)
	return err
}

// uriFile is a file: URI for path in mode (ro or rw), quoted for a SQL
// string literal.
func uriFile(path, mode string) string {
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: "mode=" + mode}
	return strings.ReplaceAll(u.String(), "'", "''")
}

// openAuditIndex opens (creating) the index file of the database at path,
// with the database attached read-only as schema log, moves the index
// tables of a database from before schema 8 into it, and drops an index
// that is not this log's.
func (s *Store) openAuditIndex(ctx context.Context, path string) error {
	ix := auditIndexPath(path)
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "immediate")
	q.Set("_cache_size", fmt.Sprintf("-%d", s.cacheKiB))
	hook := func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(`ATTACH DATABASE '`+uriFile(path, "ro")+`' AS log`, nil)
		return err
	}
	db := sql.OpenDB(connector{dsn: "file:" + ix + "?" + q.Encode(), d: &sqlite3.SQLiteDriver{ConnectHook: hook}})
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		db.Close()
		return fmt.Errorf("sqlite: audit index %s version: %w", ix, err)
	}
	if !knownIndexVersion(v) {
		for _, t := range append(auditIndexTables, "audit_indexed") {
			if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
				db.Close()
				return fmt.Errorf("sqlite: drop the audit index %s of version %d: %w", ix, v, err)
			}
		}
	}
	if _, err := db.ExecContext(ctx, auditIndexSchema+fmt.Sprintf("PRAGMA user_version = %d;", auditIndexVersion)); err != nil {
		db.Close()
		return fmt.Errorf("sqlite: create the audit index %s: %w", ix, err)
	}
	if err := restrictFiles(ix); err != nil {
		db.Close()
		return err
	}
	s.ixw = db
	if err := s.moveAuditIndex(ctx); err != nil {
		return err
	}
	return s.checkAuditIndex(ctx)
}

// moveAuditIndex copies the index tables a database from before schema 8
// keeps (log.audit_indexed exists) into the index file. Schema 8 then
// drops them from the database; a crash in between copies again (INSERT OR
// IGNORE).
func (s *Store) moveAuditIndex(ctx context.Context) error {
	var n int
	if err := s.ixw.QueryRowContext(ctx, `SELECT count(*) FROM log.sqlite_master WHERE type = 'table' AND name = 'audit_indexed'`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: move the audit index: %w", err)
	}
	if n == 0 {
		return nil
	}
	tx, err := s.ixw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: move the audit index: %w", err)
	}
	defer tx.Rollback()
	for _, t := range auditIndexTables {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO main.`+t+` SELECT * FROM log.`+t); err != nil {
			return fmt.Errorf("sqlite: move the audit index: %s: %w", t, err)
		}
	}
	// Both sides hold every event before their own next.
	if _, err := tx.ExecContext(ctx, `UPDATE main.audit_indexed SET next = max(next, (SELECT next FROM log.audit_indexed WHERE id = 0)),
		last = (SELECT leaf FROM log.audit_events WHERE idx = max(main.audit_indexed.next, (SELECT next FROM log.audit_indexed WHERE id = 0)) - 1) WHERE id = 0`); err != nil {
		return fmt.Errorf("sqlite: move the audit index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: move the audit index: %w", err)
	}
	return nil
}

// checkAuditIndex empties the index unless it is this log's: event next-1
// of the log must be there with the leaf the index noted.
func (s *Store) checkAuditIndex(ctx context.Context) error {
	var next int64
	var last, leaf []byte
	if err := s.ixw.QueryRowContext(ctx, `SELECT next, last, (SELECT leaf FROM log.audit_events WHERE idx = next - 1) FROM main.audit_indexed WHERE id = 0`).Scan(&next, &last, &leaf); err != nil {
		return fmt.Errorf("sqlite: check the audit index: %w", err)
	}
	if next == 0 || (leaf != nil && bytes.Equal(last, leaf)) {
		return nil
	}
	tx, err := s.ixw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: reset the audit index: %w", err)
	}
	defer tx.Rollback()
	for _, t := range auditIndexTables {
		if _, err := tx.ExecContext(ctx, `DELETE FROM main.`+t); err != nil {
			return fmt.Errorf("sqlite: reset the audit index: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE main.audit_indexed SET next = 0, last = NULL WHERE id = 0`); err != nil {
		return fmt.Errorf("sqlite: reset the audit index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: reset the audit index: %w", err)
	}
	return nil
}
