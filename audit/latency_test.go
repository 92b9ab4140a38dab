package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// failingStore fails every append while fail is set.
type failingStore struct {
	*fakeStore
	fail bool
}

func (s *failingStore) AppendAudit(ctx context.Context, entries []sekisho.AuditEntry, nodes []sekisho.AuditNode) error {
	if s.fail {
		time.Sleep(s.delay)
		return errors.New("disk on fire")
	}
	return s.fakeStore.AppendAudit(ctx, entries, nodes)
}

// CommitLatency counts every commit that succeeded, once, in the bucket of
// how long the store took; a failed append is not a commit.
func TestCommitLatency(t *testing.T) {
	ctx := context.Background()
	st := &failingStore{fakeStore: newFakeStore()}
	st.delay = 3 * time.Millisecond
	l := newTestLog(t, st, Options{CommitDelay: -1})
	for i := range 5 {
		if _, err := l.Append(ctx, event(i)); err != nil {
			t.Fatal(err)
		}
	}
	st.fail = true
	if _, err := l.Append(ctx, event(5)); err == nil {
		t.Fatal("an append to a failing store succeeded")
	}
	st.fail, st.delay = false, 0
	if _, err := l.Append(ctx, event(5)); err != nil {
		t.Fatal(err)
	}
	commits, _ := l.Stats()
	h := l.CommitLatency()
	if len(h.Counts) != len(h.Bounds)+1 {
		t.Fatalf("%d counts for %d bounds", len(h.Counts), len(h.Bounds))
	}
	var total, slow uint64
	for i, n := range h.Counts {
		total += n
		if i == len(h.Bounds) || h.Bounds[i] >= 3*time.Millisecond {
			slow += n
		}
	}
	if commits != 6 || total != commits {
		t.Fatalf("%d commits, %d in the histogram; want 6 and 6", commits, total)
	}
	// The five slow commits (3 ms each) are in buckets above 3 ms; the
	// fast one may be anywhere.
	if slow < 5 {
		t.Fatalf("%d commits in the buckets above 3 ms, want at least the 5 slow ones: %v", slow, h.Counts)
	}
	if h.Sum < 15*time.Millisecond {
		t.Fatalf("sum %v, want at least 5 x 3 ms", h.Sum)
	}
}
