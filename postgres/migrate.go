package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are applied in order; migration i has version i+1. Never edit
// one that has shipped: add another.
var migrations = []string{
	1: `
CREATE TABLE records (
	collection   TEXT COLLATE "C" NOT NULL,
	id           TEXT COLLATE "C" NOT NULL,
	org          TEXT NOT NULL,
	region       TEXT NOT NULL,
	kek_version  INT NOT NULL,
	wrapped_dek  BYTEA,
	fields       BYTEA,
	index_tokens BYTEA,
	honeytoken   BOOL NOT NULL,
	version      BIGINT NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL,
	erased_at    TIMESTAMPTZ,
	PRIMARY KEY (collection, id)
);
CREATE INDEX records_live_by_org ON records (collection, org, id) WHERE erased_at IS NULL;
CREATE TABLE record_index (
	collection TEXT COLLATE "C" NOT NULL,
	field      TEXT COLLATE "C" NOT NULL,
	token      BYTEA NOT NULL,
	record_id  TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (collection, field, token, record_id)
);
CREATE INDEX record_index_by_record ON record_index (collection, record_id);
CREATE TABLE schemas (
	collection TEXT COLLATE "C" PRIMARY KEY,
	version    BIGINT NOT NULL,
	body       BYTEA NOT NULL
);
CREATE TABLE objects (
	kind       TEXT COLLATE "C" NOT NULL,
	id         TEXT COLLATE "C" NOT NULL,
	org        TEXT NOT NULL,
	version    BIGINT NOT NULL,
	body       BYTEA NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX objects_by_org ON objects (kind, org, id);
CREATE TABLE audit_head (
	one  BOOL PRIMARY KEY CHECK (one),
	size BIGINT NOT NULL
);
INSERT INTO audit_head (one, size) VALUES (true, 0);
CREATE TABLE audit_entries (
	idx         BIGINT PRIMARY KEY,
	leaf        BYTEA NOT NULL,
	event_time  TIMESTAMPTZ NOT NULL,
	request_id  TEXT NOT NULL,
	org         TEXT NOT NULL,
	principal   TEXT NOT NULL,
	device      TEXT NOT NULL,
	decision    TEXT NOT NULL,
	record_orgs TEXT[] NOT NULL,
	records     TEXT[] NOT NULL
);
CREATE INDEX audit_by_principal ON audit_entries (principal, event_time, idx);
CREATE INDEX audit_by_device ON audit_entries (device, event_time, idx);
CREATE INDEX audit_by_time ON audit_entries (event_time, idx);
CREATE INDEX audit_by_request ON audit_entries (request_id);
CREATE TABLE audit_orgs (
	org        TEXT NOT NULL,
	event_time TIMESTAMPTZ NOT NULL,
	idx        BIGINT NOT NULL,
	PRIMARY KEY (org, event_time, idx)
);
CREATE INDEX audit_orgs_by_idx ON audit_orgs (org, idx);
CREATE TABLE audit_records (
	record TEXT NOT NULL,
	idx    BIGINT NOT NULL,
	PRIMARY KEY (record, idx)
);
CREATE TABLE audit_nodes (
	level INT NOT NULL,
	idx   BIGINT NOT NULL,
	hash  BYTEA NOT NULL,
	PRIMARY KEY (level, idx)
);
CREATE TABLE audit_checkpoints (
	size      BIGINT PRIMARY KEY,
	note      BYTEA NOT NULL,
	signed_at TIMESTAMPTZ NOT NULL
);
`,
	`
CREATE TABLE replay (
	key     BYTEA PRIMARY KEY,
	expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX replay_expires ON replay (expires);
`,
	// 3: one field encoding for both stores (sekisho.EncodeFields). The
	// maps were written with a header of their own (a format byte 1, then
	// the number of entries as an unsigned varint) before the entries, which
	// are the same bytes in both encodings: strip the header. The count is
	// below 2^21, so its varint is one to three bytes.
	`
UPDATE records SET
	fields = CASE
		WHEN fields IS NULL OR length(fields) < 2 THEN fields
		WHEN substring(fields from 2 for 1) < '\x80'::bytea THEN substring(fields from 3)
		WHEN substring(fields from 3 for 1) < '\x80'::bytea THEN substring(fields from 4)
		ELSE substring(fields from 5) END,
	index_tokens = CASE
		WHEN index_tokens IS NULL OR length(index_tokens) < 2 THEN index_tokens
		WHEN substring(index_tokens from 2 for 1) < '\x80'::bytea THEN substring(index_tokens from 3)
		WHEN substring(index_tokens from 3 for 1) < '\x80'::bytea THEN substring(index_tokens from 4)
		ELSE substring(index_tokens from 5) END;
`,
	// 4: audit_entries partitioned by month of event_time (partitions.go).
	// The primary key holds the partition key; idx stays unique by the
	// append's compare-and-set on audit_head. A log with events keeps
	// its table, renamed audit_entries_before and attached over every
	// time before the month after its latest event: its indexes match
	// the new ones and are attached as they are, but for the primary key
	// (built again with event_time) and the check of the range (one
	// scan). An empty
	// log is dropped: every month gets a partition of its own.
	`
DO $$
DECLARE
	latest TIMESTAMPTZ;
BEGIN
	LOCK TABLE audit_entries IN ACCESS EXCLUSIVE MODE;
	SELECT max(event_time) INTO latest FROM audit_entries;
	ALTER TABLE audit_entries RENAME TO audit_entries_before;
	ALTER INDEX audit_entries_pkey RENAME TO audit_entries_before_idx;
	ALTER INDEX audit_by_principal RENAME TO audit_entries_before_principal;
	ALTER INDEX audit_by_device RENAME TO audit_entries_before_device;
	ALTER INDEX audit_by_time RENAME TO audit_entries_before_time;
	ALTER INDEX audit_by_request RENAME TO audit_entries_before_request;
	CREATE TABLE audit_entries (
		idx         BIGINT NOT NULL,
		leaf        BYTEA NOT NULL,
		event_time  TIMESTAMPTZ NOT NULL,
		request_id  TEXT NOT NULL,
		org         TEXT NOT NULL,
		principal   TEXT NOT NULL,
		device      TEXT NOT NULL,
		decision    TEXT NOT NULL,
		record_orgs TEXT[] NOT NULL,
		records     TEXT[] NOT NULL,
		PRIMARY KEY (idx, event_time)
	) PARTITION BY RANGE (event_time);
	CREATE INDEX audit_by_principal ON audit_entries (principal, event_time, idx);
	CREATE INDEX audit_by_device ON audit_entries (device, event_time, idx);
	CREATE INDEX audit_by_time ON audit_entries (event_time, idx);
	CREATE INDEX audit_by_request ON audit_entries (request_id);
	IF latest IS NULL THEN
		DROP TABLE audit_entries_before;
	ELSE
		-- A partition has one primary key, the partitioned table's.
		ALTER TABLE audit_entries_before DROP CONSTRAINT audit_entries_before_idx;
		-- The bound is written as text in UTC whatever the session's
		-- DateStyle and TimeZone (a zone abbreviation may read back as
		-- another zone's).
		EXECUTE format('ALTER TABLE audit_entries ATTACH PARTITION audit_entries_before FOR VALUES FROM (MINVALUE) TO (%L)',
			to_char(date_trunc('month', latest AT TIME ZONE 'UTC') + interval '1 month', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
	END IF;
END $$;
`,
	// 5: where audit_entries_before ends (migration 4 attached it up to the
	// month after its latest event, which no later event can pass), so
	// that making a month's partition knows the months it holds without
	// reading the bound's text.
	`
CREATE TABLE audit_partitioning (
	one          BOOL PRIMARY KEY CHECK (one),
	before_until TIMESTAMPTZ NOT NULL
);
DO $$
BEGIN
	IF to_regclass('audit_entries_before') IS NOT NULL THEN
		INSERT INTO audit_partitioning (one, before_until)
		SELECT true, (date_trunc('month', max(event_time) AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
		FROM audit_entries_before;
	END IF;
END $$;
`,
}

// migrate applies the missing migrations, each in a transaction that first
// claims its version in schema_migrations: a concurrent migrator blocks on
// that row and, once the first commits, finds the version taken and skips it.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INT PRIMARY KEY,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`
	if _, err := pool.Exec(ctx, create); err != nil && !lostCreateRace(err) {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	var newest int
	if err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if newest > len(migrations)-1 {
		return fmt.Errorf("postgres: the database schema is at version %d, newer than this binary's %d; upgrade sekisho", newest, len(migrations)-1)
	}
	for v := newest + 1; v < len(migrations); v++ {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT (version) DO NOTHING`, v)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return errApplied
			}
			_, err = tx.Exec(ctx, migrations[v])
			return err
		})
		if err != nil && !errors.Is(err, errApplied) {
			return fmt.Errorf("postgres: migration %d: %w", v, err)
		}
	}
	return nil
}

var errApplied = errors.New("migration applied by another process")

// lostCreateRace reports whether CREATE TABLE IF NOT EXISTS failed because
// another process created the table at the same moment: PostgreSQL checks
// IF NOT EXISTS before it takes the catalog's locks, so the loser sees a
// unique violation (23505) on the catalog, a duplicate type (42710) or a
// duplicate table (42P07). The table exists either way.
func lostCreateRace(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42710" || pe.Code == "42P07")
}
