package keys

import (
	"bytes"
	"testing"

	"github.com/sekisho/sekisho/internal/benchcpu"
)

// The blind-index token of an imported record's lookup value: one-shot
// (hmac.New per value) and through a BlindIndexer.
func BenchmarkBlindIndexToken(b *testing.B) {
	key := mustKey(b)
	v := []byte(`"+819012345678"`)
	b.Run("impl=one-shot", func(b *testing.B) {
		b.ReportAllocs()
		defer benchcpu.PerOp(b)()
		for b.Loop() {
			BlindIndex(key, v)
		}
	})
	b.Run("impl=indexer", func(b *testing.B) {
		ix := NewBlindIndexer(key)
		b.ReportAllocs()
		defer benchcpu.PerOp(b)()
		for b.Loop() {
			ix.Index(v)
		}
	})
}

// A BlindIndexer gives BlindIndex's tokens, from one goroutine or many.
func TestBlindIndexerMatchesBlindIndex(t *testing.T) {
	key := mustKey(t)
	ix := NewBlindIndexer(key)
	other := NewBlindIndexer(mustKey(t))
	done := make(chan bool)
	for g := range 4 {
		go func() {
			ok := true
			for i := range 200 {
				v := []byte{byte(g), byte(i), 'x'}
				if !bytes.Equal(ix.Index(v), BlindIndex(key, v)) {
					ok = false
				}
			}
			done <- ok
		}()
	}
	for range 4 {
		if !<-done {
			t.Fatal("BlindIndexer.Index differs from BlindIndex")
		}
	}
	// Control: another key gives another token.
	if bytes.Equal(other.Index([]byte("x")), ix.Index([]byte("x"))) {
		t.Fatal("two index keys gave the same token")
	}
}
