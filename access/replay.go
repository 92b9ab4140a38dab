package access

import (
	"container/heap"
	"crypto/sha256"
	"sync"
	"time"
)

// replayCache remembers the proofs used in this process until they would
// be stale anyway. It is bounded: when full of live entries it refuses new
// proofs (fails closed) rather than forgetting one that could be replayed.
//
// A proof is its SHA-256 (of the key's thumbprint and the jti), kept in a
// map and a heap by expiry that hold no pointers, so that the garbage
// collector does not visit the hundreds of thousands of live entries of a
// busy server one by one at every cycle; and the expired ones are dropped
// a few at every add, from the heap's head, instead of a walk of the whole
// map under the lock.
type replayCache struct {
	mu  sync.Mutex
	max int
	m   map[replayKey]int64 // unix nanos the entry lives until
	exp replayExpiries
}

type replayKey [sha256.Size]byte

type replayResult int

const (
	replayNew replayResult = iota
	replaySeen
	replayFull
)

// replaySweep is how many expired entries an add drops at most (more than
// it adds, so the cache holds about the live entries).
const replaySweep = 4

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, m: map[replayKey]int64{}}
}

// add records key as used until until, unless it is live already (seen) or
// the cache is full of live entries (full).
func (c *replayCache) add(key replayKey, until, now time.Time) replayResult {
	at := now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.m[key]; ok && at < exp {
		return replaySeen
	}
	n := replaySweep
	if len(c.m) >= c.max {
		n = len(c.exp) // full: drop every expired entry before refusing
	}
	for ; n > 0 && len(c.exp) > 0 && c.exp[0].until <= at; n-- {
		e := heap.Pop(&c.exp).(replayEntry)
		if c.m[e.key] == e.until {
			delete(c.m, e.key)
		}
	}
	if len(c.m) >= c.max {
		if _, ok := c.m[key]; !ok {
			return replayFull
		}
	}
	c.m[key] = until.UnixNano()
	heap.Push(&c.exp, replayEntry{until: until.UnixNano(), key: key})
	return replayNew
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

type replayEntry struct {
	until int64
	key   replayKey
}

// replayExpiries is a min-heap of entries by expiry. A key used again
// after it expired has two entries until the older one is popped.
type replayExpiries []replayEntry

func (h replayExpiries) Len() int           { return len(h) }
func (h replayExpiries) Less(i, j int) bool { return h[i].until < h[j].until }
func (h replayExpiries) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *replayExpiries) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *replayExpiries) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
