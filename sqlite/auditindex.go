package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The audit indexer. Every audit event is durable in audit_events (and its
// record ids in audit_records) before the request that caused it is
// answered: that is the log. Finding a principal's or a device's events is
// a search over it, and its two indexes, audit_by_principal and
// audit_by_device, are kept here, in batches: every auditIndexInterval the
// indexer copies the events appended since audit_indexed.next into them in
// one group transaction (shared with the appends waiting then), and moves
// next on. An append keyed every index per event, and with 16-64 callers
// each index's tail page was another page per caller in every group commit;
// a batch of a few hundred events writes each tail page once.
//
// A query never misses an event that is not indexed yet: QueryAudit reads
// the indexed part from the index tables and the part from next on by a
// scan of the log's tail, in one statement (one read transaction, so next
// and the tables agree). If the indexer stops (an error, a read-only open),
// queries stay complete and only the tail they scan grows.

// auditIndexInterval is how often the indexer runs.
const auditIndexInterval = 250 * time.Millisecond

// auditIndexChunk is the most events one indexer transaction indexes.
const auditIndexChunk = 20000

func (s *Store) auditIndexer() {
	defer close(s.idxDone)
	t := time.NewTicker(auditIndexInterval)
	defer t.Stop()
	ctx := context.Background()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		// A failed run (a full disk) is retried at the next tick; the
		// events stay found by the tail scan meanwhile.
		for {
			n, err := s.indexAudit(ctx, auditIndexChunk)
			if err != nil || n < auditIndexChunk {
				break
			}
		}
	}
}

// indexAudit indexes up to limit events from audit_indexed.next on, in one
// group transaction, and returns how many it indexed.
func (s *Store) indexAudit(ctx context.Context, limit int) (int, error) {
	var n int
	err := s.grouped(ctx, func(tx *sql.Tx) error {
		var from, size int64
		if err := tx.QueryRowContext(ctx, `SELECT next FROM audit_indexed WHERE id = 0`).Scan(&from); err != nil {
			return fmt.Errorf("sqlite: audit index position: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM audit_events`).Scan(&size); err != nil {
			return fmt.Errorf("sqlite: audit size: %w", err)
		}
		to := min(size, from+int64(limit))
		if to <= from {
			n = 0
			return nil
		}
		for _, q := range []string{
			`INSERT OR IGNORE INTO audit_by_principal (principal, time, idx) SELECT principal, time, idx FROM audit_events WHERE idx >= ? AND idx < ? AND principal != ''`,
			`INSERT OR IGNORE INTO audit_by_device (device, time, idx) SELECT device, time, idx FROM audit_events WHERE idx >= ? AND idx < ? AND device != ''`,
		} {
			if _, err := tx.ExecContext(ctx, q, from, to); err != nil {
				return fmt.Errorf("sqlite: index audit events: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE audit_indexed SET next = ? WHERE id = 0`, to); err != nil {
			return fmt.Errorf("sqlite: index audit events: %w", err)
		}
		n = int(to - from)
		return nil
	})
	return n, err
}

// auditKeyed is QueryAudit's condition for the events whose column col
// (principal or device) is v, with the time window and the first index of
// the query pushed into both halves: the indexed events from the index
// table tbl, the ones from audit_indexed.next on from the log's tail.
func auditKeyed(tbl, col string, v string, from uint64, since, until time.Time) (string, []any) {
	// The tail's time terms are written +time so that SQLite scans the
	// tail by idx rather than the window by the time index.
	var cond, tail string
	var args []any
	if !since.IsZero() {
		cond, tail = cond+` AND time >= ?`, tail+` AND +time >= ?`
		args = append(args, micros(since))
	}
	if !until.IsZero() {
		cond, tail = cond+` AND time < ?`, tail+` AND +time < ?`
		args = append(args, micros(until))
	}
	q := `e.idx IN (SELECT idx FROM ` + tbl + ` WHERE ` + col + ` = ? AND idx >= ?` + cond +
		` UNION ALL SELECT idx FROM audit_events WHERE idx >= max(?, (SELECT next FROM audit_indexed WHERE id = 0)) AND ` + col + ` = ?` + tail + `)`
	all := append([]any{v, int64(from)}, args...)
	all = append(all, int64(from), v)
	return q, append(all, args...)
}
