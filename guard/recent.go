package guard

import "crypto/sha256"

// recentIDs remembers the request ids charged on this node, so that their
// events are not counted again when the audit log is folded in (Sync). It
// is bounded in time and in count: an id is forgotten once a Sync that
// began ownGrace after it was charged has read every log (its events were
// folded in), or once max newer ids were charged, whichever comes first;
// the oldest goes first. Forgetting an id early can only make the guard
// count that request's events a second time if they are folded in later
// (a stricter budget, never a looser one); at the default bound and 1,000
// requests a second an id is kept 100 s, while the events of a request are
// in the log before it is answered and folded in within SyncInterval.
//
// An id is kept as its SHA-256, in a map and a queue that hold no
// pointers: the garbage collector does not visit a busy server's hundred
// thousand ids one by one at every cycle, as it did strings.
type recentIDs struct {
	max  int
	m    map[recentKey]struct{}
	q    []recentID // oldest first from head
	head int
}

type recentKey [sha256.Size]byte

type recentID struct {
	id recentKey
	at int64 // unix nanos
}

// DefaultMaxRequestIDs bounds the request ids a Guard remembers (about
// 100 bytes each: 10 MiB).
const DefaultMaxRequestIDs = 100_000

func newRecentIDs(max int) *recentIDs {
	if max <= 0 {
		max = DefaultMaxRequestIDs
	}
	return &recentIDs{max: max, m: map[recentKey]struct{}{}}
}

// add remembers id, charged at at; an id already remembered keeps its
// first time.
func (r *recentIDs) add(id string, at int64) {
	k := recentKey(sha256.Sum256([]byte(id)))
	if _, ok := r.m[k]; ok {
		return
	}
	r.m[k] = struct{}{}
	r.q = append(r.q, recentID{k, at})
	for len(r.m) > r.max {
		r.pop()
	}
}

func (r *recentIDs) has(id string) bool {
	_, ok := r.m[sha256.Sum256([]byte(id))]
	return ok
}

// expire forgets the ids charged before cut (unix nanos).
func (r *recentIDs) expire(cut int64) {
	for r.head < len(r.q) && r.q[r.head].at < cut {
		r.pop()
	}
}

// pop forgets the oldest id, and compacts the queue once its dead head
// is as long as its live part (so the queue holds at most 2 x max).
func (r *recentIDs) pop() {
	delete(r.m, r.q[r.head].id)
	r.q[r.head] = recentID{}
	r.head++
	if r.head >= len(r.q)-r.head {
		n := copy(r.q, r.q[r.head:])
		clear(r.q[n:])
		r.q, r.head = r.q[:n], 0
	}
}

func (r *recentIDs) len() int { return len(r.m) }
