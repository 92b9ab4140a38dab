package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho"
)

// Store is a sekisho.Store on PostgreSQL. It is safe for concurrent use, by
// one process or many.
type Store struct {
	pool *pgxpool.Pool
	bulk bulkState // bulk.go
}

var _ sekisho.Store = (*Store)(nil)

// Open connects to the database at dsn (a postgres:// URL or a key=value
// string), applies the migrations it lacks and returns the store.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included; do not wrap it.
		return nil, sekisho.Errorf(sekisho.EInvalid, "postgres: the store address is not a valid PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool}
	// The audit log's partitions of this month and the next, so that
	// appends do not make them; a lock that did not come in time leaves it
	// to the first append of the month.
	now := time.Now()
	if err := s.PrepareAuditMonths(ctx, now, monthStart(now).AddDate(0, 1, 0)); err != nil && !lockNotAvailable(err) {
		pool.Close()
		return nil, err
	}
	// A bulk load that stopped before its end gets its indexes first.
	if err := s.finishBulk(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Migrate applies the migrations that the database at dsn lacks, for
// `sekisho migrate`. Open does the same, so calling it is optional.
func Migrate(ctx context.Context, dsn string) error {
	s, err := Open(ctx, dsn)
	if err != nil {
		return err
	}
	return s.Close()
}

// Ping implements sekisho.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the PostgreSQL store is not reachable", Err: err}
	}
	return nil
}

// Close implements sekisho.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// maxRetries bounds the retries of a transaction that lost a serialization
// conflict.
const maxRetries = 5

// tx runs fn in a transaction, retrying it when the database asks for a retry
// (40001, 40P01). fn must have no effect outside the transaction.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil || attempt == maxRetries || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// lockNotAvailable reports whether err is a lock_timeout that expired.
func lockNotAvailable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// isUnique reports whether err is a unique violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// wrap turns a database error into a domain error: a unique violation is
// EConflict with the given message, anything else is wrapped as internal.
func wrap(err error, conflict string, what string) error {
	if err == nil {
		return nil
	}
	var e *sekisho.Error
	if errors.As(err, &e) {
		return err
	}
	if isUnique(err) {
		return &sekisho.Error{Code: sekisho.EConflict, Message: conflict, Err: err}
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// ts prepares a time for a TIMESTAMPTZ column: truncated (never rounded) to
// the microsecond, in UTC.
func ts(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// nullTS is ts for a nullable column, the zero time being NULL.
func nullTS(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := ts(t)
	return &v
}

// utc returns a time read from the database in UTC, NULL as the zero time.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
