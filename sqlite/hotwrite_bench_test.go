package sqlite_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/sqlite"
)

// BenchmarkHotReadWrites is the durable part of the hot read under load:
// 16 concurrent requests, each appending its audit event through the audit
// log's group commit and waiting until it is durable, while the guard saves
// its per-principal profiles beside them (16 a second, one PutObject each:
// a profile is saved every 50 requests of its principal, so that is about
// 800 requests a second). Events are shaped as a
// read's: a fresh request id, one random record id of 1M, 64 principals.
// It reports the latency percentiles of an append and the events one store
// commit served (events/commit).
func BenchmarkHotReadWrites(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, err := audit.New(ctx, st, nil, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()

	// The guard's profile writes: every second, 16 sequential PutObjects.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		versions := map[string]int64{}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			for i := range 16 {
				id := fmt.Sprintf("bench-svc-%d", i)
				versions[id]++
				if err := st.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindGuardProfile, ID: id, Org: "operator", Version: versions[id], Body: []byte(`{"principal":"` + id + `","windows":{}}`)}); err != nil {
					b.Error(err)
					return
				}
			}
		}
	}()

	var mu sync.Mutex
	var lat []time.Duration
	c0, e0 := l.Stats()
	b.SetParallelism(8) // 8 x GOMAXPROCS(2) = 16 requests in flight
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		rid := make([]byte, 8)
		rec := make([]byte, 8)
		i := 0
		for pb.Next() {
			rand.Read(rid)
			rand.Read(rec)
			p := fmt.Sprintf("bench-svc-%d", i%64)
			i++
			ev := sekisho.Event{RequestID: hex.EncodeToString(rid), Org: "operator", Principal: p, Device: "dev-" + p,
				Purpose: "ops", Action: sekisho.ActionRead, Collection: "users", Records: []string{"u" + hex.EncodeToString(rec)},
				Fields: []string{"display_name", "phone", "email", "birth_date", "country"}, Decision: sekisho.Allow, Policy: "role-service",
				RecordOrgs: []string{"operator"}}
			t0 := time.Now()
			if _, err := l.Append(ctx, ev); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
	c1, e1 := l.Stats()
	if c1 > c0 {
		b.ReportMetric(float64(e1-e0)/float64(c1-c0), "events/commit")
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
