package sqlite

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// The DPoP replay record of concurrent requests, before and after group
// commit: each UseOnce is durable when it returns (synchronous=FULL).
func BenchmarkUseOnceParallel(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	b.SetParallelism(8) // 8 x GOMAXPROCS concurrent requests
	defer cpuPerOp(b)()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := make([]byte, 32)
		for pb.Next() {
			rand.Read(key)
			if ok, err := s.UseOnce(ctx, key, now.Add(time.Minute), now); err != nil || !ok {
				b.Errorf("UseOnce: %v %v", ok, err)
				return
			}
		}
	})
}

// The audit append and the replay record of concurrent requests together,
// as a DPoP hot read makes them.
func BenchmarkUseOnceAndAuditParallel(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	var mu sync.Mutex
	var idx uint64
	b.SetParallelism(8)
	defer cpuPerOp(b)()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := make([]byte, 32)
		for pb.Next() {
			rand.Read(key)
			if ok, err := s.UseOnce(ctx, key, now.Add(time.Minute), now); err != nil || !ok {
				b.Errorf("UseOnce: %v %v", ok, err)
				return
			}
			// The audit log has one appender: appends are serialised.
			mu.Lock()
			e := sekisho.AuditEntry{Index: idx, Leaf: key, Time: now, RequestID: "r", Org: "o", Principal: "p", Device: "d", Decision: "allow", Records: []string{"rec"}, RecordOrgs: []string{"o"}}
			err := s.AppendAudit(ctx, []sekisho.AuditEntry{e}, nil)
			if err == nil {
				idx++
			}
			mu.Unlock()
			if err != nil {
				b.Errorf("AppendAudit: %v", err)
				return
			}
		}
	})
}

// cpuPerOp reports the process's CPU time (user+system) per operation: on
// a shared machine the wall time per operation says more about the other
// tenants than about the code.
func cpuPerOp(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64((cpu()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}
