package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

// The packed entries come back whole, and sortedRefs orders them as
// lookup_index does (token bytes, then id), also where tokens share their
// first 8 bytes (the integer key ties) or are shorter than 8 bytes.
func TestEntryGroupSortedRefs(t *testing.T) {
	type pair struct {
		token []byte
		id    string
	}
	r := rand.New(rand.NewPCG(1, 2))
	var want []pair
	g := &entryGroup{}
	for i := range 50000 {
		var tok []byte
		switch i % 5 {
		case 0: // shares its first 8 bytes with others
			tok = append([]byte("samepref"), byte(r.IntN(4)), byte(r.IntN(256)))
		case 1: // short
			tok = []byte{byte(r.IntN(3)), byte(r.IntN(3))}[:1+r.IntN(2)]
		default:
			tok = make([]byte, 32)
			for j := range tok {
				tok[j] = byte(r.IntN(256))
			}
		}
		id := string(rune('a'+r.IntN(26))) + string(rune('a'+r.IntN(26)))
		want = append(want, pair{tok, id})
		g.add(tok, id)
	}
	if g.n != len(want) || len(g.chunks) < 2 {
		t.Fatalf("%d entries in %d chunks, want %d in several (the test would not cross chunks)", g.n, len(g.chunks), len(want))
	}
	slices.SortStableFunc(want, func(a, b pair) int {
		return cmp.Or(bytes.Compare(a.token, b.token), cmp.Compare(a.id, b.id))
	})
	refs := g.sortedRefs()
	if len(refs) != len(want) {
		t.Fatalf("%d refs, want %d", len(refs), len(want))
	}
	for i, ref := range refs {
		tok, id := g.entry(ref)
		if !bytes.Equal(tok, want[i].token) || string(id) != want[i].id {
			t.Fatalf("entry %d = %x/%s, want %x/%s", i, tok, id, want[i].token, want[i].id)
		}
	}
}

// A bulk load keeps the writer's statement journals in memory (temp_store
// MEMORY: a multi-row INSERT's journal otherwise spills to a temporary file
// past 64 KiB, as many bytes again written as the load); before it and
// after EndBulk the writer is back to the default (temporary files: an
// index build's sort is not held in memory). Read from the writer's one
// connection, at each step.
func TestBulkLoadTempStore(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tempStore := func() int {
		t.Helper()
		var v int
		if err := s.w.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	const deflt, memory = 0, 2
	for _, step := range []struct {
		name string
		do   func() error
		want int
	}{
		{"open", func() error { return nil }, deflt},
		{"begin", func() error { return s.BeginBulk(ctx) }, memory},
		{"load", func() error { return s.LoadRecords(ctx, benchRecords(20, 0), nil) }, memory},
		{"end", func() error { return s.EndBulk(ctx) }, deflt},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := tempStore(); got != step.want {
			t.Errorf("after %s: temp_store %d, want %d", step.name, got, step.want)
		}
	}
}
