package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"

	"github.com/sekisho/sekisho"
)

var _ sekisho.BulkLoader = (*Store)(nil)

// A bulk load (sekisho import --data, which holds the data directory's
// lock) writes the records table as usual (record ids are time-ordered, so
// records_id, records_org and lookup_index_record are appended to) but
// appends the blind-index entries, whose keys are HMACs and so random, to
// lookup_stage, a plain table with no index. EndBulk moves them into
// lookup_index in key order, one sorted pass instead of millions of random
// B-tree inserts. Open finishes a bulk load that was interrupted, so a
// server never serves with entries missing from lookup_index.
const (
	createStage = `CREATE TABLE IF NOT EXISTS lookup_stage (
	collection TEXT NOT NULL,
	field      TEXT NOT NULL,
	token      BLOB NOT NULL,
	id         TEXT NOT NULL
)`
	// bulkCache is the writer's page cache during a bulk load (KiB); after
	// it, the Store's own (Options.CacheMiB).
	bulkCache = 512 << 10
)

// BeginBulk implements sekisho.BulkLoader.
func (s *Store) BeginBulk(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, createStage); err != nil {
		return fmt.Errorf("sqlite: begin bulk: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", bulkCache)); err != nil {
		return fmt.Errorf("sqlite: begin bulk: %w", err)
	}
	s.bulk.Store(true)
	return nil
}

// EndBulk implements sekisho.BulkLoader.
func (s *Store) EndBulk(ctx context.Context) error {
	err := s.finishBulk(ctx)
	s.bulk.Store(false)
	if _, e := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", s.cacheKiB)); err == nil && e != nil {
		err = fmt.Errorf("sqlite: end bulk: %w", e)
	}
	return err
}

// finishBulk moves the staged index entries into lookup_index, sorted, and
// drops the stage, in one transaction.
func (s *Store) finishBulk(ctx context.Context) error {
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'lookup_stage'`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: finish bulk: %w", err)
	}
	if n == 0 {
		return nil
	}
	// Let SQLite's sorter use every core for the ORDER BY (worker threads
	// of the one writing connection), then return to the default.
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA threads = %d", runtime.GOMAXPROCS(0))); err != nil {
		return fmt.Errorf("sqlite: finish bulk: %w", err)
	}
	defer s.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA threads = 0")
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO lookup_index (collection, field, token, id)
			SELECT collection, field, token, id FROM lookup_stage ORDER BY collection, field, token, id`); err != nil {
			return fmt.Errorf("sqlite: build lookup index: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE lookup_stage`); err != nil {
			return fmt.Errorf("sqlite: drop lookup stage: %w", err)
		}
		return nil
	})
}

// LoadParallel implements sekisho.BulkLoader: SQLite has one writer.
func (s *Store) LoadParallel() int { return 1 }

// LoadRecords implements sekisho.BulkLoader.
func (s *Store) LoadRecords(ctx context.Context, recs []*sekisho.SealedRecord, mark *sekisho.Object) error {
	return s.createRecords(ctx, recs, mark)
}

// putMark stores an import's batch mark, replacing any stored version.
func putMark(ctx context.Context, tx *sql.Tx, o *sekisho.Object) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO objects (kind, id, org, version, body, updated) VALUES (?,?,?,1,?,?)
		ON CONFLICT (kind, id) DO UPDATE SET org = excluded.org, version = objects.version + 1, body = excluded.body, updated = excluded.updated`,
		o.Kind, o.ID, o.Org, o.Body, micros(o.Updated))
	if err != nil {
		return fmt.Errorf("sqlite: put import mark: %w", err)
	}
	return nil
}
