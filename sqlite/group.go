package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Group commit. The hot read's durable writes are small: the DPoP proof's
// replay record (UseOnce, written with the next group: replay.go) and the
// audit log's append. Each of them alone
// would be a transaction with its own WAL sync; SQLite has one writer, so
// under concurrent requests they queue for it anyway. The group writer takes
// every such write waiting when the writer is free and commits them in one
// transaction, one sync for all: each write still returns only after its
// commit is durable (synchronous=FULL), and each runs inside a savepoint, so
// one write's failure (a replayed proof is not a failure; an audit append
// at a stale index is) rolls back that write alone.

// maxGroup bounds the writes of one group transaction.
const maxGroup = 256

// replayLinger is how long reserved replay keys wait for a write to share
// a commit with before they are committed alone.
const replayLinger = 10 * time.Millisecond

type groupOp struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

// grouped runs fn in the next group transaction and returns once that
// transaction is committed (fn's own error, or the commit's).
func (s *Store) grouped(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.ops == nil {
		return s.tx(ctx, fn)
	}
	op := &groupOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.ops <- op:
	case <-s.quit:
		return fmt.Errorf("sqlite: store closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	// Wait even if ctx ends: the write may be committing.
	return <-op.done
}

// groupWriter is the goroutine that commits the grouped writes.
func (s *Store) groupWriter() {
	defer close(s.groupDone)
	batch := make([]*groupOp, 0, maxGroup)
	linger := time.NewTimer(replayLinger)
	defer linger.Stop()
	for {
		batch = batch[:0]
		select {
		case op := <-s.ops:
			batch = append(batch, op)
		case <-s.replayNudge:
			// Reserved replay keys and no write waiting. The request that
			// reserved one is about to append its audit event: wait for a
			// write for up to replayLinger, so that the key shares its
			// commit, else commit the keys alone.
			linger.Reset(replayLinger)
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			case <-linger.C:
			case <-s.quit:
				s.commitGroup(nil)
				return
			}
		case <-s.quit:
			s.commitGroup(nil) // the reserved replay keys, if any
			return
		}
	collect:
		for len(batch) < maxGroup {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break collect
			}
		}
		s.commitGroup(batch)
	}
}

func (s *Store) commitGroup(batch []*groupOp) {
	// Writes whose caller has gone are not made.
	live := batch[:0]
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.done <- err
			continue
		}
		live = append(live, op)
	}
	ctx := context.Background()
	// The replay keys reserved before this transaction go into it
	// (replay.go): every write of the group is durable only with them.
	replay := s.takeReplay()
	if len(live) == 0 && replay == nil {
		return
	}
	errs := make([]error, len(live))
	fail := func(err error) {
		s.doneReplay(replay, false)
		for _, op := range live {
			op.done <- err
		}
	}
	// The statements are prepared once (before the transaction: the writer
	// has one connection), not parsed for every write.
	var rps [2]*sql.Stmt
	if replay != nil {
		var err error
		if rps, err = s.replayStmts(ctx); err != nil {
			fail(err)
			return
		}
	}
	var sp [3]*sql.Stmt
	if len(live) > 1 {
		for i, q := range []string{"SAVEPOINT g", "ROLLBACK TO g", "RELEASE g"} {
			var err error
			if sp[i], err = s.prep(ctx, s.w, q); err != nil {
				fail(err)
				return
			}
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if replay != nil {
			if err := writeReplay(ctx, tx, rps, replay); err != nil {
				return err
			}
		}
		if len(live) == 0 {
			return nil
		}
		if len(live) == 1 {
			errs[0] = live[0].fn(tx)
			return errs[0]
		}
		save, rollback, release := tx.Stmt(sp[0]), tx.Stmt(sp[1]), tx.Stmt(sp[2])
		for i, op := range live {
			if _, err := save.Exec(); err != nil {
				return fmt.Errorf("sqlite: savepoint: %w", err)
			}
			if errs[i] = op.fn(tx); errs[i] != nil {
				if _, err := rollback.Exec(); err != nil {
					return fmt.Errorf("sqlite: rollback to savepoint: %w", err)
				}
			}
			if _, err := release.Exec(); err != nil {
				return fmt.Errorf("sqlite: release savepoint: %w", err)
			}
		}
		return nil
	})
	s.doneReplay(replay, err == nil)
	for i, op := range live {
		switch {
		case errs[i] != nil:
			op.done <- full(errs[i])
		default:
			op.done <- err
		}
	}
}
