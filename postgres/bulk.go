package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
)

var _ sekisho.BulkLoader = (*Store)(nil)

// A bulk load (sekisho import --data --store, which holds the data
// directory) COPYs the records and their blind-index entries, LoadParallel
// batches at once on separate connections. Record ids are time-ordered, so
// the records' indexes are appended to; the blind index takes random keys.
// When record_index is empty at BeginBulk (a first import), its indexes are
// dropped and EndBulk builds them once, by sorting: the primary key
// (collection, field, token, record_id: random keys) instead of millions of
// random B-tree inserts, and record_index_by_record instead of appends to
// one right-most page that every loading connection shares (and WAL-logs
// an entry at a time); so is records_live_by_org when records is empty.
// The records' primary key stays: it refuses a record stored twice. The
// table bulk_load says so until the indexes are built, and Open builds them
// if an import stopped before (so a server never runs without them). Into
// a record_index that holds entries already, the entries are COPYed in key
// order per batch and the indexes kept.
//
// Durability: the load's transactions commit with synchronous_commit=off:
// their WAL is written in order but flushed by the WAL writer, not by each
// commit. A crash of the server may lose the last commits (never one
// without those before it): a batch's audit event, committed before its
// records on the audit log's own path, survives whenever they do, and its
// mark (in the records' transaction) is lost with them, so the import run
// again writes that batch again, once. EndBulk ends with an ordinary
// (synchronous) commit, which flushes the WAL and so every commit of the
// load.
const createBulkLoad = `CREATE TABLE IF NOT EXISTS bulk_load (
	one             BOOL PRIMARY KEY CHECK (one),
	indexes_dropped BOOL NOT NULL
)`

// bulkState is a Store's bulk load in progress.
type bulkState struct {
	on      atomic.Bool // between BeginBulk and EndBulk: commits are asynchronous
	unkeyed atomic.Bool // and record_index's keys are dropped: entries go in unsorted
}

// BeginBulk implements sekisho.BulkLoader.
func (s *Store) BeginBulk(ctx context.Context) error {
	unkeyed := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		unkeyed = false
		if _, err := tx.Exec(ctx, createBulkLoad); err != nil {
			return err
		}
		var dropped *bool
		if err := tx.QueryRow(ctx, `SELECT indexes_dropped FROM bulk_load`).Scan(&dropped); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if dropped != nil {
			unkeyed = *dropped
			return nil // a load not finished (Open finishes one): keep its state
		}
		var emptyIndex, emptyRecords bool
		if err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM record_index), NOT EXISTS (SELECT 1 FROM records)`).Scan(&emptyIndex, &emptyRecords); err != nil {
			return err
		}
		if emptyIndex {
			if _, err := tx.Exec(ctx, `ALTER TABLE record_index DROP CONSTRAINT IF EXISTS record_index_pkey`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP INDEX IF EXISTS record_index_by_record`); err != nil {
				return err
			}
		}
		if emptyRecords {
			if _, err := tx.Exec(ctx, `DROP INDEX IF EXISTS records_live_by_org`); err != nil {
				return err
			}
		}
		unkeyed = emptyIndex
		_, err := tx.Exec(ctx, `INSERT INTO bulk_load (one, indexes_dropped) VALUES (true, $1)`, emptyIndex || emptyRecords)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: begin bulk: %w", err)
	}
	s.bulk.unkeyed.Store(unkeyed)
	s.bulk.on.Store(true)
	return nil
}

// EndBulk implements sekisho.BulkLoader: it builds the indexes BeginBulk
// dropped and returns once the whole load is durable.
func (s *Store) EndBulk(ctx context.Context) error {
	s.bulk.on.Store(false)
	s.bulk.unkeyed.Store(false)
	return s.finishBulk(ctx)
}

// finishBulk builds the indexes a bulk load dropped (record_index's primary
// key and record_index_by_record, records_live_by_org) and forgets the
// load, in one transaction with a synchronous commit.
func (s *Store) finishBulk(ctx context.Context) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass('bulk_load') IS NOT NULL`).Scan(&exists); err != nil || !exists {
			return err
		}
		var dropped bool
		if err := tx.QueryRow(ctx, `SELECT indexes_dropped FROM bulk_load FOR UPDATE`).Scan(&dropped); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		}
		if dropped {
			// Sorted in memory where it fits.
			if _, err := tx.Exec(ctx, `SET LOCAL maintenance_work_mem = '256MB'`); err != nil {
				return err
			}
			var pk bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'record_index_pkey' AND conrelid = 'record_index'::regclass)`).Scan(&pk); err != nil {
				return err
			}
			if !pk {
				if _, err := tx.Exec(ctx, `ALTER TABLE record_index ADD CONSTRAINT record_index_pkey PRIMARY KEY (collection, field, token, record_id)`); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `CREATE INDEX IF NOT EXISTS record_index_by_record ON record_index (collection, record_id)`); err != nil {
				return err
			}
			// As in the schema (migrate.go).
			if _, err := tx.Exec(ctx, `CREATE INDEX IF NOT EXISTS records_live_by_org ON records (collection, org, id) WHERE erased_at IS NULL`); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM bulk_load`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: finish bulk load: %w", err)
	}
	return nil
}

// LoadParallel implements sekisho.BulkLoader: batches are copied in on this
// many connections at once.
func (s *Store) LoadParallel() int { return min(4, max(2, int(s.pool.Config().MaxConns)/2)) }

// LoadRecords implements sekisho.BulkLoader: the records and their index
// entries by COPY, and the mark, in one transaction.
func (s *Store) LoadRecords(ctx context.Context, recs []*sekisho.SealedRecord, mark *sekisho.Object) error {
	return s.createRecords(ctx, recs, mark)
}

// putMark stores an import's batch mark, replacing any stored version.
func putMark(ctx context.Context, tx pgx.Tx, o *sekisho.Object) error {
	body := o.Body
	if body == nil {
		body = []byte{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO objects (kind, id, org, version, body, updated_at) VALUES ($1, $2, $3, 1, $4, $5)
		ON CONFLICT (kind, id) DO UPDATE SET org = EXCLUDED.org, version = objects.version + 1, body = EXCLUDED.body, updated_at = EXCLUDED.updated_at`,
		o.Kind, o.ID, o.Org, body, ts(o.Updated))
	if err != nil {
		return fmt.Errorf("postgres: put import mark: %w", err)
	}
	return nil
}
