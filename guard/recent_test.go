package guard

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// However many distinct requests are charged, the guard remembers at most
// its bound of request ids, the newest; the control is the same ids under
// a bound above them: all are remembered.
func TestRequestIDsStayWithinBound(t *testing.T) {
	const distinct, bound = 50_000, 1_000
	for _, tc := range []struct {
		name string
		max  int
		want int
	}{{"bounded", bound, bound}, {"control: bound above the ids", 2 * distinct, distinct}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecentIDs(tc.max)
			for i := range distinct {
				r.add(fmt.Sprintf("req-%08d", i), int64(i))
				if r.len() > tc.max || len(r.q) > 2*tc.max+1 {
					t.Fatalf("after %d ids: %d remembered, queue %d; bound %d", i+1, r.len(), len(r.q), tc.max)
				}
			}
			if r.len() != tc.want || len(r.q)-r.head != tc.want {
				t.Fatalf("%d ids remembered (queue %d), want %d", r.len(), len(r.q)-r.head, tc.want)
			}
			if !r.has(fmt.Sprintf("req-%08d", distinct-1)) {
				t.Fatal("the newest id is forgotten")
			}
			if got := r.has("req-00000000"); got != (tc.want == distinct) {
				t.Fatalf("the oldest id remembered: %v, want %v", got, tc.want == distinct)
			}
		})
	}
}

// Ids are forgotten once older than the cut, and not before.
func TestRequestIDsExpire(t *testing.T) {
	r := newRecentIDs(0)
	for i := range 100 {
		r.add(fmt.Sprint(i), int64(i))
	}
	r.add("5", 1000) // already there: keeps its first time
	r.expire(50)
	if r.len() != 50 || r.has("49") || !r.has("50") || r.has("5") {
		t.Fatalf("after expiring below 50: %d left, 49 %v, 50 %v, 5 %v", r.len(), r.has("49"), r.has("50"), r.has("5"))
	}
	r.expire(1000)
	if r.len() != 0 {
		t.Fatalf("%d ids left after expiring all", r.len())
	}
}

// The guard's per-key state of principals, devices and lookups that went
// idle for more than a day (every bucket expired) is dropped; a key that
// read within the day and a grant's window (its total budget) stay. The
// controls are the same guard swept within the day (the windows stay) and
// within ten minutes (the recent lookups stay too).
func TestSweepDropsIdleKeys(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const keys = 1_000
	fill := func(now *time.Time) *Guard {
		g := New(Config{Now: func() time.Time { return *now }})
		for i := range keys {
			g.win(g.windows, fmt.Sprintf("p:svc-%d", i)).add(t0.UnixNano(), []string{"users/r1"})
			g.win(g.windows, fmt.Sprintf("d:dev-%d", i)).add(t0.UnixNano(), []string{"users/r1"})
			g.win(g.denials, fmt.Sprintf("p:svc-%d", i)).add(t0.UnixNano(), []string{"req"})
			g.lookups[fmt.Sprintf("svc-%d", i)] = []lookupVal{{field: "phone", at: t0.UnixNano()}}
		}
		g.win(g.windows, "g:grant-1").add(t0.UnixNano(), []string{"users/r1"})
		return g
	}
	for _, tc := range []struct {
		name                      string
		after                     time.Duration
		windows, denials, lookups int
	}{
		{"idle for a day and a bucket", 24*time.Hour + 16*time.Minute, 2, 0, 0},
		{"control: within the day (lookups are kept ten minutes)", 23 * time.Hour, 2*keys + 2, keys, 0},
		{"control: within ten minutes", 5 * time.Minute, 2*keys + 2, keys, keys},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			g := fill(&now)
			now = t0.Add(tc.after)
			g.win(g.windows, "p:active").add(now.UnixNano(), []string{"users/r2"})
			g.mu.Lock()
			g.sweepLocked(now)
			g.mu.Unlock()
			if len(g.windows) != tc.windows || len(g.denials) != tc.denials {
				t.Fatalf("%d windows and %d denial windows left, want %d and %d", len(g.windows), len(g.denials), tc.windows, tc.denials)
			}
			if g.windows["p:active"] == nil || g.windows["g:grant-1"] == nil {
				t.Fatal("the active principal's or the grant's window was dropped")
			}
			if len(g.lookups) != tc.lookups {
				t.Fatalf("%d principals' recent lookups left, want %d", len(g.lookups), tc.lookups)
			}
		})
	}
}

// BenchmarkRecentIDsGC is the time of a garbage collection while a full
// set of request ids (DefaultMaxRequestIDs) is live: what each cycle of a
// server's collector pays for it.
func BenchmarkRecentIDsGC(b *testing.B) {
	r := newRecentIDs(DefaultMaxRequestIDs)
	for i := range DefaultMaxRequestIDs {
		var id [16]byte
		binary.BigEndian.PutUint64(id[8:], uint64(i))
		r.add(hex.EncodeToString(id[:]), int64(i))
	}
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(r)
}
