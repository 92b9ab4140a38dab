package sqlite_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sekisho/sekisho/sqlite"
)

// BenchmarkReplayGC is the time of a garbage collection while the store
// holds the replay keys of a server at ~3,000 DPoP reads a second (200,000
// proofs of the last 65 s): what each cycle of its collector pays for
// them.
func BenchmarkReplayGC(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	for i := range 200_000 {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(i))
		k := sha256.Sum256(n[:])
		if ok, err := s.UseOnce(ctx, k[:], now.Add(65*time.Second), now); err != nil || !ok {
			b.Fatalf("UseOnce %d: %v %v", i, ok, err)
		}
	}
	for b.Loop() {
		runtime.GC()
	}
}
