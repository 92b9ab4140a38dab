package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
)

// replaySweep is how many expired entries each recorded key removes at
// most: more than it adds, so the table holds about the live entries.
const replaySweep = 8

// The replay records of a server's store ride on the next group commit.
//
// A DPoP request used to make two durable writes one after the other: its
// proof's replay record when it was authenticated, then its audit event
// before the answer, each waiting for its own group commit. The embedded
// store has one writing process (the data directory's lock), so UseOnce can
// decide here, at once: a key is refused if this store holds it live, in
// the table or reserved and not yet committed; otherwise it is reserved
// (under a mutex, so of concurrent uses of one key exactly one is fresh) and
// written by the next group transaction, whichever write that carries.
// That is the request's own audit append at the latest: the append is made
// after UseOnce returned, and every group transaction writes every key
// reserved before it began, so the answer, which waits for its audit event
// to be durable, never leaves before its proof's replay record is durable
// too. A group transaction that fails writes neither (both roll back) and
// the keys stay reserved for the next one. A request that writes no audit
// event has its key committed by the group the reservation nudges (within
// replayLinger when the writer is idle; and at Close).

type replayReservation struct {
	expires, now int64 // micros
}

type replayState struct {
	// use serialises UseOnce's check, table read and reservation; mu
	// guards the maps, held only briefly (the group writer takes it, never
	// use, so a slow read does not hold up commits).
	use      sync.Mutex
	mu       sync.Mutex
	reserved map[string]replayReservation
	// flushing is the keys the running group transaction writes.
	flushing map[string]replayReservation
}

// UseOnce implements sekisho.ReplayStore.
func (s *Store) UseOnce(ctx context.Context, key []byte, expires, now time.Time) (bool, error) {
	if s.ops == nil {
		return s.useOnceNow(ctx, key, expires, now)
	}
	st, err := s.prep(ctx, s.r, `SELECT expires FROM replay WHERE key = ?`)
	if err != nil {
		return false, err
	}
	k, at := string(key), micros(now)
	// The check, the table read and the reservation hold rp.use: keys are
	// reserved only under it, so a key in neither map at the check stays
	// out of them until this call reserves it; a key leaves flushing only
	// after its commit, so the read (begun after the check) sees every key
	// that was in neither map; and the key is not reserved while it reads,
	// so the table cannot show a request its own reservation committed.
	rp := &s.replay
	rp.use.Lock()
	defer rp.use.Unlock()
	rp.mu.Lock()
	r1, ok1 := rp.reserved[k]
	r2, ok2 := rp.flushing[k]
	rp.mu.Unlock()
	if (ok1 && r1.expires > at) || (ok2 && r2.expires > at) {
		return false, nil
	}
	var e int64
	switch err := st.QueryRowContext(ctx, key).Scan(&e); {
	case err == sql.ErrNoRows:
	case err != nil:
		return false, fmt.Errorf("sqlite: use once: %w", err)
	case e > at:
		return false, nil
	}
	rp.mu.Lock()
	if rp.reserved == nil {
		rp.reserved = map[string]replayReservation{}
	}
	rp.reserved[k] = replayReservation{expires: micros(expires), now: at}
	rp.mu.Unlock()
	select {
	case s.replayNudge <- struct{}{}:
	default: // a nudge is pending already
	}
	if d := sekisho.DurableFrom(ctx); d != nil {
		d.Add(func(ctx context.Context) error { return s.replayWait(ctx, k) })
	}
	return true, nil
}

// replayWait returns once the reserved key k is committed: at once when it
// is (the request's audit append carried it), else after a group commit
// that began after it was reserved.
func (s *Store) replayWait(ctx context.Context, k string) error {
	for range 3 {
		s.replay.mu.Lock()
		_, reserved := s.replay.reserved[k]
		_, flushing := s.replay.flushing[k]
		s.replay.mu.Unlock()
		if !reserved && !flushing {
			return nil
		}
		if err := s.grouped(ctx, func(*sql.Tx) error { return nil }); err != nil {
			return err
		}
	}
	return fmt.Errorf("sqlite: the replay record is not committed after three group commits")
}

// takeReplay moves the reserved keys to flushing for the group transaction
// about to begin and returns them (nil if none).
func (s *Store) takeReplay() map[string]replayReservation {
	rp := &s.replay
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.reserved) == 0 {
		return nil
	}
	f := rp.reserved
	rp.reserved, rp.flushing = nil, f
	return f
}

// doneReplay ends a group transaction's flush: committed keys are in the
// table now; after a failure they are reserved again (unless the same key
// was reserved anew meanwhile, which cannot happen while it is flushing).
func (s *Store) doneReplay(f map[string]replayReservation, committed bool) {
	if f == nil {
		return
	}
	rp := &s.replay
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.flushing = nil
	if committed {
		return
	}
	if rp.reserved == nil {
		rp.reserved = map[string]replayReservation{}
	}
	// Not nudged: a store that cannot commit (a full disk) would spin. The
	// next write commits them; meanwhile they are refused here all the same.
	for k, r := range f {
		if _, ok := rp.reserved[k]; !ok {
			rp.reserved[k] = r
		}
	}
}

// writeReplay writes the keys of f in tx, and sweeps expired entries; ps
// are replayStmts (prepared before the transaction: the writer has one
// connection, which the transaction holds).
func writeReplay(ctx context.Context, tx *sql.Tx, ps [3]*sql.Stmt, f map[string]replayReservation) error {
	var latest int64
	for k, r := range f {
		// Checked free (or expired) at reservation: no other writer.
		if _, err := tx.StmtContext(ctx, ps[0]).ExecContext(ctx, []byte(k), r.expires); err != nil {
			return fmt.Errorf("sqlite: use once: %w", err)
		}
		latest = max(latest, r.now)
	}
	return sweepReplay(ctx, tx, ps, latest, replaySweep*len(f))
}

func (s *Store) replayStmts(ctx context.Context) ([3]*sql.Stmt, error) {
	var ps [3]*sql.Stmt
	for i, q := range []string{
		`INSERT INTO replay (key, expires) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires = excluded.expires`,
		`SELECT key FROM replay WHERE expires <= ? LIMIT ?`,
		`DELETE FROM replay WHERE key = ? AND expires <= ?`,
	} {
		var err error
		if ps[i], err = s.prep(ctx, s.w, q); err != nil {
			return ps, err
		}
	}
	return ps, nil
}

// sweepReplay removes up to n entries expired at now. It reads the expired
// keys by the expiry index, then deletes each by its key: a DELETE ...
// WHERE key IN (subquery) cost SQLite 1-3 ms a call here (measured inside a
// transaction that had just inserted), against tens of microseconds for this.
func sweepReplay(ctx context.Context, tx *sql.Tx, ps [3]*sql.Stmt, now int64, n int) error {
	rows, err := tx.StmtContext(ctx, ps[1]).QueryContext(ctx, now, n)
	if err != nil {
		return fmt.Errorf("sqlite: sweep replay: %w", err)
	}
	var expired [][]byte
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: sweep replay: %w", err)
		}
		expired = append(expired, k)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlite: sweep replay: %w", err)
	}
	del := tx.StmtContext(ctx, ps[2])
	for _, k := range expired {
		if _, err := del.ExecContext(ctx, k, now); err != nil {
			return fmt.Errorf("sqlite: sweep replay: %w", err)
		}
	}
	return nil
}

// useOnceNow is UseOnce in a transaction of its own (a store without the
// group writer): one upsert that takes the key only if it is absent or
// expired.
func (s *Store) useOnceNow(ctx context.Context, key []byte, expires, now time.Time) (bool, error) {
	ps, err := s.replayStmts(ctx)
	if err != nil {
		return false, err
	}
	var fresh bool
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO replay (key, expires) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE replay.expires <= ?`, key, micros(expires), micros(now))
		if err != nil {
			return fmt.Errorf("sqlite: use once: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite: use once: %w", err)
		}
		fresh = n == 1
		return sweepReplay(ctx, tx, ps, micros(now), replaySweep)
	})
	return fresh, err
}
