package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// The checkpointer copies committed WAL pages into the database file in the
// background: 2 MiB of objects, far below the writer's autocheckpoint
// (64 MiB of WAL), reach the database file without another commit.
func TestCheckpointerCopiesTheWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := []byte(`"` + strings.Repeat("x", 4000) + `"`)
	for i := range 500 {
		if err := s.PutObject(ctx, &sekisho.Object{Kind: "k", ID: fmt.Sprint(i), Org: "o", Version: 1, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= 2_000_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes 20s after 2 MB of commits: the WAL was not checkpointed", fi.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The objects read back (the copy lost nothing).
	for _, i := range []int{0, 250, 499} {
		o, err := s.GetObject(ctx, "k", fmt.Sprint(i))
		if err != nil || string(o.Body) != string(body) {
			t.Fatalf("object %d after the checkpoint: %v", i, err)
		}
	}
}

// Under a steady stream of group commits (8 writers, the writer never
// idle), the checkpointer still copies the WAL to its end, time and again,
// so that SQLite syncs the database file on its connection, not the writer
// at its autocheckpoint; what was committed reads back after a restart.
// (These commits are small: a single pass every 500 ms, the checkpointer
// before, reaches the end here too; under the hot read's it did not, see
// BenchmarkDPoPHalfPeakWrites1M.)
func TestCheckpointerCatchesUpUnderCommits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`"` + strings.Repeat("y", 2000) + `"`)
	var (
		n    atomic.Int64
		stop atomic.Bool
		wg   sync.WaitGroup
		errs = make(chan error, 8)
	)
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				i := n.Add(1) - 1
				if err := s.PutObject(ctx, &sekisho.Object{Kind: "k", ID: fmt.Sprint(i), Org: "o", Version: 1, Body: body}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.ckptStats.caughtUp.Load() < 3 && time.Now().Before(deadline) && len(errs) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	caughtUp, restarts, total := s.ckptStats.caughtUp.Load(), s.ckptStats.restarts.Load(), n.Load()
	if caughtUp < 3 {
		t.Fatalf("after %d commits in 20 s: the checkpointer reached the WAL's end %d times", total, caughtUp)
	}
	t.Logf("%d commits: the checkpointer reached the WAL's end %d times, synced the database file after a partial copy %d times, the WAL started over %d times", total, caughtUp, s.ckptStats.synced.Load(), restarts)
	s = reopen(t, s, path)
	for _, i := range []int64{0, total / 2, total - 1} {
		o, err := s.GetObject(ctx, "k", fmt.Sprint(i))
		if err != nil || string(o.Body) != string(body) {
			t.Fatalf("object %d of %d after a restart: %v", i, total, err)
		}
	}
}

// The checkpointer syncs the database file itself after a run that copied
// pages without reaching the WAL's end (SQLite syncs only at the end), and
// not otherwise.
func TestCheckpointerSyncsWhatItCopied(t *testing.T) {
	for _, c := range []struct {
		name      string
		prev, cur walState
		bulk      bool
		want      bool
	}{
		{"copied, a commit landed meanwhile", walState{100, 40}, walState{180, 150}, false, true},
		{"copied to the end: SQLite synced", walState{100, 40}, walState{150, 150}, false, false},
		{"copied nothing (a reader holds a page)", walState{100, 40}, walState{180, 40}, false, false},
		{"the WAL started over, copied part", walState{5000, 5000}, walState{300, 120}, false, true},
		{"bulk load", walState{100, 40}, walState{180, 150}, true, false},
		{"nothing happened", walState{100, 100}, walState{100, 100}, false, false},
	} {
		if got := syncAfter(c.prev, c.cur, c.bulk); got != c.want {
			t.Errorf("%s: syncAfter(%v, %v, %v) = %v, want %v", c.name, c.prev, c.cur, c.bulk, got, c.want)
		}
	}
}
