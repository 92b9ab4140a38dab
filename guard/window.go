package guard

import (
	"hash/maphash"
	"time"

	"github.com/axiomhq/hyperloglog"
)

// A window counts records and distinct data subjects over the last minute,
// hour and day, and in total, for one key (a principal, a device, a grant).
//
// Its memory is bounded by its number of buckets, not by the requests it
// counts: each of the three spans is a ring of time buckets (the minute in
// 60 buckets of a second, the hour in 60 of a minute, the day in 96 of a
// quarter of an hour) holding a record counter, and the distinct subjects of
// a span are a set of 64-bit subject hashes, each with the newest bucket it
// was seen in, of at most exactSubjects entries. Past that many distinct
// subjects in a span, the span also keeps a HyperLogLog sketch per bucket
// (github.com/axiomhq/hyperloglog, precision sketchPrecision) and counts
// from their union, until a whole span has passed without a subject that
// did not fit in the set.
//
// What is counted exactly and what is not:
//   - Records are exact, over a window that is the span plus at most one
//     bucket before it (a second for the minute, a minute for the hour, a
//     quarter of an hour for the day): a bucket is forgotten only once all
//     of it is older than the span. So a budget may hold for up to one bucket
//     longer than its span, never shorter.
//   - Distinct subjects per minute, hour and day are exact (over the same
//     window, and up to 64-bit hash collisions: below 1e-11 at the limit)
//     while the span holds at most exactSubjects (8192) of them, which is
//     more than every default subject budget. Beyond it they are a
//     HyperLogLog estimate (standard error about 1.6%) and never less than
//     the subjects still in the exact set, plus the request's own subjects
//     counted as new.
//   - Records in total are exact; distinct subjects in total are a
//     HyperLogLog estimate (precision 14, standard error about 0.8%; for a
//     few thousand subjects its sparse form is exact in practice). No budget
//     uses it.
//
// Events are counted at the newest time the window has seen: an event older
// than that (a late one from another node, or a clock stepped back) is
// counted at that newest time, so a clock step never makes a budget forget.
type window struct {
	seed   maphash.Seed
	spans  [3]span
	newest int64 // newest unix nanos seen
	total  int64
	seen   *hyperloglog.Sketch // every subject ever counted (estimate)
}

// exactSubjects is the exactness limit: the distinct subjects per span
// counted exactly. It is above every default subject budget (5000 a day),
// so the default budgets decide exactly.
const exactSubjects = 8192

// sketchPrecision is the precision of the per-bucket sketches (2^12
// registers, 4 KiB dense, standard error 1.04/sqrt(4096) = 1.6%).
const sketchPrecision = 12

// spanDefs are the three spans: bucket width and number of buckets.
var spanDefs = [3]struct {
	width time.Duration
	n     int
}{{time.Second, 60}, {time.Minute, 60}, {15 * time.Minute, 96}}

func newWindow() *window {
	w := &window{seed: maphash.MakeSeed()}
	for i, d := range spanDefs {
		w.spans[i] = newSpan(int64(d.width), d.n)
	}
	return w
}

// hashes hashes subject ids with the window's seed.
func (w *window) hashes(ids []string) []uint64 {
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = maphash.String(w.seed, id)
	}
	return out
}

// add counts ids read at now.
func (w *window) add(now int64, ids []string) {
	now = max(now, w.newest)
	w.newest = now
	hs := w.hashes(ids)
	for i := range w.spans {
		w.spans[i].add(now, hs)
	}
	w.total += int64(len(ids))
	if len(hs) > 0 {
		if w.seen == nil {
			w.seen = hyperloglog.New14()
		}
		for _, h := range hs {
			w.seen.InsertHash(h)
		}
	}
}

// Usage is a key's counters at one instant.
type Usage struct {
	RecordsMinute, RecordsHour, RecordsDay, RecordsTotal     int64
	SubjectsMinute, SubjectsHour, SubjectsDay, SubjectsTotal int64
}

// usage returns the counters at now, as if ids were added too, except
// SubjectsTotal (see subjectsTotal), which no budget uses.
func (w *window) usage(now int64, ids []string) Usage {
	now = max(now, w.newest)
	hs := w.hashes(ids)
	var r, s [3]int64
	for i := range w.spans {
		r[i], s[i] = w.spans[i].usage(now, hs)
	}
	u := Usage{RecordsMinute: r[0], RecordsHour: r[1], RecordsDay: r[2], RecordsTotal: w.total + int64(len(ids)),
		SubjectsMinute: s[0], SubjectsHour: s[1], SubjectsDay: s[2]}
	return u
}

// subjectsTotal estimates the distinct subjects ever counted. It is kept
// off the request path: an estimate may compact the sketch.
func (w *window) subjectsTotal() int64 {
	if w.seen == nil {
		return 0
	}
	return int64(w.seen.Estimate())
}

// span is one sliding window as a ring of time buckets. At bucket c (the
// bucket of the newest time seen) it holds buckets c-n to c.
type span struct {
	width int64 // nanoseconds per bucket
	n     int64 // buckets per span
	slots []slot
	cur   int64 // bucket of the newest time seen
	recs  int64 // records in the live buckets
	// last maps the hash of each subject of the live buckets to the newest
	// bucket it was seen in; at most exactSubjects entries.
	last map[uint64]int64
	// overflow is set while last misses subjects of the live buckets: until
	// bucket overUntil, the count comes from the buckets' sketches.
	overflow  bool
	overUntil int64
	merged    *hyperloglog.Sketch // union of the live sketches; nil when stale
}

type slot struct {
	bucket int64 // which bucket this slot holds; empty when < cur-n
	recs   int64
	subj   int64               // entries of last whose newest bucket is this one
	sk     *hyperloglog.Sketch // while overflowing
}

const emptyBucket = -1 << 62

func newSpan(width int64, n int) span {
	s := span{width: width, n: int64(n), slots: make([]slot, n+1), cur: emptyBucket, last: map[uint64]int64{}}
	for i := range s.slots {
		s.slots[i].bucket = emptyBucket
	}
	return s
}

// bucketOf returns the bucket of t (floor division).
func (s *span) bucketOf(t int64) int64 {
	b := t / s.width
	if t < 0 && t%s.width != 0 {
		b--
	}
	return max(b, s.cur)
}

func (s *span) slotOf(b int64) *slot {
	i := b % int64(len(s.slots))
	if i < 0 {
		i += int64(len(s.slots))
	}
	return &s.slots[i]
}

// advance moves the span to bucket c (>= cur), forgetting the buckets that
// fall out of it.
func (s *span) advance(c int64) {
	if c <= s.cur {
		return
	}
	s.cur = c
	oldest := c - s.n
	var gone int64
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.bucket == emptyBucket || sl.bucket >= oldest {
			continue
		}
		s.recs -= sl.recs
		gone += sl.subj
		if sl.sk != nil {
			s.merged = nil
		}
		*sl = slot{bucket: emptyBucket}
	}
	if gone > 0 {
		for h, b := range s.last {
			if b < oldest {
				delete(s.last, h)
			}
		}
	}
	if s.overflow && c > s.overUntil {
		// Every subject of the live buckets is in last again.
		s.overflow, s.merged = false, nil
		for i := range s.slots {
			s.slots[i].sk = nil
		}
	}
}

// add counts subject hashes hs at t.
func (s *span) add(t int64, hs []uint64) {
	c := s.bucketOf(t)
	s.advance(c)
	sl := s.slotOf(c)
	if sl.bucket != c {
		*sl = slot{bucket: c}
	}
	sl.recs += int64(len(hs))
	s.recs += int64(len(hs))
	for _, h := range hs {
		if b, ok := s.last[h]; ok {
			if b != c {
				s.slotOf(b).subj--
				sl.subj++
				s.last[h] = c
			}
		} else if len(s.last) < exactSubjects {
			s.last[h] = c
			sl.subj++
		} else {
			if !s.overflow {
				s.startOverflow()
			}
			s.overUntil = c + s.n
		}
		if s.overflow {
			if sl.sk == nil {
				sl.sk = newSketch()
			}
			sl.sk.InsertHash(h)
			if s.merged != nil {
				s.merged.InsertHash(h)
			}
		}
	}
}

// startOverflow gives every live bucket a sketch of the subjects last holds
// for it.
func (s *span) startOverflow() {
	s.overflow, s.merged = true, nil
	for h, b := range s.last {
		sl := s.slotOf(b)
		if sl.sk == nil {
			sl.sk = newSketch()
		}
		sl.sk.InsertHash(h)
	}
}

// usage returns the records and distinct subjects at t, as if hs were
// added too.
func (s *span) usage(t int64, hs []uint64) (recs, subjects int64) {
	s.advance(s.bucketOf(t))
	recs = s.recs + int64(len(hs))
	if !s.overflow {
		subjects = int64(len(s.last))
		for _, h := range hs {
			if _, ok := s.last[h]; !ok {
				subjects++
			}
		}
		return recs, subjects
	}
	if s.merged == nil {
		s.merged = newSketch()
		for i := range s.slots {
			if sk := s.slots[i].sk; sk != nil {
				s.merged.Merge(sk) // same precision: cannot fail
			}
		}
	}
	est := max(int64(s.merged.Estimate()), int64(len(s.last)))
	return recs, est + int64(len(hs))
}

func newSketch() *hyperloglog.Sketch {
	sk, _ := hyperloglog.NewSketch(sketchPrecision, true) // a valid precision: cannot fail
	return sk
}

// Budget is a volume budget: records and distinct data subjects per minute,
// per hour, per day and in total. Zero means no limit.
type Budget struct {
	RecordsPerMinute  int64 `json:"records_per_minute,omitempty"`
	RecordsPerHour    int64 `json:"records_per_hour,omitempty"`
	RecordsPerDay     int64 `json:"records_per_day,omitempty"`
	RecordsTotal      int64 `json:"records_total,omitempty"`
	SubjectsPerMinute int64 `json:"subjects_per_minute,omitempty"`
	SubjectsPerHour   int64 `json:"subjects_per_hour,omitempty"`
	SubjectsPerDay    int64 `json:"subjects_per_day,omitempty"`
}

// exceeded names the first limit of b that u passes, or "".
func (b Budget) exceeded(u Usage) string {
	switch {
	case b.RecordsPerMinute > 0 && u.RecordsMinute > b.RecordsPerMinute:
		return "records per minute"
	case b.RecordsPerHour > 0 && u.RecordsHour > b.RecordsPerHour:
		return "records per hour"
	case b.RecordsPerDay > 0 && u.RecordsDay > b.RecordsPerDay:
		return "records per day"
	case b.RecordsTotal > 0 && u.RecordsTotal > b.RecordsTotal:
		return "records in total"
	case b.SubjectsPerMinute > 0 && u.SubjectsMinute > b.SubjectsPerMinute:
		return "distinct subjects per minute"
	case b.SubjectsPerHour > 0 && u.SubjectsHour > b.SubjectsPerHour:
		return "distinct subjects per hour"
	case b.SubjectsPerDay > 0 && u.SubjectsDay > b.SubjectsPerDay:
		return "distinct subjects per day"
	}
	return ""
}

// DefaultBudgets are the per-role budgets of principals and devices. A
// support agent's working day (a few hundred single-record reads and
// lookups over eight hours) stays well inside its role's budget; a bulk
// read is stopped after a few hundred records at most. A principal with
// several roles gets the largest budget of them.
var DefaultBudgets = map[string]Budget{
	"support": {RecordsPerMinute: 30, RecordsPerHour: 300, RecordsPerDay: 1500, SubjectsPerMinute: 20, SubjectsPerHour: 200, SubjectsPerDay: 1000},
	"member":  {RecordsPerMinute: 60, RecordsPerHour: 600, RecordsPerDay: 3000, SubjectsPerMinute: 40, SubjectsPerHour: 400, SubjectsPerDay: 2000},
	"admin":   {RecordsPerMinute: 100, RecordsPerHour: 1000, RecordsPerDay: 5000, SubjectsPerMinute: 100, SubjectsPerHour: 1000, SubjectsPerDay: 5000},
	"auditor": {RecordsPerMinute: 100, RecordsPerHour: 1000, RecordsPerDay: 5000, SubjectsPerMinute: 100, SubjectsPerHour: 1000, SubjectsPerDay: 5000},
	"service": {RecordsPerMinute: 20_000, RecordsPerHour: 500_000, RecordsPerDay: 5_000_000},
}

// roleBudget returns the largest default budget among roles (by records
// per hour); a principal with no known role gets the support budget.
func roleBudget(budgets map[string]Budget, roles []string) Budget {
	best, ok := Budget{}, false
	for _, r := range roles {
		if b, has := budgets[r]; has && (!ok || b.RecordsPerHour > best.RecordsPerHour) {
			best, ok = b, true
		}
	}
	if !ok {
		return budgets["support"]
	}
	return best
}
