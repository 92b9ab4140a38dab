package sqlite_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/sqlite"
)

// BenchmarkDPoPReadWrites1M is the durable writes of the DPoP hot read in a
// running server's steady state: the 1M log of BenchmarkHotReadWrites1M,
// and a replay table that already holds what a server at ~1,800 DPoP
// reads/s holds (120,000 proofs of the last 65 s, expiring at that rate
// while the benchmark runs, so that its inserts are matched by expiries as
// on a server, not a table that only grows). 16 requests in flight, each
// records its proof's jti (UseOnce) and appends its read's audit event,
// waiting until it is durable. It reports the process's CPU time per read
// and the events one commit served.
func BenchmarkDPoPReadWrites1M(b *testing.B) {
	tmpl, ids := hot1MTemplate(b)
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "db")
	if err := copyFile(path, tmpl); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if err := fillReplay(ctx, path, 120_000, now); err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, err := audit.New(ctx, st, nil, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	use := func() {
		var jti [32]byte
		rand.Read(jti[:])
		now := time.Now()
		if ok, err := st.UseOnce(ctx, jti[:], now.Add(65*time.Second), now); err != nil || !ok {
			b.Errorf("UseOnce: %v %v", ok, err)
		}
	}
	// Warm the writer's cache as a running server's is.
	for i := range 200 {
		use()
		if _, err := l.Append(ctx, readEvent(i, ids)); err != nil {
			b.Fatal(err)
		}
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, e0 := l.Stats()
	b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 requests in flight
	b.ResetTimer()
	cpu0 := cpu()
	var n sync.Mutex
	next := 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n.Lock()
			i := next
			next++
			n.Unlock()
			use()
			if _, err := l.Append(ctx, readEvent(i, ids)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpu()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
	c1, e1 := l.Stats()
	if c1 > c0 {
		b.ReportMetric(float64(e1-e0)/float64(c1-c0), "events/commit")
	}
}

// fillReplay writes n replay entries of random 32-byte keys into the
// database at path (before the store opens it), their expiries spread
// evenly over the 65 s after now: the table of a server that has recorded
// n proofs in the last 65 s.
func fillReplay(ctx context.Context, path string, n int, now time.Time) error {
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO replay (key, expires) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	for i := range n {
		rand.Read(key)
		exp := now.Add(time.Duration(i) * 65 * time.Second / time.Duration(n))
		if _, err := st.ExecContext(ctx, key, exp.UnixMicro()); err != nil {
			return err
		}
	}
	return tx.Commit()
}
