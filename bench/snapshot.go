package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A snapshot (-snapshot DIR) is the state right after the import, kept so
// that later runs of the same -records, -seed and store measure the server
// without importing again: a copy of the data directory, for PostgreSQL a
// template database in the same cluster, the master key, and what the
// workloads need of the generated records. The import figures of a run
// from a snapshot are those measured when the snapshot was taken.
type snapshot struct {
	Records   int           `json:"records"`
	Seed      uint64        `json:"seed"`
	Store     string        `json:"store"`              // "sqlite" or the PostgreSQL cluster's DSN without database
	Template  string        `json:"template,omitempty"` // PostgreSQL: the template database
	MasterKey string        `json:"master_key"`         // base64, as SEKISHO_MASTER_KEY
	Phones    []string      `json:"phones"`
	Bodies    [][]byte      `json:"bodies"`
	Import    *importResult `json:"import"`
	Commit    string        `json:"commit,omitempty"`
}

const snapshotFile = "snapshot.json"

// snapshotStore names the store a snapshot belongs to: "sqlite", or the
// cluster of a DSN (its database and query left out).
func snapshotStore(dsn string) string {
	if dsn == "" {
		return "sqlite"
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path, u.RawQuery = "", ""
	return u.Redacted()
}

// loadSnapshot reads dir's snapshot if there is one for these options
// (nil, nil if there is none; an error if there is one of other options).
func loadSnapshot(dir string, o options) (*snapshot, error) {
	b, err := os.ReadFile(filepath.Join(dir, snapshotFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("-snapshot %s: %w", dir, err)
	}
	if s.Records != o.records || s.Seed != o.seed || s.Store != snapshotStore(o.store) {
		return nil, fmt.Errorf("-snapshot %s holds %d records of seed %d on %s; this run asks %d records of seed %d on %s (use another directory)",
			dir, s.Records, s.Seed, s.Store, o.records, o.seed, snapshotStore(o.store))
	}
	return &s, nil
}

// saveSnapshot copies the data directory (and, for PostgreSQL, the run's
// database as a template) into dir and writes the snapshot file last.
func saveSnapshot(ctx context.Context, dir, data, dsn string, s *snapshot) error {
	if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
		return err
	}
	if err := copyDir(data, filepath.Join(dir, "data")); err != nil {
		return fmt.Errorf("snapshot the data directory: %w", err)
	}
	if dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil {
			return err
		}
		db := strings.TrimPrefix(u.Path, "/")
		s.Template = "snap_" + db
		if err := pgExec(ctx, dsn, "DROP DATABASE IF EXISTS "+pgx.Identifier{s.Template}.Sanitize(),
			"CREATE DATABASE "+pgx.Identifier{s.Template}.Sanitize()+" TEMPLATE "+pgx.Identifier{db}.Sanitize()); err != nil {
			return fmt.Errorf("snapshot the database: %w", err)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, snapshotFile), b, 0o600)
}

// restoreSnapshot fills the (empty) data directory from the snapshot and,
// for PostgreSQL, creates the run's database from the template.
func restoreSnapshot(ctx context.Context, dir, data, dsn string, s *snapshot) error {
	if err := copyDir(filepath.Join(dir, "data"), data); err != nil {
		return fmt.Errorf("restore the data directory: %w", err)
	}
	if dsn == "" {
		return nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	db := strings.TrimPrefix(u.Path, "/")
	return pgExec(ctx, dsn, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)",
		"CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+" TEMPLATE "+pgx.Identifier{s.Template}.Sanitize())
}

// pgExec runs statements on the cluster's postgres database (CREATE and
// DROP DATABASE cannot run in the database they name).
func pgExec(ctx context.Context, dsn string, stmts ...string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	u.Path = "/postgres"
	c, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	for _, q := range stmts {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// copyDir copies the regular files of src into dst (created), recursively.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		fi, err := in.Stat()
		if err != nil {
			return err
		}
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return fmt.Errorf("copy %s: %w", rel, err)
		}
		// On disk before the server starts: else the kernel writes the
		// copy back ~30 s later (dirty_expire), in the middle of the
		// workloads, and the first fsync of the file by anyone writes it
		// all, a latency no server at its steady state has.
		if err := out.Sync(); err != nil {
			out.Close()
			return fmt.Errorf("sync %s: %w", rel, err)
		}
		return out.Close()
	})
}
