package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sekisho/sekisho"
)

// audit_entries is partitioned by month of event_time (migration 4): one
// partition a month, audit_entries_YYYY_MM, over [the month's first
// instant, the next month's) in UTC, and, in a database migrated with
// events, audit_entries_before over every time before the month after its
// latest event. A scope of one week prunes to one or two partitions, and
// a closed month can be clustered by principal (ClusterAuditMonth) so that
// a principal's events of a week sit on a few pages instead of one page in
// four of the month's heap (docs/scope-at-scale.md, design items 1 and 3).
//
// The store makes the partitions of this month and the next when it opens
// (PrepareAuditMonths), and an append whose event falls in a month without
// one makes it and retries. There is no DEFAULT partition: an event it held
// would stop the partition of its month from being attached later.

// beforePartition holds the events of a database migrated with events:
// every time before the month after the latest of them.
const beforePartition = "audit_entries_before"

// partitionLock is the advisory lock that serialises making partitions
// between the nodes of one database (an arbitrary constant: "sekisho"
// in ASCII, then "ap").
const partitionLock int64 = 0x73656b6973686f61

// monthStart returns the first instant of t's month in UTC.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// partitionName is the name of the partition of the month starting at m.
func partitionName(m time.Time) string {
	return fmt.Sprintf("audit_entries_%04d_%02d", m.Year(), int(m.Month()))
}

// boundLiteral writes the month start m as a TIMESTAMPTZ literal; years
// before 1 as BC (year 0 is 1 BC), which RFC 3339 cannot say.
func boundLiteral(m time.Time) string {
	if y := m.Year(); y < 1 {
		return fmt.Sprintf("%04d-%02d-01 00:00:00+00 BC", 1-y, int(m.Month()))
	}
	return m.Format(time.RFC3339)
}

// PrepareAuditMonths makes the audit log's partitions of every month from
// since's to until's, both included, where none holds them yet (a month
// before the partitioning of a migrated log is held by
// audit_entries_before). Open prepares this month and the next; an
// operator or a loader of old events prepares the months it needs.
func (s *Store) PrepareAuditMonths(ctx context.Context, since, until time.Time) error {
	if until.Before(since) {
		return sekisho.Errorf(sekisho.EInvalid, "postgres: audit months from %s to %s: the end is before the start", since.UTC().Format("2006-01"), until.UTC().Format("2006-01"))
	}
	for m := monthStart(since); !m.After(until); m = m.AddDate(0, 1, 0) {
		if err := s.prepareMonth(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// prepareMonth makes the partition of the month starting at m: a table
// like audit_entries, then ATTACHed, which takes audit_entries' SHARE
// UPDATE EXCLUSIVE lock (appends and reads go on; CREATE TABLE ...
// PARTITION OF would take ACCESS EXCLUSIVE and wait behind every read).
func (s *Store) prepareMonth(ctx context.Context, m time.Time) error {
	name := partitionName(m)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, partitionLock); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'audit_entries'::regclass AND c.relname = $1)`, name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		// A month before the partitioning of a migrated log is held by
		// audit_entries_before (migration 5 says up to when; its bound is
		// a month start, so it holds whole months).
		var beforeUntil time.Time
		err := tx.QueryRow(ctx, `SELECT before_until FROM audit_partitioning WHERE one`).Scan(&beforeUntil)
		if err == nil && m.Before(beforeUntil) {
			return nil
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		id := pgx.Identifier{name}.Sanitize()
		if _, err := tx.Exec(ctx, `CREATE TABLE `+id+` (LIKE audit_entries INCLUDING DEFAULTS)`); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE audit_entries ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`,
			id, boundLiteral(m), boundLiteral(m.AddDate(0, 1, 0))))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: make the audit partition %s: %w", name, err)
	}
	return nil
}

// noPartition reports whether err is an insert into audit_entries of an
// event whose month has no partition yet: a check violation on the table
// itself, of no constraint (by its fields, not by its message, which the
// server's lc_messages translates).
func noPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && pe.TableName == "audit_entries" && pe.ConstraintName == ""
}

// prepareEntryMonths makes the partitions of the months entries fall in.
func (s *Store) prepareEntryMonths(ctx context.Context, entries []sekisho.AuditEntry) error {
	done := map[time.Time]bool{}
	for _, e := range entries {
		m := monthStart(ts(e.Time))
		if done[m] {
			continue
		}
		done[m] = true
		if err := s.prepareMonth(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// Clustered says what ClusterAuditMonth did.
type Clustered struct {
	Partition string        `json:"partition"`
	Events    int64         `json:"events"`
	Bytes     int64         `json:"bytes"` // the partition's heap after
	Took      time.Duration `json:"took_ns"`
}

// ClusterAuditMonth rewrites the partition of the month starting at month
// in (principal, event_time, idx) order (CLUSTER on its part of
// audit_by_principal), so that the scope of one principal over a week of
// it reads a few pages instead of one in a few of the month's heap. The
// month must have ended an hour before now: an append into the month waits
// for the rewrite. CLUSTER holds the partition's ACCESS EXCLUSIVE lock
// (reads of that month, proofs and scopes over it wait; appends to other
// months do not) and needs the partition's size again in free disk. The
// events, their indexes and the Merkle tree do not change: only where the
// rows lie.
func (s *Store) ClusterAuditMonth(ctx context.Context, month, now time.Time) (Clustered, error) {
	m := monthStart(month)
	if end := m.AddDate(0, 1, 0); now.Before(end.Add(time.Hour)) {
		return Clustered{}, sekisho.Errorf(sekisho.EInvalid, "the month %s has not ended an hour ago (it ends %s): cluster a closed month", m.Format("2006-01"), end.Format(time.RFC3339))
	}
	c := Clustered{Partition: partitionName(m)}
	var index string
	err := s.pool.QueryRow(ctx, `SELECT c.relname FROM pg_inherits pi
		JOIN pg_class p ON p.oid = pi.inhrelid
		JOIN pg_index x ON x.indrelid = p.oid
		JOIN pg_inherits ii ON ii.inhrelid = x.indexrelid
		JOIN pg_class c ON c.oid = x.indexrelid
		WHERE pi.inhparent = 'audit_entries'::regclass AND p.relname = $1
		AND ii.inhparent = 'audit_by_principal'::regclass`, c.Partition).Scan(&index)
	if errors.Is(err, pgx.ErrNoRows) {
		return Clustered{}, sekisho.Errorf(sekisho.ENotFound, "the audit log has no partition of its own for %s (months before the partitioning are in %s, which is not clustered)", m.Format("2006-01"), beforePartition)
	}
	if err != nil {
		return Clustered{}, fmt.Errorf("postgres: find the partition of %s: %w", m.Format("2006-01"), err)
	}
	start := time.Now()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Waiting longer for the lock would hold every later read of the
		// month behind this CLUSTER in the lock queue.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
			return err
		}
		part := pgx.Identifier{c.Partition}.Sanitize()
		if _, err := tx.Exec(ctx, `CLUSTER `+part+` USING `+pgx.Identifier{index}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `ANALYZE `+part); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*), pg_relation_size($1::regclass) FROM `+part, c.Partition).Scan(&c.Events, &c.Bytes)
	})
	if lockNotAvailable(err) {
		return Clustered{}, sekisho.Errorf(sekisho.EUnavailable, "%s is being read or written: its lock did not come within 30 s; try again when it is quieter", c.Partition)
	}
	if err != nil {
		return Clustered{}, fmt.Errorf("postgres: cluster %s: %w", c.Partition, err)
	}
	c.Took = time.Since(start)
	return c, nil
}
