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
// The checkpointer does it on a connection of its own every
// checkpointInterval with PRAGMA wal_checkpoint(PASSIVE), which copies what
// no reader still needs without blocking the writer or the readers.
// Durability is unchanged: a commit is durable once its WAL frames are
// synced (synchronous=FULL); the checkpoint syncs the WAL before it copies
// and the database file after.

// checkpointInterval is how often the checkpointer runs.
const checkpointInterval = 500 * time.Millisecond

func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			// An error (SQLITE_BUSY while a bulk load holds the file, a
			// full disk) leaves the WAL to the writer's autocheckpoint.
			s.ckpt.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}
