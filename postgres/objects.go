package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
)

// putVersioned writes a row guarded by its version: version 1 inserts (and
// conflicts with an existing row), version n > 1 updates the row at n-1.
// insert and update take the same arguments, the version being $3.
func (s *Store) putVersioned(ctx context.Context, version int64, insert, update string, args ...any) (bool, error) {
	if version < 1 {
		return false, nil
	}
	q := update
	if version == 1 {
		q = insert
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// PutSchema implements sekisho.SchemaStore. The schema is kept as the JSON
// of sekisho.Schema; the version is also a column, the one that is checked.
func (s *Store) PutSchema(ctx context.Context, sc *sekisho.Schema) error {
	body, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("postgres: encode schema %s: %w", sc.Collection, err)
	}
	ok, err := s.putVersioned(ctx, sc.Version,
		`INSERT INTO schemas (collection, body, version) VALUES ($1, $2, $3) ON CONFLICT (collection) DO NOTHING`,
		`UPDATE schemas SET body = $2, version = $3 WHERE collection = $1 AND version = $3 - 1`,
		sc.Collection, body, sc.Version)
	if err != nil {
		return wrap(err, fmt.Sprintf("schema %s changed concurrently", sc.Collection), "put schema")
	}
	if !ok {
		return sekisho.Errorf(sekisho.EConflict, "schema %s is not at version %d", sc.Collection, sc.Version-1)
	}
	return nil
}

// GetSchema implements sekisho.SchemaStore.
func (s *Store) GetSchema(ctx context.Context, collection string) (*sekisho.Schema, error) {
	rows, err := s.pool.Query(ctx, `SELECT body, version FROM schemas WHERE collection = $1`, collection)
	if err != nil {
		return nil, fmt.Errorf("postgres: get schema: %w", err)
	}
	list, err := collectSchemas(rows)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, sekisho.Errorf(sekisho.ENotFound, "no collection %s", collection)
	}
	return list[0], nil
}

// ListSchemas implements sekisho.SchemaStore, in collection order.
func (s *Store) ListSchemas(ctx context.Context) ([]*sekisho.Schema, error) {
	rows, err := s.pool.Query(ctx, `SELECT body, version FROM schemas ORDER BY collection`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list schemas: %w", err)
	}
	return collectSchemas(rows)
}

func collectSchemas(rows pgx.Rows) ([]*sekisho.Schema, error) {
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*sekisho.Schema, error) {
		var body []byte
		var version int64
		if err := row.Scan(&body, &version); err != nil {
			return nil, err
		}
		var sc sekisho.Schema
		if err := json.Unmarshal(body, &sc); err != nil {
			return nil, fmt.Errorf("decode schema: %w", err)
		}
		sc.Version = version
		return &sc, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read schemas: %w", err)
	}
	return out, nil
}

// PutObject implements sekisho.ObjectStore.
func (s *Store) PutObject(ctx context.Context, o *sekisho.Object) error {
	body := o.Body
	if body == nil {
		body = []byte{}
	}
	ok, err := s.putVersioned(ctx, o.Version,
		`INSERT INTO objects (kind, id, version, org, body, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, id) DO NOTHING`,
		`UPDATE objects SET version = $3, org = $4, body = $5, updated_at = $6 WHERE kind = $1 AND id = $2 AND version = $3 - 1`,
		o.Kind, o.ID, o.Version, o.Org, body, ts(o.Updated))
	if err != nil {
		return wrap(err, fmt.Sprintf("%s %s changed concurrently", o.Kind, o.ID), "put object")
	}
	if !ok {
		if o.Version == 1 {
			return sekisho.Errorf(sekisho.EConflict, "%s %s exists", o.Kind, o.ID)
		}
		return sekisho.Errorf(sekisho.EConflict, "%s %s is not at version %d", o.Kind, o.ID, o.Version-1)
	}
	return nil
}

const objectColumns = `kind, id, org, version, body, updated_at`

func scanObject(row pgx.CollectableRow) (*sekisho.Object, error) {
	var o sekisho.Object
	var updated time.Time
	if err := row.Scan(&o.Kind, &o.ID, &o.Org, &o.Version, &o.Body, &updated); err != nil {
		return nil, err
	}
	o.Updated = updated.UTC()
	return &o, nil
}

// GetObject implements sekisho.ObjectStore.
func (s *Store) GetObject(ctx context.Context, kind, id string) (*sekisho.Object, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+objectColumns+` FROM objects WHERE kind = $1 AND id = $2`, kind, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: get object: %w", err)
	}
	o, err := pgx.CollectExactlyOneRow(rows, scanObject)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sekisho.Errorf(sekisho.ENotFound, "no %s %s", kind, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get object: %w", err)
	}
	return o, nil
}

// ListObjects implements sekisho.ObjectStore, in id order.
func (s *Store) ListObjects(ctx context.Context, kind, org string) ([]*sekisho.Object, error) {
	var rows pgx.Rows
	var err error
	if org == "" {
		rows, err = s.pool.Query(ctx, `SELECT `+objectColumns+` FROM objects WHERE kind = $1 ORDER BY id`, kind)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+objectColumns+` FROM objects WHERE kind = $1 AND org = $2 ORDER BY id`, kind, org)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: list objects: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanObject)
	if err != nil {
		return nil, fmt.Errorf("postgres: list objects: %w", err)
	}
	return out, nil
}

// DeleteObject implements sekisho.ObjectStore.
func (s *Store) DeleteObject(ctx context.Context, kind, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM objects WHERE kind = $1 AND id = $2`, kind, id)
	if err != nil {
		return fmt.Errorf("postgres: delete object: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return sekisho.Errorf(sekisho.ENotFound, "no %s %s", kind, id)
	}
	return nil
}
