package sqlite

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
)

// replaySweep is how many expired rows each recorded key removes at
// most: more than it adds, so the table holds about the live entries.
const replaySweep = 8

// The replay records of a server's store are decided in memory and ride on
// the next group commit.
//
// The embedded store has one writing process (the data directory's lock),
// so the table is written by this Store alone: it keeps every key the table
// holds in memory too (live, loaded when the store opens) and UseOnce
// decides there, at once and without reading the table: a key is refused
// if it is live in memory, or reserved and not yet committed; otherwise it
// is reserved (under a mutex, so of concurrent uses of one key exactly one
// is fresh) and written by the next group transaction, whichever write that
// carries. That is the request's own audit append at the latest: the
// append is made after UseOnce returned, and every group transaction writes
// every key reserved before it began, so the answer, which waits for its
// audit event to be durable, never leaves before its proof's replay record
// is durable too. A group transaction that fails writes neither (both roll
// back) and the keys stay reserved for the next one. A request that writes
// no audit event has its key committed by the group the reservation nudges
// (within replayLinger when the writer is idle; and at Close). After a
// restart the table is read back into memory before anything is decided.
//
// The table is keyed by (expires, key), so it is in expiry order: a proof's
// record is inserted near the tail (its expiry is its iat plus the proof
// window, so the records of one moment sit together) and the expired ones
// are deleted from the head, a few pages every group commit touches
// anyway, instead of a random leaf of a table keyed by the key's hash per
// insert and per delete, plus an expiry index.
//
// In memory a key is its SHA-256 (replayKey), so that the live keys (a
// server at a few thousand DPoP reads a second holds a few hundred
// thousand) are arrays in maps and a heap that hold no pointers: the
// garbage collector does not visit them one by one at every cycle, as it
// did strings. The table keeps the keys as given; only the keys reserved
// and not yet written carry their bytes. Memory: about 100 bytes per live
// key (for DPoP proofs, at most access.Config.MaxReplayEntries: the
// service refuses new proofs beyond it before it asks the store).

// replayKey is a key as memory holds it.
type replayKey [sha256.Size]byte

type replayReservation struct {
	raw          []byte // the key, for the table
	expires, now int64  // micros
}

// replayRow is a row of the table, as memory holds it.
type replayRow struct {
	expires int64
	key     replayKey
}

// replayHeap orders the rows of the table by expiry, soonest first.
type replayHeap []replayRow

func (h replayHeap) Len() int           { return len(h) }
func (h replayHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h replayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *replayHeap) Push(x any)        { *h = append(*h, x.(replayRow)) }
func (h *replayHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}

type replayState struct {
	mu sync.Mutex
	// live is the latest expiry of every key committed to the table and
	// not swept; rows is every row of the table not being swept, by expiry
	// (a key used again after it expired has two rows until the older one
	// is swept).
	live map[replayKey]int64
	rows replayHeap
	// reserved are the keys reserved and not yet taken by a group
	// transaction; flushing the keys the running one writes.
	reserved map[replayKey]replayReservation
	flushing map[replayKey]replayReservation
	// latest is the latest now UseOnce was given (micros): rows that
	// expired at or before it may be swept.
	latest int64
}

// loadReplay reads the replay table into memory (Open, before the store
// is used).
func (s *Store) loadReplay(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT expires, key FROM replay`)
	if err != nil {
		return fmt.Errorf("sqlite: read the replay table: %w", err)
	}
	defer rows.Close()
	rp := &s.replay
	rp.live = map[replayKey]int64{}
	for rows.Next() {
		var r replayRow
		var k []byte
		if err := rows.Scan(&r.expires, &k); err != nil {
			return fmt.Errorf("sqlite: read the replay table: %w", err)
		}
		r.key = sha256.Sum256(k)
		rp.rows = append(rp.rows, r)
		if r.expires > rp.live[r.key] {
			rp.live[r.key] = r.expires
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: read the replay table: %w", err)
	}
	heap.Init(&rp.rows)
	return nil
}

// UseOnce implements sekisho.ReplayStore.
func (s *Store) UseOnce(ctx context.Context, key []byte, expires, now time.Time) (bool, error) {
	if s.ops == nil {
		return s.useOnceNow(ctx, key, expires, now)
	}
	k, at := replayKey(sha256.Sum256(key)), micros(now)
	rp := &s.replay
	rp.mu.Lock()
	r1, ok1 := rp.reserved[k]
	r2, ok2 := rp.flushing[k]
	e, ok3 := rp.live[k]
	if (ok1 && r1.expires > at) || (ok2 && r2.expires > at) || (ok3 && e > at) {
		rp.mu.Unlock()
		return false, nil
	}
	if rp.reserved == nil {
		rp.reserved = map[replayKey]replayReservation{}
	}
	rp.reserved[k] = replayReservation{raw: bytes.Clone(key), expires: micros(expires), now: at}
	rp.latest = max(rp.latest, at)
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
func (s *Store) replayWait(ctx context.Context, k replayKey) error {
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

// replayFlush is what one group transaction writes to the replay table:
// the keys reserved before it began, and the rows it sweeps (every row
// that expired at or before sweepTo).
type replayFlush struct {
	keys    map[replayKey]replayReservation
	sweep   []replayRow
	sweepTo int64
}

// takeReplay moves the reserved keys to flushing for the group transaction
// about to begin, picks the expired rows it sweeps (up to replaySweep per
// key it writes), and returns both (nil if no key is reserved).
func (s *Store) takeReplay() *replayFlush {
	rp := &s.replay
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.reserved) == 0 {
		return nil
	}
	f := &replayFlush{keys: rp.reserved}
	rp.reserved, rp.flushing = nil, f.keys
	for n := replaySweep * len(f.keys); n > 0 && len(rp.rows) > 0 && rp.rows[0].expires <= rp.latest; n-- {
		r := heap.Pop(&rp.rows).(replayRow)
		if rp.live[r.key] == r.expires {
			delete(rp.live, r.key)
		}
		f.sweep = append(f.sweep, r)
		f.sweepTo = r.expires
	}
	// The delete takes every row of sweepTo (the proofs of one second
	// share an expiry): the rest of them are popped too, so that memory
	// forgets exactly the rows the table loses.
	for len(f.sweep) > 0 && len(rp.rows) > 0 && rp.rows[0].expires == f.sweepTo {
		r := heap.Pop(&rp.rows).(replayRow)
		if rp.live[r.key] == r.expires {
			delete(rp.live, r.key)
		}
		f.sweep = append(f.sweep, r)
	}
	return f
}

// doneReplay ends a group transaction's flush: committed keys are in the
// table now, and live; after a failure they are reserved again (unless the
// same key was reserved anew meanwhile, which cannot happen while it is
// flushing), and the rows it was to sweep are swept by a later one.
func (s *Store) doneReplay(f *replayFlush, committed bool) {
	if f == nil {
		return
	}
	rp := &s.replay
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.flushing = nil
	if committed {
		if rp.live == nil {
			rp.live = map[replayKey]int64{}
		}
		for k, r := range f.keys {
			heap.Push(&rp.rows, replayRow{expires: r.expires, key: k})
			if r.expires > rp.live[k] {
				rp.live[k] = r.expires
			}
		}
		return
	}
	if rp.reserved == nil {
		rp.reserved = map[replayKey]replayReservation{}
	}
	// Not nudged: a store that cannot commit (a full disk) would spin. The
	// next write commits them; meanwhile they are refused here all the same.
	for k, r := range f.keys {
		if _, ok := rp.reserved[k]; !ok {
			rp.reserved[k] = r
		}
	}
	// The rows stay in the table: swept later. They expired, so they are
	// not live again.
	for _, r := range f.sweep {
		heap.Push(&rp.rows, r)
	}
}

// writeReplay deletes the rows f sweeps and writes its keys in tx; ps are
// replayStmts (prepared before the transaction: the writer has one
// connection, which the transaction holds). The swept rows are deleted as
// the table's head up to the latest of their expiries, sweepTo: the heap
// gave up every row that expires before it and every row of it
// (takeReplay), so the rows deleted are exactly those memory forgot; the
// keys are written after, so that none of them is deleted.
func writeReplay(ctx context.Context, tx *sql.Tx, ps [2]*sql.Stmt, f *replayFlush) error {
	if len(f.sweep) > 0 {
		if _, err := tx.StmtContext(ctx, ps[1]).ExecContext(ctx, f.sweepTo); err != nil {
			return fmt.Errorf("sqlite: sweep replay: %w", err)
		}
	}
	ins := tx.StmtContext(ctx, ps[0])
	for _, r := range f.keys {
		// Checked free (or expired) at reservation: no other writer. A row
		// of the same key and expiry (a key used again, expired at once)
		// says the same.
		if _, err := ins.ExecContext(ctx, r.expires, r.raw); err != nil {
			return fmt.Errorf("sqlite: use once: %w", err)
		}
	}
	return nil
}

func (s *Store) replayStmts(ctx context.Context) ([2]*sql.Stmt, error) {
	var ps [2]*sql.Stmt
	for i, q := range []string{
		`INSERT OR IGNORE INTO replay (expires, key) VALUES (?, ?)`,
		`DELETE FROM replay WHERE expires <= ?`,
	} {
		var err error
		if ps[i], err = s.prep(ctx, s.w, q); err != nil {
			return ps, err
		}
	}
	return ps, nil
}

// useOnceNow is UseOnce in a transaction of its own (a store without the
// group writer, OpenReadOnly's, which cannot write): the live rows of the
// key are read (by the expiry, then the key: the live rows are about the
// last proof window's), and the key inserted when it has none.
func (s *Store) useOnceNow(ctx context.Context, key []byte, expires, now time.Time) (bool, error) {
	var fresh bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM replay WHERE expires > ? AND key = ?`, micros(now), key).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: use once: %w", err)
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO replay (expires, key) VALUES (?, ?)`, micros(expires), key); err != nil {
			return fmt.Errorf("sqlite: use once: %w", err)
		}
		fresh = true
		_, err := tx.ExecContext(ctx, `DELETE FROM replay WHERE expires <= ?`, micros(now))
		return err
	})
	return fresh, err
}
