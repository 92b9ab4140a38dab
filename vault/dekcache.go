package vault

import (
	"container/list"
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
// 32-byte key, its org and region (for purge) and the LRU links, about 260
// bytes (BenchmarkDEKCacheEntryBytes), so the default bound holds ~25 MiB.
type dekCache struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	m     map[dekKey]*list.Element
	lru   *list.List // front: most recently used
	swept time.Time
}

// dekKey is the SHA-256 of the fields that find an entry, length-prefixed.
type dekKey [sha256.Size]byte

type dekEntry struct {
	key         dekKey
	org, region string
	dek         []byte
	expires     time.Time
}

// Defaults of the DEK cache (DefaultDEKCacheSize entries: ~25 MiB).
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
	return &dekCache{max: size, ttl: ttl, now: now, m: map[dekKey]*list.Element{}, lru: list.New()}
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

// sweepLocked drops the expired keys, at most once per ttl.
func (c *dekCache) sweepLocked(now time.Time) {
	if d := now.Sub(c.swept); d < c.ttl && d >= 0 {
		return
	}
	c.swept = now
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if now.After(el.Value.(*dekEntry).expires) {
			c.removeLocked(el)
		}
		el = next
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
	el := c.m[k]
	if el == nil {
		return nil
	}
	e := el.Value.(*dekEntry)
	if now.After(e.expires) {
		c.removeLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return append([]byte(nil), e.dek...)
}

// put keeps a copy of dek.
func (c *dekCache) put(a keys.DEKAD, wrapped, dek []byte) {
	if c.off() {
		return
	}
	k := key(a, wrapped)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweepLocked(now)
	if el := c.m[k]; el != nil {
		c.removeLocked(el)
	}
	c.m[k] = c.lru.PushFront(&dekEntry{key: k, org: a.Org, region: a.Region, dek: append([]byte(nil), dek...), expires: now.Add(c.ttl)})
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
}

func (c *dekCache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*dekEntry)
	delete(c.m, e.key)
	clear(e.dek)
}

// purge drops the keys of (org, region), or every key when org is "".
func (c *dekCache) purge(org, region string) {
	if c.off() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.lru.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*dekEntry); org == "" || e.org == org && e.region == region {
			c.removeLocked(el)
		}
		el = next
	}
}

// len is the number of cached keys (for tests and metrics).
func (c *dekCache) len() int {
	if c.off() {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
