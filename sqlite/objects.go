package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sekisho/sekisho"
)

// PutSchema implements sekisho.SchemaStore.
func (s *Store) PutSchema(ctx context.Context, sc *sekisho.Schema) error {
	body, err := json.Marshal(sc)
	if err != nil {
		return fmt.Errorf("sqlite: encode schema: %w", err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var v int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM schemas WHERE collection = ?`, sc.Collection).Scan(&v)
		if err != nil && err != sql.ErrNoRows {
			return fmt.Errorf("sqlite: read schema: %w", err)
		}
		if sc.Version != v+1 {
			return sekisho.Errorf(sekisho.EConflict, "schema %s is at version %d; a change must carry version %d", sc.Collection, v, v+1)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schemas (collection, version, body) VALUES (?,?,?)
			ON CONFLICT (collection) DO UPDATE SET version = excluded.version, body = excluded.body`, sc.Collection, sc.Version, body); err != nil {
			return fmt.Errorf("sqlite: put schema: %w", err)
		}
		return nil
	})
}

// GetSchema implements sekisho.SchemaStore.
func (s *Store) GetSchema(ctx context.Context, collection string) (*sekisho.Schema, error) {
	var body []byte
	err := s.r.QueryRowContext(ctx, `SELECT body FROM schemas WHERE collection = ?`, collection).Scan(&body)
	if err == sql.ErrNoRows {
		return nil, sekisho.Errorf(sekisho.ENotFound, "collection %s not found", collection)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get schema: %w", err)
	}
	var sc sekisho.Schema
	if err := json.Unmarshal(body, &sc); err != nil {
		return nil, fmt.Errorf("sqlite: decode schema %s: %w", collection, err)
	}
	return &sc, nil
}

// ListSchemas implements sekisho.SchemaStore.
func (s *Store) ListSchemas(ctx context.Context) ([]*sekisho.Schema, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT body FROM schemas ORDER BY collection`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list schemas: %w", err)
	}
	defer rows.Close()
	var out []*sekisho.Schema
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("sqlite: list schemas: %w", err)
		}
		var sc sekisho.Schema
		if err := json.Unmarshal(body, &sc); err != nil {
			return nil, fmt.Errorf("sqlite: decode schema: %w", err)
		}
		out = append(out, &sc)
	}
	return out, rows.Err()
}

// PutObject implements sekisho.ObjectStore.
func (s *Store) PutObject(ctx context.Context, o *sekisho.Object) error {
	if o.Updated.IsZero() {
		o.Updated = time.Now().UTC()
	}
	// Through the group writer: the guard saves its profiles every second
	// beside the hot path's audit appends; grouped, they share those
	// commits instead of taking the writer for a sync of their own each.
	return s.grouped(ctx, func(tx *sql.Tx) error {
		var v int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM objects WHERE kind = ? AND id = ?`, o.Kind, o.ID).Scan(&v)
		if err != nil && err != sql.ErrNoRows {
			return fmt.Errorf("sqlite: read object: %w", err)
		}
		if o.Version != v+1 {
			return sekisho.Errorf(sekisho.EConflict, "%s %s is at version %d; a change must carry version %d", o.Kind, o.ID, v, v+1)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO objects (kind, id, org, version, body, updated) VALUES (?,?,?,?,?,?)
			ON CONFLICT (kind, id) DO UPDATE SET org = excluded.org, version = excluded.version, body = excluded.body, updated = excluded.updated`,
			o.Kind, o.ID, o.Org, o.Version, o.Body, micros(o.Updated)); err != nil {
			return fmt.Errorf("sqlite: put object: %w", err)
		}
		return nil
	})
}

// GetObject implements sekisho.ObjectStore.
func (s *Store) GetObject(ctx context.Context, kind, id string) (*sekisho.Object, error) {
	o := &sekisho.Object{Kind: kind, ID: id}
	var updated int64
	// Prepared once: the authenticator's and the guard's state lookups
	// come here whenever their caches expire, hundreds of times a second
	// under load.
	st, err := s.prep(ctx, s.r, `SELECT org, version, body, updated FROM objects WHERE kind = ? AND id = ?`)
	if err != nil {
		return nil, err
	}
	err = st.QueryRowContext(ctx, kind, id).Scan(&o.Org, &o.Version, &o.Body, &updated)
	if err == sql.ErrNoRows {
		return nil, sekisho.Errorf(sekisho.ENotFound, "%s %s not found", kind, id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get object: %w", err)
	}
	o.Updated = fromMicros(updated)
	return o, nil
}

// ListObjects implements sekisho.ObjectStore.
func (s *Store) ListObjects(ctx context.Context, kind, org string) ([]*sekisho.Object, error) {
	var rows *sql.Rows
	var err error
	if org == "" {
		rows, err = s.r.QueryContext(ctx, `SELECT id, org, version, body, updated FROM objects WHERE kind = ? ORDER BY id`, kind)
	} else {
		rows, err = s.r.QueryContext(ctx, `SELECT id, org, version, body, updated FROM objects WHERE kind = ? AND org = ? ORDER BY id`, kind, org)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list objects: %w", err)
	}
	defer rows.Close()
	var out []*sekisho.Object
	for rows.Next() {
		o := &sekisho.Object{Kind: kind}
		var updated int64
		if err := rows.Scan(&o.ID, &o.Org, &o.Version, &o.Body, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: list objects: %w", err)
		}
		o.Updated = fromMicros(updated)
		out = append(out, o)
	}
	return out, rows.Err()
}

// DeleteObject implements sekisho.ObjectStore.
func (s *Store) DeleteObject(ctx context.Context, kind, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM objects WHERE kind = ? AND id = ?`, kind, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete object: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return sekisho.Errorf(sekisho.ENotFound, "%s %s not found", kind, id)
	}
	return nil
}
