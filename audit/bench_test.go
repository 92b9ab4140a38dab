package audit

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/sqlite"
	"strconv"
)

func benchStore(b *testing.B, kind string) sekisho.AuditStore {
	if kind == "memory" {
		return newFakeStore()
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkAppend measures durable appends from 64 concurrent appenders
// (group commit) and from one (a commit per event), on SQLite with
// synchronous=FULL and on the in-memory store (the Log's own cost).
func BenchmarkAppend(b *testing.B) {
	for _, kind := range []string{"sqlite", "memory"} {
		for _, par := range []int{1, 64} {
			b.Run(kind+"/appenders="+strconv.Itoa(par), func(b *testing.B) {
				store := benchStore(b, kind)
				l := newTestLog(b, store, Options{})
				ev := sampleEvent()
				b.SetParallelism(par) // par × GOMAXPROCS goroutines
				if par == 1 {
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if _, err := l.Append(context.Background(), ev); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := l.Append(context.Background(), ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkProofs measures inclusion and consistency proofs in a log of
// 100,000 events on SQLite.
func BenchmarkProofs(b *testing.B) {
	ctx := context.Background()
	store := benchStore(b, "sqlite")
	l := newTestLog(b, store, Options{})
	const size = 100_000
	evs := make([]sekisho.Event, 1000)
	for i := range evs {
		evs[i] = event(i)
	}
	for n := 0; n < size; n += len(evs) {
		if _, err := l.AppendBatch(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("inclusion", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := l.InclusionProof(ctx, uint64(i*7919)%size, size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := l.ConsistencyProof(ctx, 1+uint64(i*7919)%(size-1), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify-100k", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rep, err := Verify(ctx, store, l.opts.Verifier, nil)
			if err != nil || !rep.OK {
				b.Fatal(err, rep)
			}
		}
	})
}
