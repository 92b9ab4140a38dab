package postgres

import (
	"context"
	"fmt"
	"time"
)

// replaySweep is how many expired entries each UseOnce removes at most:
// more than it adds, so the table holds about the live entries.
const replaySweep = 8

// UseOnce implements sekisho.ReplayStore: one upsert that takes the key
// only if it is absent or expired (atomic under concurrency: of two nodes
// inserting the same key, one inserts and the other's conflict update finds
// the row live and changes nothing), then a bounded sweep.
func (s *Store) UseOnce(ctx context.Context, key []byte, expires, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO replay (key, expires) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires = EXCLUDED.expires WHERE replay.expires <= $3`, key, ts(expires), ts(now))
	if err != nil {
		return false, fmt.Errorf("postgres: use once: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM replay WHERE key IN (SELECT key FROM replay WHERE expires <= $1 LIMIT $2)`,
		ts(now), replaySweep); err != nil {
		return false, fmt.Errorf("postgres: sweep replay: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
