package vault

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sekisho/sekisho/keys"
)

// The DEK cache is bounded in count (least recently used out first) and in
// time, finds a key only with the same wrapped bytes, wipes what it evicts,
// hands out copies, and drops an org's region on purge.
func TestDEKCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newDEKCache(3, time.Minute, func() time.Time { return now })
	ad := func(i int) keys.DEKAD {
		return keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprint(i), KEKVersion: 1}
	}
	var held [][]byte
	for i := range 3 {
		dek := bytes.Repeat([]byte{byte(i + 1)}, 32)
		c.put(ad(i), []byte("w"), dek)
		held = append(held, dek)
	}
	if c.get(ad(0), []byte("other wrapping")) != nil {
		t.Fatal("a key was found under other wrapped bytes")
	}
	got := c.get(ad(0), []byte("w")) // 0 is now the most recently used
	if !bytes.Equal(got, held[0]) {
		t.Fatalf("get = %x", got)
	}
	clear(got)
	if !bytes.Equal(c.get(ad(0), []byte("w")), held[0]) {
		t.Fatal("clearing the copy changed the cached key")
	}
	// Record 1's key is in a slot now (control), and in none once evicted.
	holds := func(dek []byte) bool {
		for _, slab := range c.slabs {
			for _, e := range slab {
				if bytes.Equal(e.dek[:], dek) {
					return true
				}
			}
		}
		return false
	}
	if !holds(held[1]) {
		t.Fatal("record 1's key is not in any slot")
	}
	c.put(ad(3), []byte("w"), held[0])
	if c.len() != 3 || c.get(ad(1), []byte("w")) != nil {
		t.Fatalf("the least recently used key was not evicted (len %d)", c.len())
	}
	if holds(held[1]) {
		t.Fatal("the evicted key was not wiped")
	}
	now = now.Add(2 * time.Minute)
	if c.get(ad(0), []byte("w")) != nil {
		t.Fatal("an expired key was returned")
	}
	now = now.Add(-2 * time.Minute)
	c.put(keys.DEKAD{Org: "affiliate", Region: "jp", Collection: "users", RecordID: "x", KEKVersion: 1}, []byte("w"), held[2])
	c.purge("operator", "jp")
	if c.len() != 1 {
		t.Fatalf("after purging operator/jp %d keys are left, want affiliate's only", c.len())
	}
	off := newDEKCache(-1, 0, time.Now)
	off.put(ad(0), []byte("w"), held[2])
	if off.get(ad(0), []byte("w")) != nil || off.len() != 0 {
		t.Fatal("a disabled cache kept a key")
	}
}

// However many distinct records are read, the cache holds at most its
// bound, the most recently used ones; the control is the same keys in a
// cache whose bound is above them: it keeps them all.
func TestDEKCacheStaysWithinItsBound(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	ad := func(i int) keys.DEKAD {
		return keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprintf("r%06d", i), KEKVersion: 1}
	}
	dek := bytes.Repeat([]byte{7}, 32)
	const distinct, bound = 20_000, 1_000
	for _, tc := range []struct {
		name  string
		max   int
		want  int
		slots int // allocated: a cache bounded below a slab's size has one slab of its bound
	}{{"bounded", bound, bound, bound}, {"control: bound above the keys", 2 * distinct, distinct, 5 * dekSlab}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newDEKCache(tc.max, time.Hour, clock)
			for i := range distinct {
				c.put(ad(i), []byte("w"), dek)
				if c.len() > tc.max {
					t.Fatalf("after %d keys the cache holds %d, bound %d", i+1, c.len(), tc.max)
				}
			}
			if c.len() != tc.want || len(c.m) != tc.want {
				t.Fatalf("cache holds %d keys (map %d), want %d", c.len(), len(c.m), tc.want)
			}
			slots := 0
			for _, sl := range c.slabs {
				slots += len(sl)
			}
			if slots != tc.slots {
				t.Fatalf("%d slots allocated for a bound of %d, want %d", slots, tc.max, tc.slots)
			}
			if c.get(ad(distinct-1), []byte("w")) == nil {
				t.Fatal("the most recent key is not cached")
			}
			if got := c.get(ad(0), []byte("w")) != nil; got != (tc.want == distinct) {
				t.Fatalf("the first key cached: %v, want %v", got, tc.want == distinct)
			}
		})
	}
}

// Expired keys leave the cache without anyone asking for them: the next
// put or get after a TTL sweeps them. Control: before the TTL they stay.
func TestDEKCacheSweepsExpiredKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newDEKCache(1000, time.Minute, func() time.Time { return now })
	ad := func(i int) keys.DEKAD {
		return keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprint(i), KEKVersion: 1}
	}
	for i := range 100 {
		c.put(ad(i), []byte("w"), bytes.Repeat([]byte{1}, 32))
	}
	now = now.Add(30 * time.Second)
	c.get(ad(1000), []byte("w"))
	if c.len() != 100 {
		t.Fatalf("before the TTL %d keys are left, want 100", c.len())
	}
	now = now.Add(61 * time.Second)
	c.get(ad(1000), []byte("w")) // a miss: only the sweep removes the others
	if c.len() != 0 {
		t.Fatalf("after the TTL %d expired keys are still held", c.len())
	}
}

// BenchmarkDEKCacheEntryBytes reports the heap one cached key costs
// (README "Memory budget"): the heap growth of a cache filled with 100,000
// distinct keys, divided by them.
func BenchmarkDEKCacheEntryBytes(b *testing.B) {
	const n = 100_000
	dek := bytes.Repeat([]byte{7}, 32)
	wrapped := bytes.Repeat([]byte{9}, 60)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newDEKCache(n, time.Hour, time.Now)
		for i := range n {
			c.put(keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprintf("01JD%022d", i), KEKVersion: 1}, wrapped, dek)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		runtime.KeepAlive(c)
	}
}

// BenchmarkDEKCacheGC is the time of a garbage collection while a full
// cache (100,000 keys) is live: what each cycle of a server's collector
// pays for the cache.
func BenchmarkDEKCacheGC(b *testing.B) {
	const n = 100_000
	dek := bytes.Repeat([]byte{7}, 32)
	wrapped := bytes.Repeat([]byte{9}, 60)
	c := newDEKCache(n, time.Hour, time.Now)
	for i := range n {
		c.put(keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprintf("01JD%022d", i), KEKVersion: 1}, wrapped, dek)
	}
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(c)
}
