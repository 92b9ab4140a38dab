package vault

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/sekisho/sekisho/keys"
)

// dekCache keeps unwrapped data keys, so that a hot record is not unwrapped
// by the key provider (an HSM round trip) on every read. It is bounded in
// count (least recently used goes first) and in time (an entry lives at
// most ttl after it was unwrapped). An entry is found only with the same
// wrapped key bytes, so an edited or re-wrapped row never hits a stale one.
// Evicted keys are overwritten with zeros; callers get copies (and clear
// them when done), so an eviction never changes a key in use. Expired keys
// are also swept at least every ttl (by the next get or put), so that an
// idle cache does not keep unwrapped keys past their time.
//
// Its memory is bounded by max: an entry is the SHA-256 of what finds it
// (org, region, collection, record id, KEK version and wrapped key), the
// key itself (up to 32 bytes; a longer one is not cached), its org and
// region (an index into the few pairs seen, for purge), its expiry and the
// LRU links, ~143 bytes (BenchmarkDEKCacheEntryBytes), so the default
// bound holds ~14 MiB. The entries live in slabs of fixed-size slots that
// hold no pointers, found through a map of arrays: the garbage collector
// does not visit a full cache's hundred thousand entries one by one at
// every cycle, as it did list elements, and a slot freed is reused in
// place, so no copy of a key is left behind in memory that was moved.
type dekCache struct {
	max int
	ttl time.Duration
	now func() time.Time
	// base is the time expiries count from (its monotonic reading, when
	// now gives one: a wall clock set back does not keep keys longer).
	base time.Time

	mu         sync.Mutex
	m          map[dekKey]int32    // the slot of every cached key
	slabs      [][]dekSlot         // slot i is slabs[i/dekSlab][i%dekSlab]
	free       []int32             // slots of the slabs not in use
	head, tail int32               // most and least recently used, or -1
	scopeIDs   map[dekScope]uint32 // the (org, region) pairs of the entries
	swept      time.Time
}

// dekKey is the SHA-256 of the fields that find an entry, length-prefixed.
type dekKey [sha256.Size]byte

type dekScope struct{ org, region string }

// dekSlot is one cached key.
type dekSlot struct {
	key        dekKey
	dek        [maxCachedDEK]byte
	n          uint8 // len of the key in dek
	scope      uint32
	expires    time.Duration // since base
	prev, next int32         // towards head and tail, or -1
}

const (
	maxCachedDEK = 32   // bytes: an AES-256 key
	dekSlab      = 4096 // slots per slab
)

// Defaults of the DEK cache (DefaultDEKCacheSize entries: ~14 MiB).
const (
	DefaultDEKCacheSize = 100000
	DefaultDEKCacheTTL  = 5 * time.Minute
)

func newDEKCache(size int, ttl time.Duration, now func() time.Time) *dekCache {
	if size == 0 {
		size = DefaultDEKCacheSize
	}
	if ttl == 0 {
		ttl = DefaultDEKCacheTTL
	}
	return &dekCache{max: size, ttl: ttl, now: now, base: now(), m: map[dekKey]int32{}, head: -1, tail: -1, scopeIDs: map[dekScope]uint32{}}
}

func (c *dekCache) off() bool { return c == nil || c.max < 0 || c.ttl < 0 }

func key(a keys.DEKAD, wrapped []byte) dekKey {
	h := sha256.New()
	var n [8]byte
	for _, f := range []string{a.Org, a.Region, a.Collection, a.RecordID} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	binary.BigEndian.PutUint64(n[:], uint64(a.KEKVersion))
	h.Write(n[:])
	h.Write(wrapped)
	var k dekKey
	h.Sum(k[:0])
	return k
}

func (c *dekCache) slot(i int32) *dekSlot { return &c.slabs[i/dekSlab][i%dekSlab] }

// sweepLocked drops the expired keys, at most once per ttl.
func (c *dekCache) sweepLocked(now time.Time) {
	if d := now.Sub(c.swept); d < c.ttl && d >= 0 {
		return
	}
	c.swept = now
	at := now.Sub(c.base)
	for i := c.head; i >= 0; {
		e := c.slot(i)
		next := e.next
		if at > e.expires {
			c.removeLocked(i)
		}
		i = next
	}
}

// get returns a copy of the cached key, or nil.
func (c *dekCache) get(a keys.DEKAD, wrapped []byte) []byte {
	if c.off() {
		return nil
	}
	k := key(a, wrapped)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweepLocked(now)
	i, ok := c.m[k]
	if !ok {
		return nil
	}
	e := c.slot(i)
	if now.Sub(c.base) > e.expires {
		c.removeLocked(i)
		return nil
	}
	c.unlinkLocked(i)
	c.pushFrontLocked(i)
	return append([]byte(nil), e.dek[:e.n]...)
}

// put keeps a copy of dek (a key longer than 32 bytes is not cached).
func (c *dekCache) put(a keys.DEKAD, wrapped, dek []byte) {
	if c.off() || len(dek) > maxCachedDEK {
		return
	}
	k := key(a, wrapped)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweepLocked(now)
	if i, ok := c.m[k]; ok {
		c.removeLocked(i)
	}
	for len(c.m) >= c.max {
		c.removeLocked(c.tail)
	}
	if len(c.free) == 0 {
		// A new slab, never a larger copy of the old ones. A cache
		// bounded below a slab's size has one slab of its bound: it never
		// holds more slots in use, and a slot evicted is free again.
		size := int32(min(dekSlab, c.max))
		base := int32(len(c.slabs) * dekSlab)
		c.slabs = append(c.slabs, make([]dekSlot, size))
		for j := size - 1; j >= 0; j-- {
			c.free = append(c.free, base+j)
		}
	}
	i := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	e := c.slot(i)
	*e = dekSlot{key: k, scope: c.scopeLocked(a.Org, a.Region), expires: now.Sub(c.base) + c.ttl}
	e.n = uint8(copy(e.dek[:], dek))
	c.m[k] = i
	c.pushFrontLocked(i)
}

func (c *dekCache) scopeLocked(org, region string) uint32 {
	sc := dekScope{org, region}
	id, ok := c.scopeIDs[sc]
	if !ok {
		id = uint32(len(c.scopeIDs))
		c.scopeIDs[sc] = id
	}
	return id
}

func (c *dekCache) pushFrontLocked(i int32) {
	e := c.slot(i)
	e.prev, e.next = -1, c.head
	if c.head >= 0 {
		c.slot(c.head).prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}

func (c *dekCache) unlinkLocked(i int32) {
	e := c.slot(i)
	if e.prev >= 0 {
		c.slot(e.prev).next = e.next
	} else {
		c.head = e.next
	}
	if e.next >= 0 {
		c.slot(e.next).prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

// removeLocked drops slot i and wipes its key.
func (c *dekCache) removeLocked(i int32) {
	c.unlinkLocked(i)
	e := c.slot(i)
	delete(c.m, e.key)
	*e = dekSlot{prev: -1, next: -1}
	c.free = append(c.free, i)
}

// purge drops the keys of (org, region), or every key when org is "".
func (c *dekCache) purge(org, region string) {
	if c.off() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.scopeIDs[dekScope{org, region}]
	if org != "" && !ok {
		return
	}
	for i := c.head; i >= 0; {
		e := c.slot(i)
		next := e.next
		if org == "" || e.scope == id {
			c.removeLocked(i)
		}
		i = next
	}
}

// len is the number of cached keys (for tests and metrics).
func (c *dekCache) len() int {
	if c.off() {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
