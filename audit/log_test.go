package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sekisho/sekisho"
)

func testKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	s, v, err := LoadOrCreateKeys(t.TempDir(), "sekisho.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func newTestLog(t testing.TB, store sekisho.AuditStore, opts Options) *Log {
	t.Helper()
	s, v := testKeys(t)
	if opts.Origin == "" {
		opts.Origin = "sekisho.test/audit"
	}
	opts.Verifier = v
	l, err := New(context.Background(), store, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func event(i int) sekisho.Event {
	e := sampleEvent()
	e.RequestID = fmt.Sprintf("req-%d", i)
	e.Principal = fmt.Sprintf("p%d", i%7)
	return e
}

// appendN appends n events from the given number of goroutines.
func appendN(t testing.TB, l *Log, n, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if _, err := l.Append(context.Background(), event(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestAppendConcurrentGroupCommit(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	// A commit takes as long as a fast fsync: the appends that arrive
	// meanwhile must go to the store together in the next one.
	store.delay = 2 * time.Millisecond
	l := newTestLog(t, store, Options{MaxBatch: 64})
	const n = 500
	appendN(t, l, n, 16)
	if size, _ := store.AuditSize(ctx); size != n {
		t.Fatalf("size %d, want %d", size, n)
	}
	if store.appends >= n {
		t.Errorf("%d store appends for %d events: no group commit", store.appends, n)
	}
	t.Logf("%d events in %d commits", n, store.appends)
	// Every request id is there exactly once, and indexes are consecutive.
	leaves, _ := store.AuditLeaves(ctx, 0, n)
	seen := map[string]bool{}
	for i, e := range leaves {
		if e.Index != uint64(i) {
			t.Fatalf("leaf %d has index %d", i, e.Index)
		}
		if seen[e.RequestID] {
			t.Fatalf("request %s twice", e.RequestID)
		}
		seen[e.RequestID] = true
	}
	// The stored tree matches an independent recomputation.
	root, err := l.RootAt(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceRoot(leaves); string(root) != string(want) {
		t.Fatalf("root %x, want %x", root, want)
	}
}

// referenceRoot is RFC 6962's MTH, written from the RFC's definition.
func referenceRoot(leaves []sekisho.AuditEntry) []byte {
	var mth func(l []sekisho.AuditEntry) []byte
	mth = func(l []sekisho.AuditEntry) []byte {
		switch len(l) {
		case 0:
			return rfc6962.DefaultHasher.EmptyRoot()
		case 1:
			return rfc6962.DefaultHasher.HashLeaf(l[0].Leaf)
		}
		k := 1
		for k*2 < len(l) {
			k *= 2
		}
		return rfc6962.DefaultHasher.HashChildren(mth(l[:k]), mth(l[k:]))
	}
	return mth(leaves)
}

func TestAppendReturnsIndexAndStampsTime(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	now := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newTestLog(t, store, Options{Now: func() time.Time { return now }})
	for want := range uint64(3) {
		ev := event(int(want))
		ev.Time = time.Time{}
		got, err := l.Append(ctx, ev)
		if err != nil || got != want {
			t.Fatalf("Append = %d, %v; want %d", got, err, want)
		}
	}
	first, err := l.AppendBatch(ctx, []sekisho.Event{event(10), event(11), event(12)})
	if err != nil || first != 3 {
		t.Fatalf("AppendBatch = %d, %v; want 3", first, err)
	}
	leaves, _ := store.AuditLeaves(ctx, 0, 10)
	if !leaves[0].Time.Equal(now) {
		t.Fatalf("time %v, want %v", leaves[0].Time, now)
	}
	if _, err := l.Append(ctx, sekisho.Event{Time: now, Decision: "perhaps"}); sekisho.Code(err) != sekisho.EInvalid {
		t.Fatalf("bad decision: %v", err)
	}
}

func TestTwoWritersShareAStore(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	a := newTestLog(t, store, Options{})
	b := newTestLog(t, store, Options{})
	var wg sync.WaitGroup
	for _, l := range []*Log{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); appendN(t, l, 200, 4) }()
	}
	wg.Wait()
	leaves, _ := store.AuditLeaves(ctx, 0, 1000)
	if len(leaves) != 400 {
		t.Fatalf("%d leaves, want 400", len(leaves))
	}
	root, err := a.RootAt(ctx, 400)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceRoot(leaves); string(root) != string(want) {
		t.Fatal("root of a log written by two writers is wrong")
	}
}

func TestCloseDrainsAndRefuses(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	l := newTestLog(t, store, Options{})
	var wg sync.WaitGroup
	var ok sync.Map
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if idx, err := l.Append(ctx, event(i)); err == nil {
				ok.Store(i, idx)
			}
		}()
	}
	l.Close()
	wg.Wait()
	n := 0
	ok.Range(func(k, v any) bool { n++; return true })
	if size, _ := store.AuditSize(ctx); size != uint64(n) {
		t.Fatalf("%d appends succeeded, %d stored", n, size)
	}
	if _, err := l.Append(ctx, event(99)); err != ErrClosed {
		t.Fatalf("Append after Close: %v", err)
	}
}

func TestCancelledAppendIsNotWritten(t *testing.T) {
	store := newFakeStore()
	l := newTestLog(t, store, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, event(1)); err == nil {
		t.Fatal("Append with a cancelled context succeeded")
	}
}

func TestProofsVerifyIndependently(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	l := newTestLog(t, store, Options{})
	const n = 70
	appendN(t, l, n, 1)
	leaves, _ := store.AuditLeaves(ctx, 0, n)
	h := rfc6962.DefaultHasher
	for size := uint64(1); size <= n; size++ {
		root, err := l.RootAt(ctx, size)
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceRoot(leaves[:size]); string(root) != string(want) {
			t.Fatalf("RootAt(%d) wrong", size)
		}
		for index := uint64(0); index < size; index++ {
			p, err := l.InclusionProof(ctx, index, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(h, index, size, h.HashLeaf(leaves[index].Leaf), p, root); err != nil {
				t.Fatalf("inclusion %d in %d: %v", index, size, err)
			}
		}
		for from := uint64(0); from <= size; from++ {
			p, err := l.ConsistencyProof(ctx, from, size)
			if err != nil {
				t.Fatal(err)
			}
			root1 := referenceRoot(leaves[:from])
			if err := proof.VerifyConsistency(h, from, size, p, root1, root); err != nil {
				t.Fatalf("consistency %d to %d: %v", from, size, err)
			}
		}
	}
	// A proof of the wrong leaf fails (the negative case).
	root, _ := l.RootAt(ctx, n)
	p, _ := l.InclusionProof(ctx, 5, n)
	if proof.VerifyInclusion(h, 5, n, h.HashLeaf(leaves[6].Leaf), p, root) == nil {
		t.Fatal("inclusion proof verified for the wrong leaf")
	}
	for _, bad := range [][2]uint64{{n, n}, {0, n + 1}} {
		if _, err := l.InclusionProof(ctx, bad[0], bad[1]); sekisho.Code(err) != sekisho.EInvalid {
			t.Errorf("InclusionProof(%d, %d): %v", bad[0], bad[1], err)
		}
	}
	if _, err := l.ConsistencyProof(ctx, 5, 4); sekisho.Code(err) != sekisho.EInvalid {
		t.Errorf("ConsistencyProof(5, 4): %v", err)
	}
}

func TestCheckpoints(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	witness := t.TempDir()
	l := newTestLog(t, store, Options{WitnessDir: witness})
	v := l.opts.Verifier

	cp0, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp0.Size != 0 {
		t.Fatalf("first checkpoint size %d", cp0.Size)
	}
	appendN(t, l, 10, 2)
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body, err := OpenCheckpoint(cp.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := l.RootAt(ctx, 10)
	if body.Size != 10 || string(body.Root) != string(root) || body.Origin != "sekisho.test/audit" {
		t.Fatalf("checkpoint body %+v", body)
	}
	// The note is a C2SP checkpoint: origin, size, root, blank line, signature.
	want := fmt.Sprintf("sekisho.test/audit\n10\n%s\n\n— sekisho.test/audit ", b64(root))
	if got := string(cp.Note); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("note:\n%s", got)
	}
	// No growth: no new checkpoint.
	again, err := l.Checkpoint(ctx)
	if err != nil || again.Size != 10 || string(again.Note) != string(cp.Note) {
		t.Fatalf("checkpoint without growth: %v %d", err, again.Size)
	}
	cps, _ := store.Checkpoints(ctx)
	if len(cps) != 2 {
		t.Fatalf("%d checkpoints stored, want 2", len(cps))
	}
	latest, err := l.LatestCheckpoint(ctx)
	if err != nil || latest.Size != 10 {
		t.Fatalf("LatestCheckpoint: %d %v", latest.Size, err)
	}
	w, err := os.ReadFile(filepath.Join(witness, "checkpoint-10"))
	if err != nil || string(w) != string(cp.Note) {
		t.Fatalf("witness file: %v", err)
	}
	// Another key's signature is refused.
	_, other := testKeys(t)
	if _, err := OpenCheckpoint(cp.Note, other); err == nil {
		t.Fatal("checkpoint opened with another key")
	}
}

func TestCheckpointRefusesRewrittenLog(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	l := newTestLog(t, store, Options{})
	appendN(t, l, 8, 1)
	if _, err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// An attacker rewrites leaf 3 and every node above it.
	store.mu.Lock()
	store.nodes[[2]uint64{0, 3}] = rfc6962.DefaultHasher.HashLeaf([]byte("forged"))
	store.nodes[[2]uint64{1, 1}] = rfc6962.DefaultHasher.HashChildren(store.nodes[[2]uint64{0, 2}], store.nodes[[2]uint64{0, 3}])
	store.nodes[[2]uint64{2, 0}] = rfc6962.DefaultHasher.HashChildren(store.nodes[[2]uint64{1, 0}], store.nodes[[2]uint64{1, 1}])
	store.nodes[[2]uint64{3, 0}] = rfc6962.DefaultHasher.HashChildren(store.nodes[[2]uint64{2, 0}], store.nodes[[2]uint64{2, 1}])
	store.mu.Unlock()
	appendN(t, l, 1, 1)
	if _, err := l.Checkpoint(ctx); err == nil {
		t.Fatal("signed a checkpoint over a rewritten log")
	}
}

func TestRunCheckpointer(t *testing.T) {
	store := newFakeStore()
	l := newTestLog(t, store, Options{})
	appendN(t, l, 3, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := l.RunCheckpointer(ctx, 20*time.Millisecond); err != context.DeadlineExceeded {
		t.Fatalf("RunCheckpointer: %v", err)
	}
	cps, _ := store.Checkpoints(context.Background())
	if len(cps) != 1 || cps[0].Size != 3 {
		t.Fatalf("checkpoints: %+v", cps)
	}
}

func TestLoadOrCreateKeys(t *testing.T) {
	dir := t.TempDir()
	s1, v1, err := LoadOrCreateKeys(dir, "sekisho.local/audit")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, SigningKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key mode: %v %v", fi.Mode(), err)
	}
	s2, v2, err := LoadOrCreateKeys(dir, "sekisho.local/audit")
	if err != nil {
		t.Fatal(err)
	}
	if s1.KeyHash() != s2.KeyHash() || v1.KeyHash() != v2.KeyHash() || s1.KeyHash() != v1.KeyHash() {
		t.Fatal("keys changed between loads")
	}
	pinned, err := LoadVerifier(filepath.Join(dir, VerifierKeyFile))
	if err != nil || pinned.KeyHash() != v1.KeyHash() {
		t.Fatalf("LoadVerifier: %v", err)
	}
	// A lost verifier file is rewritten from the signing key.
	os.Remove(filepath.Join(dir, VerifierKeyFile))
	if _, v3, err := LoadOrCreateKeys(dir, "sekisho.local/audit"); err != nil || v3.KeyHash() != v1.KeyHash() {
		t.Fatalf("rewrite verifier: %v", err)
	}
	// A verifier file that does not match is refused.
	_, otherV, _ := GenerateKey("sekisho.local/audit")
	os.WriteFile(filepath.Join(dir, VerifierKeyFile), []byte(otherV+"\n"), 0o644)
	if _, _, err := LoadOrCreateKeys(dir, "sekisho.local/audit"); err == nil {
		t.Fatal("mismatched verifier key accepted")
	}
	// A wrong name and a world-readable key are refused.
	dir2 := t.TempDir()
	LoadOrCreateKeys(dir2, "a")
	if _, _, err := LoadOrCreateKeys(dir2, "b"); err == nil {
		t.Fatal("key of another name accepted")
	}
	os.Chmod(filepath.Join(dir2, SigningKeyFile), 0o644)
	if _, _, err := LoadOrCreateKeys(dir2, "a"); err == nil {
		t.Fatal("world-readable signing key accepted")
	}
}

// Before a commit of fewer than CommitGroup events the writer yields its
// processor (Options.yield, runtime.Gosched outside tests) and takes the
// events that arrived meanwhile into the same commit; a yield that brought
// nothing ends the wait. The test's yield stands for the goroutines a real
// yield lets run: when it brings, its first call starts a second Append and
// returns once that append is waiting to be taken (50 ms after it started:
// the append waits on a channel send, so it stays waiting). Each case makes
// two appends: the second one from the yield if it was started there, else
// after the first returned. Controls: with the wait off (CommitDelay < 0)
// the writer never yields and the two events are two commits; a yield that
// brings nothing is called once per commit and lets it go; a batch of
// CommitGroup events commits without a yield.
func TestCommitWaitsWhileTheWriterYields(t *testing.T) {
	for _, tt := range []struct {
		name        string
		delay       time.Duration
		brings      bool // the first yield starts the second Append
		first       int  // events of the first append
		wantCommits int
		wantYields  int
	}{
		// The first yield brings the second event, the second yield nothing.
		{"a yield brings an event", time.Hour, true, 1, 1, 2},
		{"no wait", -1, true, 1, 2, 0},
		{"a yield brings nothing", time.Hour, false, 1, 2, 2},
		// Only the second commit (one event) yields.
		{"a full group", time.Hour, false, 3, 2, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			store := newFakeStore()
			var (
				l       *Log
				yields  atomic.Int32
				started atomic.Bool
				second  = make(chan error, 1)
			)
			opts := Options{CommitDelay: tt.delay, CommitGroup: 3}
			opts.yield = func() {
				if yields.Add(1) != 1 || !tt.brings {
					return
				}
				started.Store(true)
				go func() {
					_, err := l.Append(ctx, event(99))
					second <- err
				}()
				time.Sleep(50 * time.Millisecond)
			}
			l = newTestLog(t, store, opts)
			evs := make([]sekisho.Event, tt.first)
			for i := range evs {
				evs[i] = event(i)
			}
			if _, err := l.AppendBatch(ctx, evs); err != nil {
				t.Fatal(err)
			}
			if started.Load() {
				if err := <-second; err != nil {
					t.Fatal(err)
				}
			} else if _, err := l.Append(ctx, event(98)); err != nil {
				t.Fatal(err)
			}
			store.mu.Lock()
			commits := store.appends
			store.mu.Unlock()
			if commits != tt.wantCommits {
				t.Errorf("%d commits, want %d", commits, tt.wantCommits)
			}
			if got := int(yields.Load()); got != tt.wantYields {
				t.Errorf("%d yields, want %d", got, tt.wantYields)
			}
		})
	}
}
