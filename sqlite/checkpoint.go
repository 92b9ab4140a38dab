package sqlite

import (
	"time"
)

// Checkpoints off the commit path. In WAL mode a commit appends pages to the
// WAL and syncs it; the pages are copied back into the database file by a
// checkpoint. Left to SQLite, the checkpoint runs inside the commit that
// takes the WAL past wal_autocheckpoint pages, so that one request (and
// every request whose audit event shares its group commit) waits for tens
// of MiB to be written and the database file synced: the hot read's tail.
// The checkpointer does it on a connection of its own with PRAGMA
// wal_checkpoint(PASSIVE), which copies what no reader still needs without
// blocking the writer or the readers.
//
// A PASSIVE checkpoint syncs the database file, and so lets the writer
// start the WAL over from its beginning, only if no commit landed while it
// copied (SQLite's walCheckpoint: the sync is skipped unless it copied up
// to the WAL's end as it is when the copy is done). Run every 500 ms under
// the hot read's steady group commits (one every millisecond or two), each
// run copied half a second of commits, a commit always landed meanwhile,
// and no run ever synced: the WAL grew to wal_autocheckpoint pages and the
// writer's own checkpoint, inside a commit, synced every page the
// background runs had copied: a stall of tens of ms, the p99 at half peak.
// So the checkpointer runs every checkpointInterval and, each time, passes
// again until a pass reaches the WAL's end (at most checkpointPasses, and
// not while a pass copies nothing: a reader still uses a page): each pass
// copies only the commits of the one before, a short copy that reaches the
// end, and SQLite syncs the database file on the checkpointer's
// connection, off the writer's path. The writer's autocheckpoint, which
// starts the WAL over, then finds little to copy and little to sync. One
// sync a run at most: a pass after one that reached the end would sync
// again the pages of the commits meanwhile, more I/O beside the writer's
// WAL syncs for nothing (the next run copies them).
//
// Durability is unchanged: a commit is durable once its WAL frames are
// synced (synchronous=FULL); the checkpoint syncs the WAL before it copies
// and the database file before the WAL may start over (SQLite's own rule,
// whichever connection checkpoints).

const (
	// checkpointInterval is how often the checkpointer runs.
	checkpointInterval = 50 * time.Millisecond
	// checkpointPasses bounds the passes of one run.
	checkpointPasses = 8
	// bulkCheckpointInterval is how often it runs during a bulk load
	// (bulk.go), a single pass: the load's hot index pages are rewritten
	// in the WAL many times, and copied into the database file the fewer
	// times the rarer the checkpoint.
	bulkCheckpointInterval = 500 * time.Millisecond
)

func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	var (
		last time.Time
		wal  walState
	)
	for {
		select {
		case <-s.quit:
			return
		case now := <-t.C:
			passes, bulk := checkpointPasses, s.bulk.Load()
			if bulk {
				if now.Sub(last) < bulkCheckpointInterval {
					continue
				}
				passes = 1
			}
			last = now
			prev := wal
			wal = s.checkpoint(passes, wal)
			if syncAfter(prev, wal, bulk) {
				// SQLite syncs the database file again before the
				// WAL may start over, and reports its own errors.
				if err := s.dbFile.Sync(); err == nil {
					s.ckptStats.synced.Add(1)
				}
			}
		}
	}
}

// syncAfter reports whether the checkpointer syncs the database file itself
// after a run that left the WAL as cur (prev before it): when the run copied
// pages but a commit kept it from the WAL's end, so that SQLite did not
// sync them. Unsynced, they pile up in the OS's cache across runs, and the
// sync that writes them all comes at the writer's autocheckpoint, inside a
// commit every request waits on (a 48 ms commit measured at 1M every ~2 s
// at half peak). Not during a bulk load (bulk), whose single passes copy
// pages that the load rewrites again.
func syncAfter(prev, cur walState, bulk bool) bool {
	return !bulk && cur.done != prev.done && cur.frames != cur.done
}

// walState is the WAL as a checkpoint pass left it: its frames, and how
// many of them are in the database file.
type walState struct{ frames, done int }

// checkpoint runs up to passes PASSIVE checkpoints, until one copies the
// WAL to its end (SQLite then synced the database file, unless a commit
// landed while it copied: the next run goes on) or one copies nothing (a
// reader still uses a page). last is the WAL as the last run left it; it
// returns it as this one leaves it. An error (SQLITE_BUSY while a bulk
// load's commit holds the file, a full disk) leaves the WAL to the next run
// and the writer's autocheckpoint.
func (s *Store) checkpoint(passes int, last walState) walState {
	for range passes {
		var busy int
		var w walState
		if err := s.ckpt.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &w.frames, &w.done); err != nil || w.frames < 0 {
			return last
		}
		if w.frames < last.frames {
			s.ckptStats.restarts.Add(1) // the writer started the WAL over
		}
		switch {
		case w.frames == w.done:
			// At the end: SQLite synced the database file, unless a
			// commit landed while it copied (the next run goes on).
			if w != last {
				s.ckptStats.caughtUp.Add(1)
			}
			return w
		case w.done == last.done:
			return w // a reader still uses a page
		}
		last = w
	}
	return last
}
