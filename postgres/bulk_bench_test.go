package postgres_test

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/internal/benchcpu"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/postgres"
)

// loadRecords makes n sealed records shaped like an imported user: nine
// field ciphertexts (~1 KB), two blind-index tokens, time-ordered ids.
func loadRecords(n, from int) []*sekisho.SealedRecord {
	now := time.Now().UTC()
	recs := make([]*sekisho.SealedRecord, n)
	for i := range recs {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], uint64(from+i))
		rand.Read(id[8:])
		r := &sekisho.SealedRecord{ID: hex.EncodeToString(id[:]), Collection: "users", Org: "acme", Region: "jp",
			KEKVersion: 1, WrappedDEK: make([]byte, 60), Fields: map[string][]byte{}, Index: map[string][]byte{},
			Version: 1, CreatedAt: now, UpdatedAt: now}
		rand.Read(r.WrappedDEK)
		for j, size := range []int{40, 30, 45, 60, 40, 45, 50, 48, 90} {
			ct := make([]byte, size+28)
			rand.Read(ct)
			r.Fields[fmt.Sprintf("field_%d", j)] = ct
		}
		for _, f := range []string{"phone", "email"} {
			tok := make([]byte, 32)
			rand.Read(tok)
			r.Index[f] = tok
		}
		recs[i] = r
	}
	return recs
}

// An import's store work per record on PostgreSQL: BeginBulk, LoadRecords
// in batches of 1000 with their marks, LoadParallel batches at once (as
// importer.VaultSink), then EndBulk. cpu-ns/op is this process's CPU
// only; the server's is not in it (wall time is, on a shared machine,
// noise: compare within one run).
func BenchmarkLoadRecords(b *testing.B) {
	dsn := pgtest.DSN(b)
	s, err := postgres.Open(b.Context(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	const batch = 1000
	var batches [][]*sekisho.SealedRecord
	for done := 0; done < b.N; done += batch {
		batches = append(batches, loadRecords(min(batch, b.N-done), done))
	}
	if err := s.BeginBulk(ctx); err != nil {
		b.Fatal(err)
	}
	defer serverCPUPerOp(b, dsn)()
	defer benchcpu.PerOp(b)()
	b.ResetTimer()
	sem := make(chan struct{}, s.LoadParallel())
	var wg sync.WaitGroup
	errs := make([]error, len(batches))
	for i, recs := range batches {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			mark := &sekisho.Object{Kind: "import-mark", ID: fmt.Sprintf("job/%08d", i), Org: "acme", Body: []byte(`{}`), Updated: time.Now()}
			errs[i] = s.LoadRecords(ctx, recs, mark)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := s.EndBulk(ctx); err != nil {
		b.Fatal(err)
	}
}

// serverCPUPerOp reports the CPU the PostgreSQL server spent per op
// (server-cpu-ns/op: its postmaster's processes, alive and exited, from
// /proc), when the server runs on this machine and /proc shows it; else
// nothing.
func serverCPUPerOp(b *testing.B, dsn string) func() {
	conn, err := pgx.Connect(b.Context(), dsn)
	if err != nil {
		return func() {}
	}
	var pid int
	err = conn.QueryRow(b.Context(), "SELECT pg_backend_pid()").Scan(&pid)
	conn.Close(b.Context())
	if err != nil {
		return func() {}
	}
	postmaster, ok := procField(pid, 4) // ppid
	if !ok {
		return func() {}
	}
	start, ok := treeCPU(int(postmaster))
	if !ok {
		return func() {}
	}
	return func() {
		if end, ok := treeCPU(int(postmaster)); ok {
			b.ReportMetric(float64(end-start)*1e9/float64(ticksPerSecond)/float64(b.N), "server-cpu-ns/op")
		}
	}
}

const ticksPerSecond = 100 // USER_HZ on Linux

// procField returns field n (1-based, as proc(5) numbers them) of
// /proc/pid/stat.
func procField(pid, n int) (int64, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command (field 2) is in parentheses and may hold spaces.
	rest := string(raw[strings.LastIndexByte(string(raw), ')')+2:])
	f := strings.Fields(rest)
	if n-3 >= len(f) || n < 3 {
		return 0, false
	}
	v, err := strconv.ParseInt(f[n-3], 10, 64)
	return v, err == nil
}

// treeCPU is the CPU ticks of pid (utime, stime and its waited-for
// children's) and of its live children.
func treeCPU(pid int) (int64, bool) {
	var total int64
	for _, n := range []int{14, 15, 16, 17} {
		v, ok := procField(pid, n)
		if !ok {
			return 0, false
		}
		total += v
	}
	children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, c := range strings.Fields(string(children)) {
		cpid, _ := strconv.Atoi(c)
		u, ok1 := procField(cpid, 14)
		st, ok2 := procField(cpid, 15)
		if ok1 && ok2 {
			total += u + st
		}
	}
	return total, true
}
