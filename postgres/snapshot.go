package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
)

// Snapshot is a read-only view of a store as of one moment: a REPEATABLE
// READ READ ONLY transaction on a connection of its own, whose snapshot is
// exported (pg_export_snapshot) so that `pg_dump --snapshot=ID` dumps
// exactly the data the Snapshot reads. `sekisho backup --store` checks its
// dump against it.
type Snapshot struct {
	conn *pgx.Conn
	tx   pgx.Tx
	// ID is the exported snapshot, valid while the Snapshot is open.
	ID string
}

// OpenSnapshot connects to dsn (without migrating anything) and opens the
// snapshot.
func OpenSnapshot(ctx context.Context, dsn string) (*Snapshot, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, sekisho.Errorf(sekisho.EInvalid, "postgres: the store address is not a valid PostgreSQL connection string")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("postgres: snapshot: %w", err)
	}
	s := &Snapshot{conn: conn, tx: tx}
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&s.ID); err != nil {
		s.Close(ctx)
		return nil, fmt.Errorf("postgres: export snapshot: %w", err)
	}
	return s, nil
}

// Close ends the transaction (the exported snapshot with it) and the
// connection.
func (s *Snapshot) Close(ctx context.Context) error {
	s.tx.Rollback(ctx)
	return s.conn.Close(ctx)
}

// RowCounts returns the number of rows of every table of the store's
// schema (the current schema) that holds rows, as of the snapshot: the
// partitions of a partitioned table, not the table itself, as pg_dump
// dumps them.
func (s *Snapshot) RowCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := s.tx.Query(ctx, `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: list tables: %w", err)
	}
	out := make(map[string]int64, len(names))
	for _, n := range names {
		var c int64
		if err := s.tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{n}.Sanitize()).Scan(&c); err != nil {
			return nil, fmt.Errorf("postgres: count %s: %w", n, err)
		}
		out[n] = c
	}
	return out, nil
}

// AuditTables returns the tables that hold the audit log's events, as of
// the snapshot: audit_entries' partitions (migration 4), or audit_entries
// itself in a database from before it.
func (s *Snapshot) AuditTables(ctx context.Context) ([]string, error) {
	rows, err := s.tx.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_entries'::regclass ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list the audit partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: list the audit partitions: %w", err)
	}
	if len(names) == 0 {
		names = []string{"audit_entries"}
	}
	return names, nil
}

// AuditStore returns the audit log as of the snapshot, to verify with
// audit.Verify. It only reads: AppendAudit and PutCheckpoint fail.
func (s *Snapshot) AuditStore() sekisho.AuditStore { return snapshotAudit{s.tx} }

type snapshotAudit struct{ q querier }

func (a snapshotAudit) AppendAudit(context.Context, []sekisho.AuditEntry, []sekisho.AuditNode) error {
	return sekisho.Errorf(sekisho.EInvalid, "postgres: a snapshot is read-only")
}

func (a snapshotAudit) AuditSize(ctx context.Context) (uint64, error) { return auditSize(ctx, a.q) }

func (a snapshotAudit) AuditLeaves(ctx context.Context, from uint64, limit int) ([]sekisho.AuditEntry, error) {
	return auditLeaves(ctx, a.q, from, limit)
}

func (a snapshotAudit) QueryAudit(context.Context, sekisho.AuditFilter) ([]sekisho.AuditEntry, error) {
	return nil, sekisho.Errorf(sekisho.EInvalid, "postgres: a snapshot does not query events")
}

func (a snapshotAudit) AuditNodes(ctx context.Context, ids []sekisho.AuditNode) ([][]byte, error) {
	return auditNodes(ctx, a.q, ids)
}

func (a snapshotAudit) AuditNodeRange(ctx context.Context, level uint, from, to uint64) ([][]byte, error) {
	return auditNodeRange(ctx, a.q, level, from, to)
}

func (a snapshotAudit) PutCheckpoint(context.Context, sekisho.Checkpoint) error {
	return sekisho.Errorf(sekisho.EInvalid, "postgres: a snapshot is read-only")
}

func (a snapshotAudit) Checkpoints(ctx context.Context) ([]sekisho.Checkpoint, error) {
	return checkpoints(ctx, a.q)
}
