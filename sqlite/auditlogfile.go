package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// The audit log lives in its own SQLite file beside the database from
// schema 9 on: the events, the tree's nodes, the checkpoints and the replay
// records of DPoP proofs, every table a request appends to when it only
// reads. SQLite resets a reading connection's page cache whenever the file
// it reads has a new commit, so with the log in the database every read of
// a record, after every group commit of audit events (hundreds a second),
// started from an empty cache: 54-67 µs a random read of a 1M-record
// database against 35-39 µs with no commits and 38-42 µs with the same
// commits to another file (bench/README.md). The records, the objects and
// the keys stay in the database, which the hot read then no longer writes.
//
// The two files are one store: every connection of the Store has the log
// attached as schema lg (the readers read-only), and the log's tables are
// named only there, so the queries name them unqualified. The log is
// synchronous=FULL like the database, whatever a bulk load does to the
// database's (bulk.go): a batch's audit event is durable before its
// records' commit.
//
// A transaction writes one file or the other, except a migration: SQLite
// commits each file of a transaction atomically, but not the two as one
// (WAL mode). The move of a log from the database (Open, schema 8 to 9)
// therefore writes the log file in one transaction, and schema 9 then
// drops the tables from the database: a crash between the two moves it
// again.

// auditLogPath is the audit log file of the database at path.
func auditLogPath(path string) string {
	return strings.TrimSuffix(path, ".db") + ".audit.db"
}

// AuditLogFile is the audit log file of the database at path, which a copy
// of the database must carry beside it (Backup copies both).
func AuditLogFile(path string) string { return auditLogPath(path) }

// auditLogMoved is the schema version from which the audit log is in its
// own file.
const auditLogMoved = 9

// auditLogSchema creates the log's tables in schema lg: those of
// migrations 1-7, which made them in the database before schema 9.
const auditLogSchema = `
CREATE TABLE IF NOT EXISTS lg.audit_events (
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
CREATE INDEX IF NOT EXISTS lg.audit_org_time ON audit_events (org, time);
CREATE INDEX IF NOT EXISTS lg.audit_request ON audit_events (request_id);
CREATE INDEX IF NOT EXISTS lg.audit_time ON audit_events (time);
CREATE TABLE IF NOT EXISTS lg.audit_nodes (
	level INTEGER NOT NULL,
	idx   INTEGER NOT NULL,
	hash  BLOB NOT NULL,
	PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lg.audit_nodes_low (
	end   INTEGER NOT NULL,
	level INTEGER NOT NULL,
	hash  BLOB NOT NULL,
	PRIMARY KEY (end, level)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lg.audit_checkpoints (
	size INTEGER PRIMARY KEY,
	note BLOB NOT NULL,
	time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lg.replay (
	expires INTEGER NOT NULL,
	key     BLOB NOT NULL,
	PRIMARY KEY (expires, key)
) WITHOUT ROWID;
`

// auditLogTables are the log's tables.
var auditLogTables = []string{"audit_events", "audit_nodes", "audit_nodes_low", "audit_checkpoints", "replay"}

// auditLogMode is how Open attaches the log file of the database at path:
// "rw" when it exists, "rwc" (created) when the database is new or from
// before schema 9 (Open moves its log into the file). A database of schema
// 9 or later without its log file is refused: a log is never started over
// beside records that it audited.
func auditLogMode(ctx context.Context, path string) (string, error) {
	lp := auditLogPath(path)
	if _, err := os.Stat(lp); err == nil {
		return "rw", nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("sqlite: audit log %s: %w", lp, err)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "rwc", nil
	}
	v, err := fileSchema(ctx, path)
	if err != nil {
		return "", err
	}
	if v >= auditLogMoved {
		return "", fmt.Errorf("sqlite: %s (schema %d) keeps its audit log in %s, which is missing: restore both files from a backup (sekisho restore); a store does not start without its log", path, v, lp)
	}
	return "rwc", nil
}

// fileSchema reads the schema version of the database at path, read-only.
func fileSchema(ctx context.Context, path string) (int, error) {
	db := sql.OpenDB(connector{dsn: "file:" + path + "?mode=ro&_busy_timeout=10000", d: &sqlite3.SQLiteDriver{}})
	defer db.Close()
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: read the schema version of %s: %w", path, err)
	}
	return v, nil
}

// attachLog attaches the log file lp to a connection as schema lg, in mode
// (ro, rw or rwc). A writing connection (rw, rwc) also sets the log's
// journal and sync modes: WAL, synchronous=FULL, like the database's, and
// its page cache (cacheKiB) and secure_delete.
func attachLog(c *sqlite3.SQLiteConn, lp, mode string, cacheKiB int) error {
	if _, err := c.Exec(`ATTACH DATABASE '`+uriFile(lp, mode)+`' AS lg`, nil); err != nil {
		return fmt.Errorf("sqlite: attach the audit log %s: %w", lp, err)
	}
	pragmas := []string{fmt.Sprintf("PRAGMA lg.cache_size = -%d", cacheKiB)}
	if mode != "ro" {
		pragmas = append(pragmas, "PRAGMA lg.journal_mode = WAL", "PRAGMA lg.synchronous = FULL", "PRAGMA lg.secure_delete = ON")
	}
	for _, p := range pragmas {
		if _, err := c.Exec(p, nil); err != nil {
			return fmt.Errorf("sqlite: audit log %s: %s: %w", lp, p, err)
		}
	}
	return nil
}

// readerHook attaches, to a read-only connection of the database at path,
// its log file (when it exists: before schema 9 the log is in the
// database) and its audit index.
func readerHook(path string, cacheKiB int) func(*sqlite3.SQLiteConn) error {
	index := attachIndex(auditIndexPath(path))
	return func(c *sqlite3.SQLiteConn) error {
		if lp := auditLogPath(path); exists(lp) {
			if err := attachLog(c, lp, "ro", cacheKiB); err != nil {
				return err
			}
		}
		return index(c)
	}
}

// moveAuditLog copies the log's tables of a database from before schema 9
// into the log file (attached as lg), replacing whatever a crashed move
// left there, in one transaction of the log file. Schema 9 then drops them
// from the database.
func (s *Store) moveAuditLog(ctx context.Context) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, auditLogSchema); err != nil {
			return err
		}
		for _, t := range auditLogTables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM lg.`+t); err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO lg.`+t+` SELECT * FROM main.`+t); err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: move the audit log into its own file: %w", err)
	}
	return nil
}

// exists reports whether path names an existing file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
