package postgres

import (
	"context"
	"fmt"
	"time"
)

// replaySweep is how many expired entries each UseOnce removes at most:
// more than it adds, so the table holds about the live entries.
const replaySweep = 8

// UseOnce implements sekisho.ReplayStore: one statement, one round trip
// and one commit: an upsert that takes the key only if it is absent or
// expired (atomic under concurrency: of two nodes inserting the same key,
// one inserts and the other's conflict update finds the row live and
// changes nothing), with a bounded sweep of expired entries in a CTE. The
// sweep leaves the key itself alone, so the two never touch one row.
func (s *Store) UseOnce(ctx context.Context, key []byte, expires, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `WITH sweep AS (
			DELETE FROM replay WHERE key IN (SELECT key FROM replay WHERE expires <= $3 AND key <> $1 LIMIT $4)
		)
		INSERT INTO replay (key, expires) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires = EXCLUDED.expires WHERE replay.expires <= $3`, key, ts(expires), ts(now), replaySweep)
	if err != nil {
		return false, fmt.Errorf("postgres: use once: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
