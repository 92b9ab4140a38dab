package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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
	return &Store{pool: pool}, nil
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

// mapFormat is the first byte of an encoded map.
const mapFormat = 1

// encodeMap encodes m compactly: the format byte, the number of entries, and
// each entry in name order as name length, name, value length, value, every
// number an unsigned varint. A nil or empty map encodes as two bytes.
func encodeMap(m map[string][]byte) []byte {
	names := make([]string, 0, len(m))
	size := 2
	for k, v := range m {
		names = append(names, k)
		size += len(k) + len(v) + 2*binary.MaxVarintLen32
	}
	slices.Sort(names)
	b := make([]byte, 0, size)
	b = append(b, mapFormat)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	return b
}

// decodeMap decodes what encodeMap encoded. NULL decodes as an empty map.
func decodeMap(b []byte) (map[string][]byte, error) {
	if len(b) == 0 {
		return map[string][]byte{}, nil
	}
	if b[0] != mapFormat {
		return nil, fmt.Errorf("postgres: unknown map encoding %d", b[0])
	}
	b = b[1:]
	next := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errors.New("postgres: corrupt map encoding")
		}
		v := b[k : k+int(n) : k+int(n)]
		b = b[k+int(n):]
		return v, nil
	}
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, errors.New("postgres: corrupt map encoding")
	}
	b = b[k:]
	m := make(map[string][]byte, count)
	for range count {
		name, err := next()
		if err != nil {
			return nil, err
		}
		val, err := next()
		if err != nil {
			return nil, err
		}
		m[string(name)] = slices.Clone(val)
	}
	if len(b) != 0 {
		return nil, errors.New("postgres: trailing bytes after map encoding")
	}
	return m, nil
}
