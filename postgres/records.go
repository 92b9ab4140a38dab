package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
)

var (
	recordColumns = []string{"collection", "id", "org", "region", "kek_version", "wrapped_dek", "fields",
		"index_tokens", "honeytoken", "version", "created_at", "updated_at", "erased_at"}
	indexColumns = []string{"collection", "field", "token", "record_id"}
)

// CreateRecords implements sekisho.RecordStore. The rows are copied in (COPY
// FROM STDIN) in one transaction; a duplicate id fails the copy, and with it
// the transaction, so nothing is written.
func (s *Store) CreateRecords(ctx context.Context, recs []*sekisho.SealedRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.createRecords(ctx, recs, nil)
}

func (s *Store) createRecords(ctx context.Context, recs []*sekisho.SealedRecord, mark *sekisho.Object) error {
	seen := make(map[[2]string]bool, len(recs))
	rows := make([][]any, len(recs))
	for i, r := range recs {
		if r.WrappedDEK == nil {
			return sekisho.Errorf(sekisho.EInvalid, "record %s/%s has no wrapped data key", r.Collection, r.ID)
		}
		key := [2]string{r.Collection, r.ID}
		if seen[key] {
			return sekisho.Errorf(sekisho.EConflict, "record %s/%s appears twice in the batch", r.Collection, r.ID)
		}
		seen[key] = true
		rows[i] = []any{r.Collection, r.ID, r.Org, r.Region, r.KEKVersion, r.WrappedDEK, sekisho.EncodeFields(r.Fields),
			sekisho.EncodeFields(r.Index), r.Honeytoken, r.Version, ts(r.CreatedAt), ts(r.UpdatedAt), nullTS(r.ErasedAt)}
	}
	bulk := s.bulk.on.Load()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if bulk {
			// See bulk.go: EndBulk's commit makes the load durable.
			if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return err
			}
		}
		if len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"records"}, recordColumns, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
			if err := insertIndex(ctx, tx, recs, !bulk || !s.bulk.unkeyed.Load()); err != nil {
				return err
			}
		}
		if mark != nil {
			return putMark(ctx, tx, mark)
		}
		return nil
	})
	if len(recs) == 1 {
		return wrap(err, fmt.Sprintf("record %s/%s exists", recs[0].Collection, recs[0].ID), "create records")
	}
	return wrap(err, "a record of the batch exists", "create records")
}

// insertIndex copies in the blind index entries of recs, in key order
// (collection, field, token, id) when record_index has its keys: the index's
// B-tree pages are then visited in order within a batch rather than at
// random. During a first bulk load (the keys dropped, built by sorting at
// its end) they go in as they come.
func insertIndex(ctx context.Context, tx pgx.Tx, recs []*sekisho.SealedRecord, sorted bool) error {
	type entry struct {
		collection, field string
		token             []byte
		id                string
	}
	var entries []entry
	for _, r := range recs {
		for field, token := range r.Index {
			entries = append(entries, entry{r.Collection, field, token, r.ID})
		}
	}
	if len(entries) == 0 {
		return nil
	}
	if sorted {
		slices.SortFunc(entries, func(a, b entry) int {
			return cmp.Or(strings.Compare(a.collection, b.collection), strings.Compare(a.field, b.field),
				bytes.Compare(a.token, b.token), strings.Compare(a.id, b.id))
		})
	}
	row := make([]any, 4) // pgx encodes a row before it asks for the next
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"record_index"}, indexColumns, pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
		e := &entries[i]
		row[0], row[1], row[2], row[3] = e.collection, e.field, e.token, e.id
		return row, nil
	}))
	return err
}

// GetRecords implements sekisho.RecordStore.
func (s *Store) GetRecords(ctx context.Context, collection string, ids []string) ([]*sekisho.SealedRecord, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, org, region, kek_version, wrapped_dek, fields, index_tokens,
		honeytoken, version, created_at, updated_at, erased_at
		FROM records WHERE collection = $1 AND id = ANY($2)`, collection, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: get records: %w", err)
	}
	byID := make(map[string]*sekisho.SealedRecord, len(ids))
	for rows.Next() {
		r := &sekisho.SealedRecord{Collection: collection}
		var fields, index []byte
		var created, updated time.Time
		var erased *time.Time
		if err := rows.Scan(&r.ID, &r.Org, &r.Region, &r.KEKVersion, &r.WrappedDEK, &fields, &index,
			&r.Honeytoken, &r.Version, &created, &updated, &erased); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: get records: %w", err)
		}
		r.CreatedAt, r.UpdatedAt, r.ErasedAt = created.UTC(), updated.UTC(), utc(erased)
		if r.Fields, err = sekisho.DecodeFields(fields, nil); err != nil {
			rows.Close()
			return nil, fmt.Errorf("record %s/%s fields: %w", collection, r.ID, err)
		}
		if r.Index, err = sekisho.DecodeFields(index, nil); err != nil {
			rows.Close()
			return nil, fmt.Errorf("record %s/%s index: %w", collection, r.ID, err)
		}
		byID[r.ID] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: get records: %w", err)
	}
	out := make([]*sekisho.SealedRecord, 0, len(byID))
	for _, id := range ids {
		if r, ok := byID[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

var _ sekisho.RecordLocator = (*Store)(nil)

// LocateRecords implements sekisho.RecordLocator: GetRecords's query
// without the ciphertexts.
func (s *Store) LocateRecords(ctx context.Context, collection string, ids []string) ([]sekisho.RecordPlace, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, org, region, wrapped_dek IS NULL FROM records WHERE collection = $1 AND id = ANY($2)`, collection, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: locate records: %w", err)
	}
	byID := make(map[string]sekisho.RecordPlace, len(ids))
	var p sekisho.RecordPlace
	_, err = pgx.ForEachRow(rows, []any{&p.ID, &p.Org, &p.Region, &p.Erased}, func() error {
		byID[p.ID] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: locate records: %w", err)
	}
	return sekisho.PlacesAsked(ids, byID), nil
}

// UpdateRecord implements sekisho.RecordStore. The version check and the
// write are one UPDATE, so of two updates from the same version one matches
// no row; a second look then tells a conflict from a missing or erased record.
func (s *Store) UpdateRecord(ctx context.Context, r *sekisho.SealedRecord) error {
	if r.WrappedDEK == nil {
		return sekisho.Errorf(sekisho.EInvalid, "update of record %s/%s has no wrapped data key", r.Collection, r.ID)
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE records SET kek_version = $3, wrapped_dek = $4, fields = $5,
			index_tokens = $6, version = $7, updated_at = $8
			WHERE collection = $1 AND id = $2 AND version = $7 - 1 AND erased_at IS NULL`,
			r.Collection, r.ID, r.KEKVersion, r.WrappedDEK, sekisho.EncodeFields(r.Fields), sekisho.EncodeFields(r.Index), r.Version, ts(r.UpdatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return s.whyNot(ctx, tx, r.Collection, r.ID, fmt.Sprintf("record %s/%s changed since version %d", r.Collection, r.ID, r.Version-1))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM record_index WHERE collection = $1 AND record_id = $2`, r.Collection, r.ID); err != nil {
			return err
		}
		return insertIndex(ctx, tx, []*sekisho.SealedRecord{r}, true)
	})
	return wrap(err, fmt.Sprintf("record %s/%s changed concurrently", r.Collection, r.ID), "update record")
}

// whyNot explains why a conditional write to a live record matched no row:
// the record is missing (ENotFound), erased (EGone) or else changed (conflict).
func (s *Store) whyNot(ctx context.Context, tx pgx.Tx, collection, id, conflict string) error {
	var erased *time.Time
	err := tx.QueryRow(ctx, `SELECT erased_at FROM records WHERE collection = $1 AND id = $2`, collection, id).Scan(&erased)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return sekisho.Errorf(sekisho.ENotFound, "no record %s/%s", collection, id)
	case err != nil:
		return err
	case erased != nil:
		return sekisho.Errorf(sekisho.EGone, "record %s/%s was erased", collection, id)
	}
	return sekisho.Errorf(sekisho.EConflict, "%s", conflict)
}

// EraseRecord implements sekisho.RecordStore. The tombstone keeps the id,
// org, region and creation time; the erasure time becomes ErasedAt and
// UpdatedAt, and the version grows by one.
func (s *Store) EraseRecord(ctx context.Context, collection, id string, at time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE records SET wrapped_dek = NULL, fields = NULL, index_tokens = NULL,
			erased_at = $3, updated_at = $3, version = version + 1
			WHERE collection = $1 AND id = $2 AND erased_at IS NULL`, collection, id, ts(at))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return s.whyNot(ctx, tx, collection, id, "record changed concurrently")
		}
		_, err = tx.Exec(ctx, `DELETE FROM record_index WHERE collection = $1 AND record_id = $2`, collection, id)
		return err
	})
	return wrap(err, "record changed concurrently", "erase record")
}

// Lookup implements sekisho.RecordStore; ids come in id order.
func (s *Store) Lookup(ctx context.Context, collection, field string, token []byte, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.ids(ctx, "lookup", `SELECT record_id FROM record_index
		WHERE collection = $1 AND field = $2 AND token = $3 ORDER BY record_id LIMIT $4`,
		collection, field, token, limit)
}

// CountRecords implements sekisho.RecordStore.
func (s *Store) CountRecords(ctx context.Context, collection, org string) (int64, error) {
	var n int64
	var err error
	if org == "" {
		err = s.pool.QueryRow(ctx, `SELECT count(*) FROM records WHERE collection = $1 AND erased_at IS NULL`, collection).Scan(&n)
	} else {
		err = s.pool.QueryRow(ctx, `SELECT count(*) FROM records WHERE collection = $1 AND org = $2 AND erased_at IS NULL`, collection, org).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: count records: %w", err)
	}
	return n, nil
}

// CountRecordsByPlace implements sekisho.RecordStore.
func (s *Store) CountRecordsByPlace(ctx context.Context, collection string, createdBefore time.Time) ([]sekisho.PlaceCount, error) {
	var before *time.Time
	if !createdBefore.IsZero() {
		b := createdBefore.UTC()
		before = &b
	}
	rows, err := s.pool.Query(ctx, `SELECT org, region, count(*) FROM records
		WHERE collection = $1 AND erased_at IS NULL AND ($2::timestamptz IS NULL OR created_at < $2)
		GROUP BY org, region ORDER BY org, region`, collection, before)
	if err != nil {
		return nil, fmt.Errorf("postgres: count records by place: %w", err)
	}
	defer rows.Close()
	out := []sekisho.PlaceCount{}
	for rows.Next() {
		var c sekisho.PlaceCount
		if err := rows.Scan(&c.Org, &c.Region, &c.Records); err != nil {
			return nil, fmt.Errorf("postgres: count records by place: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: count records by place: %w", err)
	}
	return out, nil
}

// ListRecordIDs implements sekisho.RecordStore.
func (s *Store) ListRecordIDs(ctx context.Context, collection, org, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	if org == "" {
		return s.ids(ctx, "list records", `SELECT id FROM records
			WHERE collection = $1 AND id > $2 AND erased_at IS NULL ORDER BY id LIMIT $3`, collection, after, limit)
	}
	return s.ids(ctx, "list records", `SELECT id FROM records
		WHERE collection = $1 AND org = $2 AND id > $3 AND erased_at IS NULL ORDER BY id LIMIT $4`, collection, org, after, limit)
}

// ids runs a query of one text column.
func (s *Store) ids(ctx context.Context, what, query string, args ...any) ([]string, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return out, nil
}

// RewrapRecords implements sekisho.RecordStore: one transaction, each record
// changed only if its version is still the one read and it is not erased.
func (s *Store) RewrapRecords(ctx context.Context, rs []sekisho.Rewrap) ([]bool, error) {
	done := make([]bool, len(rs))
	err := s.tx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, r := range rs {
			b.Queue(`UPDATE records SET kek_version = $3, wrapped_dek = $4, version = version + 1, updated_at = $5
				WHERE collection = $1 AND id = $2 AND version = $6 AND erased_at IS NULL`,
				r.Collection, r.ID, r.KEKVersion, r.WrappedDEK, ts(r.UpdatedAt), r.Version)
		}
		br := tx.SendBatch(ctx, b)
		for i := range rs {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			done[i] = tag.RowsAffected() == 1
		}
		return br.Close()
	})
	if err != nil {
		return nil, wrap(err, "re-wrap records", "re-wrap records")
	}
	return done, nil
}
