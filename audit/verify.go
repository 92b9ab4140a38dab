package audit

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sekisho/sekisho"
)

// ProblemKind classifies a Problem found by Verify.
type ProblemKind string

// Problem kinds.
const (
	ProblemLeaf        ProblemKind = "leaf"        // the leaf's bytes differ from what was logged
	ProblemMissing     ProblemKind = "missing"     // no row at this index (deleted)
	ProblemDuplicate   ProblemKind = "duplicate"   // a second row at this index
	ProblemUnrecorded  ProblemKind = "unrecorded"  // a row the log never wrote (no stored leaf hash)
	ProblemColumns     ProblemKind = "columns"     // query columns disagree with the leaf
	ProblemNode        ProblemKind = "node"        // a stored subtree hash differs (leaves and nodes rewritten)
	ProblemCheckpoint  ProblemKind = "checkpoint"  // the tree's root differs from a signed checkpoint
	ProblemSignature   ProblemKind = "signature"   // a stored checkpoint is not validly signed
	ProblemConsistency ProblemKind = "consistency" // two checkpoints are not consistent
	ProblemTruncated   ProblemKind = "truncated"   // the log is shorter than a checkpoint
	ProblemOrigin      ProblemKind = "origin"      // a checkpoint names another log (region) in its origin line
)

// rank orders the problems found at one index: the cause before its
// consequences.
func (k ProblemKind) rank() int {
	switch k {
	case ProblemTruncated:
		return 0
	case ProblemMissing:
		return 1
	case ProblemDuplicate:
		return 2
	case ProblemUnrecorded:
		return 3
	case ProblemLeaf:
		return 4
	case ProblemNode:
		return 5
	case ProblemCheckpoint:
		return 6
	case ProblemColumns:
		return 7
	case ProblemConsistency:
		return 8
	}
	return 9
}

// Problem is one finding of Verify. Index is the first leaf concerned.
type Problem struct {
	Index   uint64      `json:"index"`
	Kind    ProblemKind `json:"kind"`
	Message string      `json:"message"`
}

// Report is the result of Verify.
type Report struct {
	OK   bool   `json:"ok"`
	Size uint64 `json:"size"` // leaves in the store
	// Checkpoints is the number of checkpoints checked, the external one included.
	Checkpoints int       `json:"checkpoints"`
	Problems    []Problem `json:"problems"` // in index order
	// Omitted counts problems left out after MaxProblems.
	Omitted int `json:"omitted,omitempty"`
}

// MaxProblems bounds Report.Problems: past the first few, the rest of a
// tampered log is noise.
const MaxProblems = 100

// verifyPage is how many leaves Verify reads at once.
const verifyPage = 1000

type target struct {
	label string
	size  uint64
	root  []byte
}

type checker struct {
	ctx     context.Context
	store   sekisho.AuditStore
	rep     *Report
	targets []target // sorted by size
	next    int      // next target to check
	bad     []span   // disjoint leaf ranges already reported, sorted
	lastOK  uint64   // largest checkpoint size whose root matched
	pending []pendingRoot

	// The last leaf found moved by one place, and in which direction: the
	// rows after an inserted or deleted one are all moved, and only the
	// first is worth a line.
	movedIdx uint64
	movedDir int
	moved    int // moved leaves not reported
}

type span struct{ begin, end uint64 }

// Verify checks the audit log in store: it recomputes the Merkle tree from
// every stored leaf (read in pages), and compares it with the stored subtree
// hashes, with every stored checkpoint (whose signatures it checks with
// verifier) and with external, a checkpoint note kept outside the store (nil
// if none). Consistency of successive checkpoints is checked with proofs over
// the stored nodes. Tampering is reported in the Report; an error means the
// check itself could not run (the store failed, external is not a valid
// checkpoint of this key).
func Verify(ctx context.Context, store sekisho.AuditStore, verifier note.Verifier, external []byte) (*Report, error) {
	v := &checker{}
	return v.run(ctx, store, verifier, external)
}

func (v *checker) problem(index uint64, kind ProblemKind, format string, args ...any) {
	if len(v.rep.Problems) >= MaxProblems {
		v.rep.Omitted++
		return
	}
	v.rep.Problems = append(v.rep.Problems, Problem{Index: index, Kind: kind, Message: fmt.Sprintf(format, args...)})
}

// markBad records that leaves [b, e) were reported, so that the hashes above
// them, which must differ too, are not reported again.
func (v *checker) markBad(b, e uint64) {
	i := sort.Search(len(v.bad), func(i int) bool { return v.bad[i].begin >= b })
	v.bad = slices.Insert(v.bad, i, span{b, e})
}

// overlapsBad reports whether [b, e) contains a reported leaf, and the first.
func (v *checker) overlapsBad(b, e uint64) (uint64, bool) {
	i := sort.Search(len(v.bad), func(i int) bool { return v.bad[i].end > b })
	if i < len(v.bad) && v.bad[i].begin < e {
		return max(v.bad[i].begin, b), true
	}
	return 0, false
}

func (v *checker) run(ctx context.Context, store sekisho.AuditStore, nv note.Verifier, external []byte) (*Report, error) {
	v.ctx, v.store, v.rep = ctx, store, &Report{Problems: []Problem{}}
	size, err := store.AuditSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit verify: read log size: %w", err)
	}
	v.rep.Size = size

	cps, err := store.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit verify: read checkpoints: %w", err)
	}
	for _, cp := range cps {
		body, err := OpenCheckpoint(cp.Note, nv)
		if err != nil {
			v.problem(cp.Size, ProblemSignature, "stored checkpoint %d: %v", cp.Size, err)
			continue
		}
		if body.Size != cp.Size {
			v.problem(min(cp.Size, body.Size), ProblemSignature, "stored checkpoint %d signs size %d", cp.Size, body.Size)
			continue
		}
		v.targets = append(v.targets, target{fmt.Sprintf("checkpoint %d", cp.Size), body.Size, body.Root})
	}
	if external != nil {
		body, err := OpenCheckpoint(external, nv)
		if err != nil {
			return nil, sekisho.Errorf(sekisho.EInvalid, "external checkpoint: %v", err)
		}
		v.targets = append(v.targets, target{fmt.Sprintf("external checkpoint %d", body.Size), body.Size, body.Root})
	}
	slices.SortStableFunc(v.targets, func(a, b target) int { return cmpU(a.size, b.size) })
	v.rep.Checkpoints = len(v.targets)
	for i := 1; i < len(v.targets); i++ {
		a, b := v.targets[i-1], v.targets[i]
		if a.size == b.size && !bytes.Equal(a.root, b.root) {
			v.problem(a.size, ProblemConsistency, "%s and %s sign different roots for the same size: the log was forked", a.label, b.label)
		}
	}
	for _, t := range v.targets {
		if t.size > size {
			v.problem(size, ProblemTruncated, "the log has %d leaves but %s signs %d: leaves from %d on were removed", size, t.label, t.size, size)
		}
	}

	if err := v.stream(size); err != nil {
		return nil, err
	}
	if err := v.consistency(size); err != nil {
		return nil, err
	}
	if v.moved > 0 {
		v.problem(v.movedIdx, ProblemLeaf, "and %d more leaves moved by one place", v.moved)
	}
	slices.SortStableFunc(v.rep.Problems, func(a, b Problem) int {
		if c := cmpU(a.Index, b.Index); c != 0 {
			return c
		}
		return a.Kind.rank() - b.Kind.rank()
	})
	v.rep.OK = len(v.rep.Problems) == 0 && v.rep.Omitted == 0
	return v.rep, nil
}

type visited struct {
	id   compact.NodeID
	hash []byte
}

// stream recomputes the tree leaf by leaf, checking stored nodes a page at a
// time and checkpoint roots as their sizes are reached.
func (v *checker) stream(size uint64) error {
	h := rfc6962.DefaultHasher
	rng := newRangeFactory().NewEmptyRange(0)
	v.checkTargets(rng)
	v.flushTargets()
	var nodes []visited
	visit := func(id compact.NodeID, hash []byte) { nodes = append(nodes, visited{id, hash}) }
	for next := uint64(0); next < size; {
		entries, err := v.store.AuditLeaves(v.ctx, next, verifyPage)
		if err != nil {
			return fmt.Errorf("audit verify: read leaves from %d: %w", next, err)
		}
		if len(entries) == 0 {
			break
		}
		nodes = nodes[:0]
		for _, e := range entries {
			if e.Index < rng.End() {
				v.problem(e.Index, ProblemDuplicate, "a second row at index %d", e.Index)
				continue
			}
			if e.Index >= size {
				break
			}
			for rng.End() < e.Index {
				if err := v.missing(rng, visit); err != nil {
					return err
				}
			}
			if msg := checkEntry(e); msg != "" {
				v.problem(e.Index, ProblemColumns, "leaf %d: %s", e.Index, msg)
			}
			if err := rng.Append(h.HashLeaf(e.Leaf), visit); err != nil {
				return err
			}
			v.checkTargets(rng)
		}
		if err := v.compareNodes(nodes); err != nil {
			return err
		}
		v.flushTargets()
		if rng.End() == next {
			break // only duplicates of leaves already seen
		}
		next = rng.End()
	}
	for rng.End() < size {
		nodes = nodes[:0]
		if err := v.missing(rng, visit); err != nil {
			return err
		}
		if err := v.compareNodes(nodes); err != nil {
			return err
		}
		v.flushTargets()
	}
	return nil
}

// missing handles a deleted row at index rng.End(): it is reported, and the
// stored hash of that leaf, if any, stands in for it so that the rest of the
// log can still be checked.
func (v *checker) missing(rng *compact.Range, visit compact.VisitFn) error {
	i := rng.End()
	v.problem(i, ProblemMissing, "leaf %d is missing (row deleted)", i)
	v.markBad(i, i+1)
	hash := make([]byte, rfc6962.DefaultHasher.Size())
	if got, err := v.store.AuditNodes(v.ctx, []sekisho.AuditNode{{Level: 0, Index: i}}); err == nil && len(got) == 1 {
		hash = got[0]
	}
	if err := rng.Append(hash, visit); err != nil {
		return err
	}
	v.checkTargets(rng)
	return nil
}

// checkTargets notes the root of rng for the checkpoints of its size; they
// are compared by flushTargets once the page's stored nodes are checked, so
// that a mismatch is explained by the leaf found there.
func (v *checker) checkTargets(rng *compact.Range) {
	for v.next < len(v.targets) && v.targets[v.next].size <= rng.End() {
		t := v.targets[v.next]
		v.next++
		if t.size < rng.End() {
			continue // skipped over (only when a gap was not filled)
		}
		root := rfc6962.DefaultHasher.EmptyRoot()
		if t.size > 0 {
			var err error
			if root, err = rng.GetRootHash(nil); err != nil {
				continue
			}
		}
		v.pending = append(v.pending, pendingRoot{t, root})
	}
}

type pendingRoot struct {
	t    target
	root []byte
}

func (v *checker) flushTargets() {
	for _, p := range v.pending {
		t := p.t
		if bytes.Equal(p.root, t.root) {
			v.lastOK = t.size
			continue
		}
		if first, ok := v.overlapsBad(0, t.size); ok {
			v.problem(first, ProblemCheckpoint, "the first %d leaves do not match %s (see leaf %d)", t.size, t.label, first)
			continue
		}
		v.problem(v.lastOK, ProblemCheckpoint, "the first %d leaves do not match %s: a leaf from %d to %d was changed and the stored hashes rewritten to hide it", t.size, t.label, v.lastOK, t.size-1)
		v.markBad(v.lastOK, t.size)
	}
	v.pending = v.pending[:0]
}

// compareNodes compares recomputed nodes with the stored ones: leaf hashes
// first, which pin an edited row to its index, then the perfect subtrees
// above, reported only when they cover no leaf reported already.
func (v *checker) compareNodes(nodes []visited) error {
	if len(nodes) == 0 {
		return nil
	}
	stored, err := v.storedNodes(nodes)
	if err != nil {
		return err
	}
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].id.Level < nodes[j].id.Level })
	for i, n := range nodes {
		s := stored[n.id]
		b, e := n.id.Coverage()
		if n.id.Level == 0 {
			switch {
			case s == nil:
				v.problem(b, ProblemUnrecorded, "leaf %d was not written by the log (no stored leaf hash): row inserted", b)
				v.markBad(b, e)
			case !bytes.Equal(s, n.hash):
				v.markBad(b, e)
				dir, why := v.shifted(nodes, i, stored)
				if dir != 0 && v.movedDir == dir && v.movedIdx+1 == b {
					v.movedIdx = b
					v.moved++
					continue
				}
				v.movedIdx, v.movedDir = b, dir
				v.problem(b, ProblemLeaf, "leaf %d was changed: its hash differs from the one stored when it was logged%s", b, why)
			}
			continue
		}
		if _, ok := v.overlapsBad(b, e); ok {
			continue
		}
		switch {
		case s == nil:
			v.problem(b, ProblemNode, "the stored hash of leaves %d to %d (node %d/%d) is missing", b, e-1, n.id.Level, n.id.Index)
			v.markBad(b, e)
		case !bytes.Equal(s, n.hash):
			v.problem(b, ProblemNode, "the stored hash of leaves %d to %d (node %d/%d) differs from the recomputed one: a leaf among them was changed along with its stored leaf hash", b, e-1, n.id.Level, n.id.Index)
			v.markBad(b, e)
		}
	}
	return nil
}

// shifted explains a changed leaf that is the previous leaf moved up by one,
// as a row inserted before it (with the rows after it renumbered) leaves it.
func (v *checker) shifted(nodes []visited, i int, stored map[compact.NodeID][]byte) (int, string) {
	id := nodes[i].id
	if id.Index > 0 {
		if prev, ok := stored[compact.NewNodeID(0, id.Index-1)]; ok && bytes.Equal(prev, nodes[i].hash) {
			return +1, fmt.Sprintf(" (it is leaf %d moved: a row was inserted before it, or rows reordered)", id.Index-1)
		}
	}
	if next, ok := stored[compact.NewNodeID(0, id.Index+1)]; ok && bytes.Equal(next, nodes[i].hash) {
		return -1, fmt.Sprintf(" (it is leaf %d moved: a row was deleted before it, or rows reordered)", id.Index+1)
	}
	return 0, ""
}

// storedNodes reads the stored hashes of a page's nodes with one
// AuditNodeRange query per tree level, covering the page's nodes of that
// level and, at level 0, the leaf before the page (for shift detection). A
// missing node is absent from the map.
func (v *checker) storedNodes(nodes []visited) (map[compact.NodeID][]byte, error) {
	type span struct{ from, to uint64 }
	levels := map[uint]span{}
	for _, n := range nodes {
		sp, ok := levels[n.id.Level]
		if !ok {
			sp = span{n.id.Index, n.id.Index + 1}
		}
		sp.from, sp.to = min(sp.from, n.id.Index), max(sp.to, n.id.Index+1)
		levels[n.id.Level] = sp
	}
	if sp, ok := levels[0]; ok && sp.from > 0 && nodes[0].id.Level == 0 {
		sp.from--
		levels[0] = sp
	}
	out := make(map[compact.NodeID][]byte, len(nodes)+1)
	for level, sp := range levels {
		hashes, err := v.store.AuditNodeRange(v.ctx, level, sp.from, sp.to)
		if err != nil {
			return nil, fmt.Errorf("audit verify: read stored hashes: %w", err)
		}
		if uint64(len(hashes)) != sp.to-sp.from {
			return nil, fmt.Errorf("audit verify: store returned %d hashes for nodes %d to %d of level %d", len(hashes), sp.from, sp.to-1, level)
		}
		for i, h := range hashes {
			if h != nil {
				out[compact.NewNodeID(level, sp.from+uint64(i))] = h
			}
		}
	}
	return out, nil
}

// consistency checks each pair of successive checkpoints with a consistency
// proof built from the stored nodes, as a client of the log would.
func (v *checker) consistency(size uint64) error {
	h := rfc6962.DefaultHasher
	for i := 1; i < len(v.targets); i++ {
		a, b := v.targets[i-1], v.targets[i]
		if a.size == b.size || b.size > size {
			continue
		}
		p, err := ConsistencyProof(v.ctx, v.store, a.size, b.size)
		if err != nil {
			if v.ctx.Err() != nil {
				return v.ctx.Err()
			}
			v.problem(a.size, ProblemConsistency, "no consistency proof from %s to %s: %v", a.label, b.label, err)
			continue
		}
		if err := proof.VerifyConsistency(h, a.size, b.size, p, a.root, b.root); err != nil {
			if first, ok := v.overlapsBad(0, b.size); ok {
				v.problem(first, ProblemConsistency, "%s is not consistent with %s (see leaf %d)", b.label, a.label, first)
			} else {
				v.problem(a.size, ProblemConsistency, "%s is not consistent with %s: %v", b.label, a.label, err)
			}
		}
	}
	return nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
