package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
)

// fakeStore is an in-memory sekisho.AuditStore for tests until the SQLite
// store lands. It keeps the rules of the interface: an append must start at
// the current size or it is EConflict and nothing is written; a missing node
// is an error. Its rows are exported to the tests so that they can tamper
// with them as an attacker with database access would.
type fakeStore struct {
	mu          sync.Mutex
	leaves      []sekisho.AuditEntry
	nodes       map[[2]uint64][]byte
	checkpoints []sekisho.Checkpoint
	appends     int // number of successful AppendAudit calls
	// delay makes every append take this long, as a durable commit (an
	// fsync) does, so that concurrent appends queue behind it.
	delay time.Duration
}

func newFakeStore() *fakeStore {
	return &fakeStore{nodes: map[[2]uint64][]byte{}}
}

func (s *fakeStore) AppendAudit(ctx context.Context, entries []sekisho.AuditEntry, nodes []sekisho.AuditNode) error {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := uint64(len(s.leaves))
	for i, e := range entries {
		if e.Index != size+uint64(i) {
			return sekisho.Errorf(sekisho.EConflict, "audit append at %d, log size is %d", entries[0].Index, size)
		}
	}
	for _, n := range nodes {
		if _, ok := s.nodes[[2]uint64{uint64(n.Level), n.Index}]; ok {
			return sekisho.Errorf(sekisho.EConflict, "audit node %d/%d exists", n.Level, n.Index)
		}
	}
	for _, e := range entries {
		e.Leaf = slices.Clone(e.Leaf)
		s.leaves = append(s.leaves, e)
	}
	for _, n := range nodes {
		s.nodes[[2]uint64{uint64(n.Level), n.Index}] = slices.Clone(n.Hash)
	}
	s.appends++
	return nil
}

func (s *fakeStore) AuditSize(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.leaves)), nil
}

// AuditLeaves returns the rows whose Index is in [from, from+limit), in order
// of Index, as a database would (rows are looked up by their index column, not
// their position, so tests can delete or renumber rows).
func (s *fakeStore) AuditLeaves(ctx context.Context, from uint64, limit int) ([]sekisho.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sekisho.AuditEntry
	for _, e := range s.leaves {
		if e.Index >= from && e.Index < from+uint64(limit) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b sekisho.AuditEntry) int {
		switch {
		case a.Index < b.Index:
			return -1
		case a.Index > b.Index:
			return 1
		}
		return 0
	})
	return out, nil
}

func (s *fakeStore) QueryAudit(ctx context.Context, f sekisho.AuditFilter) ([]sekisho.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sekisho.AuditEntry
	for _, e := range s.leaves {
		if e.Index < f.From || (f.Principal != "" && e.Principal != f.Principal) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

func (s *fakeStore) AuditNodes(ctx context.Context, ids []sekisho.AuditNode) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, ok := s.nodes[[2]uint64{uint64(id.Level), id.Index}]
		if !ok {
			return nil, sekisho.Errorf(sekisho.ENotFound, "audit node %d/%d not found", id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}

func (s *fakeStore) AuditNodeRange(ctx context.Context, level uint, from, to uint64) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if to < from {
		return nil, sekisho.Errorf(sekisho.EInvalid, "audit node range %d to %d", from, to)
	}
	out := make([][]byte, to-from)
	for i := range out {
		out[i] = s.nodes[[2]uint64{uint64(level), from + uint64(i)}]
	}
	return out, nil
}

func (s *fakeStore) PutCheckpoint(ctx context.Context, c sekisho.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.checkpoints {
		if o.Size == c.Size {
			return sekisho.Errorf(sekisho.EConflict, "checkpoint %d exists", c.Size)
		}
	}
	s.checkpoints = append(s.checkpoints, c)
	slices.SortFunc(s.checkpoints, func(a, b sekisho.Checkpoint) int { return int(a.Size) - int(b.Size) })
	return nil
}

func (s *fakeStore) Checkpoints(ctx context.Context) ([]sekisho.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.checkpoints), nil
}

var _ sekisho.AuditStore = (*fakeStore)(nil)

func (s *fakeStore) String() string { return fmt.Sprintf("fakeStore(%d leaves)", len(s.leaves)) }
