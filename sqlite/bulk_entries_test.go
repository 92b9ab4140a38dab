package sqlite

import (
	"bytes"
	"cmp"
	"math/rand/v2"
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
