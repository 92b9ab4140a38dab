package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
)

var _ sekisho.BulkLoader = (*Store)(nil)

// BeginBulk implements sekisho.BulkLoader. PostgreSQL keeps its indexes as
// it goes: record ids are time-ordered, so the records' primary key is
// appended to; the blind index takes random keys, which PostgreSQL's larger
// shared buffers absorb. The speed comes from COPY and from LoadParallel
// batches committing at once on separate connections.
func (s *Store) BeginBulk(context.Context) error { return nil }

// EndBulk implements sekisho.BulkLoader.
func (s *Store) EndBulk(context.Context) error { return nil }

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
