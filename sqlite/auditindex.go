package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The audit indexer. Every audit event is durable in audit_events (its
// record ids and their orgs in the row's records and record_orgs lists)
// before the request that caused it is answered: that is the log. Finding
// a principal's, a device's, a record's or a record org's events is a
// search over it, and four of its indexes, audit_by_principal,
// audit_by_device, audit_records and audit_record_orgs, are kept here, in
// batches: every auditIndexInterval the indexer copies the events appended
// since audit_indexed.next into them in one transaction, and moves next on.
// From schema 8 on the index is a file of its own (auditindexfile.go): the
// indexer's transactions, a few hundred random audit_records pages each,
// used to hold the database's one writer for 10-20 ms four times a second,
// and every request waiting for its audit event waited for them too. An append keyed every index
// per event: with 16-64 callers each principal and device index's tail page
// was another page per caller in every group commit, and audit_records
// (keyed by record id, random by nature) took one random page per event,
// read first when not cached. A batch writes each tail page once and the
// record ids in key order.
//
// A query never misses an event that is not indexed yet: QueryAudit reads
// the indexed part from the index tables and the part from next on by a
// scan of the log's tail, in one statement (one read transaction, so next
// and the tables agree). If the indexer stops (an error, a read-only open),
// queries stay complete and only the tail they scan grows. Databases of
// schema 5 and before have audit_records and audit_record_orgs rows for
// every event, indexed or not; the indexer's INSERT OR IGNORE and the
// query's IN (a set) make those rows harmless.

// auditIndexInterval is how often the indexer runs.
const auditIndexInterval = 250 * time.Millisecond

// auditIndexBudget bounds one indexer transaction: each event costs the
// number of record ids it names (one audit_records row each), at least 1,
// and a transaction takes events while their costs sum to at most this (and
// at least one event, however many ids it names). A tick's events are
// indexed in one transaction at the hot read's rates (a few hundred to about
// a thousand events a tick): in BenchmarkHotReadWrites1M, transactions of
// 256 events saved no CPU against keying audit_records in each group
// commit, transactions of 1,024 or more about 30%. The budget bounds the
// transactions of a backlog (after a restart, or an import's events of
// thousands of record ids each), which the group writer's appends wait for.
const auditIndexBudget = 1024

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
			_, more, err := s.indexAudit(ctx, auditIndexBudget)
			if err != nil || !more {
				break
			}
			select {
			case <-s.quit:
				return
			default:
			}
		}
	}
}

// indexAudit indexes the events from audit_indexed.next on whose costs (see
// auditIndexBudget) sum to at most budget (at least one event), in one group
// transaction, and returns how many it indexed and whether more are left.
func (s *Store) indexAudit(ctx context.Context, budget int) (n int, more bool, err error) {
	tx, err := s.ixw.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, full(fmt.Errorf("sqlite: index audit events: %w", err))
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			n, more, err = 0, false, full(err)
		}
	}()
	var from, size int64
	if err := tx.QueryRowContext(ctx, `SELECT next FROM main.audit_indexed WHERE id = 0`).Scan(&from); err != nil {
		return 0, false, fmt.Errorf("sqlite: audit index position: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM log.audit_events`).Scan(&size); err != nil {
		return 0, false, fmt.Errorf("sqlite: audit size: %w", err)
	}
	if size <= from {
		return 0, false, tx.Rollback()
	}
	to, err := auditIndexEnd(ctx, tx, from, budget)
	if err != nil {
		return 0, false, err
	}
	for _, q := range []string{
		`INSERT OR IGNORE INTO main.audit_by_principal (principal, time, idx) SELECT principal, time, idx FROM log.audit_events WHERE idx >= ? AND idx < ? AND principal != ''`,
		`INSERT OR IGNORE INTO main.audit_by_device (device, time, idx) SELECT device, time, idx FROM log.audit_events WHERE idx >= ? AND idx < ? AND device != ''`,
		// In key order: each leaf page is found by a descent from
		// the one before and the pages near each other in the file
		// are written together.
		`INSERT OR IGNORE INTO main.audit_records (record, idx) SELECT j.value, e.idx FROM log.audit_events e, json_each(e.records) j WHERE e.idx >= ? AND e.idx < ? ORDER BY 1, 2`,
		`INSERT OR IGNORE INTO main.audit_record_orgs (org, idx) SELECT j.value, e.idx FROM log.audit_events e, json_each(e.record_orgs) j WHERE e.idx >= ? AND e.idx < ? ORDER BY 1, 2`,
	} {
		if _, err := tx.ExecContext(ctx, q, from, to); err != nil {
			return 0, false, fmt.Errorf("sqlite: index audit events: %w", err)
		}
	}
	// last is event to-1's leaf: Open checks that the index is this log's.
	if _, err := tx.ExecContext(ctx, `UPDATE main.audit_indexed SET next = ?, last = (SELECT leaf FROM log.audit_events WHERE idx = ?) WHERE id = 0`, to, to-1); err != nil {
		return 0, false, fmt.Errorf("sqlite: index audit events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("sqlite: index audit events: commit: %w", err)
	}
	return int(to - from), to < size, nil
}

// auditIndexEnd is the end (exclusive) of the events from from on whose
// costs sum to at most budget, at least one event.
func auditIndexEnd(ctx context.Context, tx *sql.Tx, from int64, budget int) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT idx, json_array_length(records) FROM log.audit_events WHERE idx >= ? ORDER BY idx LIMIT ?`, from, max(budget, 1))
	if err != nil {
		return 0, fmt.Errorf("sqlite: audit index batch: %w", err)
	}
	defer rows.Close()
	to, spent := from, 0
	for rows.Next() {
		var idx int64
		var k int
		if err := rows.Scan(&idx, &k); err != nil {
			return 0, fmt.Errorf("sqlite: audit index batch: %w", err)
		}
		if spent += max(k, 1); spent > budget && to > from {
			break
		}
		to = idx + 1
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: audit index batch: %w", err)
	}
	return to, nil
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
		` UNION ALL SELECT idx FROM audit_events WHERE idx >= max(?, (SELECT next FROM ix.audit_indexed WHERE id = 0)) AND ` + col + ` = ?` + tail + `)`
	all := append([]any{v, int64(from)}, args...)
	all = append(all, int64(from), v)
	return q, append(all, args...)
}

// auditListed is QueryAudit's condition for the events whose JSON list
// column list (records or record_orgs) holds v, from the index table tbl
// (key column col) for the indexed events and by a scan of the log's tail
// from audit_indexed.next on for the others.
func auditListed(tbl, col, list string, v string, from uint64) (string, []any) {
	q := `e.idx IN (SELECT idx FROM ` + tbl + ` WHERE ` + col + ` = ? AND idx >= ?` +
		` UNION ALL SELECT t.idx FROM audit_events t, json_each(t.` + list + `) j WHERE t.idx >= max(?, (SELECT next FROM ix.audit_indexed WHERE id = 0)) AND j.value = ?)`
	return q, []any{v, int64(from), int64(from), v}
}
