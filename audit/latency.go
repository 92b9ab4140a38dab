package audit

import (
	"sync/atomic"
	"time"
)

// commitBounds are the upper bounds of the buckets of a Log's commit
// latency (CommitLatency), from 100 µs to 1 s.
func commitBounds() []time.Duration {
	return []time.Duration{
		100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	}
}

// latency counts durations into commitBounds' buckets (the last counts
// those above every bound), without locks: one writer observes, any
// goroutine reads.
type latency struct {
	bounds []time.Duration
	counts []atomic.Uint64 // len(bounds)+1
	sum    atomic.Int64    // nanoseconds
}

func newLatency() *latency {
	b := commitBounds()
	return &latency{bounds: b, counts: make([]atomic.Uint64, len(b)+1)}
}

func (h *latency) observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Latency is a histogram of durations: Counts[i] are those at most
// Bounds[i] and above Bounds[i-1]; the last count is those above every
// bound.
type Latency struct {
	Bounds []time.Duration
	Counts []uint64
	Sum    time.Duration
}

func (h *latency) snapshot() Latency {
	out := Latency{Bounds: h.bounds, Counts: make([]uint64, len(h.counts)), Sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	return out
}

// CommitLatency returns the histogram of the log's store commits: how long
// each AppendAudit that succeeded took, the durable write every append of
// its group waited for.
func (l *Log) CommitLatency() Latency { return l.latency.snapshot() }
