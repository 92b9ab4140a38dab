package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// replaySweep is how many expired entries each UseOnce removes at most:
// more than it adds, so the table holds about the live entries.
const replaySweep = 8

// UseOnce implements sekisho.ReplayStore: one upsert that takes the key
// only if it is absent or expired, in the writer's transaction.
func (s *Store) UseOnce(ctx context.Context, key []byte, expires, now time.Time) (bool, error) {
	var fresh bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO replay (key, expires) VALUES (?, ?)
			ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE replay.expires <= ?`, key, micros(expires), micros(now))
		if err != nil {
			return fmt.Errorf("sqlite: use once: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite: use once: %w", err)
		}
		fresh = n == 1
		if _, err := tx.ExecContext(ctx, `DELETE FROM replay WHERE key IN (SELECT key FROM replay WHERE expires <= ? LIMIT ?)`,
			micros(now), replaySweep); err != nil {
			return fmt.Errorf("sqlite: sweep replay: %w", err)
		}
		return nil
	})
	return fresh, err
}
