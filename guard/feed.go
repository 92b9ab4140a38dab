package guard

import (
	"context"
	"slices"
	"sync"

	"github.com/sekisho/sekisho"
)

// AlertFeedSize is how many recent alerts a node keeps for the alerts API:
// the last AlertFeedSize of the node (what the root org's admins read) and,
// apart, the last AlertFeedSize of each org (what its admins read), so that
// one org's flood of alerts never pushes another org's out of its admins'
// view.
const AlertFeedSize = 1000

// AlertEntry is one alert of the feed with its sequence number: the
// numbers grow (across restarts too: the first of a process is its start
// time in microseconds), so that a reader asks for what came after the
// last one it saw. The number is the reader's: the root org's admins read
// the node's sequence (every alert), another org's admin a sequence of
// that org's own, counting only the alerts it may see, so that neither the
// numbers nor the gaps between them tell it how many alerts other orgs had.
type AlertEntry struct {
	Seq uint64 `json:"seq"`
	Alert
	// views are the entry's numbers in the sequences of the orgs that see
	// it (Alert.Org and DataOrgs).
	views map[string]uint64
}

// AlertPage is an answer of Alerts.
type AlertPage struct {
	Alerts []AlertEntry `json:"alerts"`
	// Next is the sequence number to ask after next time.
	Next uint64 `json:"next"`
	// Wake is closed when an alert newer than this page is raised.
	Wake <-chan struct{} `json:"-"`
}

// alertFeed keeps the last AlertFeedSize alerts this node raised, and the
// last AlertFeedSize of each org's, for GET /v1/guard/alerts and its event
// stream. Its zero value is ready.
type alertFeed struct {
	mu      sync.Mutex
	seq     uint64                  // the node's sequence: the root admins'
	orgSeq  map[string]uint64       // each org's sequence: its admins'
	ring    []AlertEntry            // the node's last alerts
	orgRing map[string][]AlertEntry // each org's last alerts (Alert.Org and DataOrgs)
	wake    chan struct{}
}

// keepLast appends e to ring and drops what is older than the last
// AlertFeedSize entries.
func keepLast(ring []AlertEntry, e AlertEntry) []AlertEntry {
	ring = append(ring, e)
	if len(ring) > AlertFeedSize {
		ring = slices.Delete(ring, 0, len(ring)-AlertFeedSize)
	}
	return ring
}

func (f *alertFeed) publish(al Alert) {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := uint64(max(al.Time.UnixMicro(), 0))
	if f.seq == 0 {
		f.seq = start
	}
	f.seq++
	e := AlertEntry{Seq: f.seq, Alert: al, views: map[string]uint64{}}
	if f.orgSeq == nil {
		f.orgSeq = map[string]uint64{}
	}
	for _, o := range append([]string{al.Org}, al.DataOrgs...) {
		if o == "" || e.views[o] != 0 {
			continue
		}
		// An org's sequence starts, like the node's, at the time of its
		// first alert in this process: it tells its readers nothing of
		// the others'.
		n := f.orgSeq[o]
		if n == 0 {
			n = start
		}
		n++
		f.orgSeq[o], e.views[o] = n, n
	}
	f.ring = keepLast(f.ring, e)
	if f.orgRing == nil {
		f.orgRing = map[string][]AlertEntry{}
	}
	for o := range e.views {
		f.orgRing[o] = keepLast(f.orgRing[o], e)
	}
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
}

// Alerts returns the alerts raised on this node after sequence number
// after (at most limit, the oldest first) that c may see: an admin of the
// root org sees every org's; another org's admin the alerts about its own
// principals and the ones raised on its data (Alert.DataOrgs), numbered
// in its org's own sequence (after and Next too: see AlertEntry). Other
// callers are refused (admin-required). The feed is this node's memory:
// the last AlertFeedSize alerts since it started (for an org's admin, the
// last AlertFeedSize of its org's); the audit log keeps the refusals and
// quarantines for good.
func (g *Guard) Alerts(_ context.Context, c sekisho.Caller, after uint64, limit int) (*AlertPage, error) {
	if !c.HasRole("admin") {
		return nil, sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "reading the guard's alerts needs an admin")
	}
	if limit <= 0 || limit > AlertFeedSize {
		limit = AlertFeedSize
	}
	all := g.isRootAdmin(c)
	f := &g.alert.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	last, ring := f.seq, f.ring
	if !all {
		last, ring = f.orgSeq[c.Org], f.orgRing[c.Org]
	}
	p := &AlertPage{Alerts: []AlertEntry{}, Next: max(after, last)}
	for _, e := range ring {
		seq := e.Seq
		if !all {
			if seq = e.views[c.Org]; seq == 0 {
				continue // not the reader's
			}
		}
		if seq <= after {
			continue
		}
		if len(p.Alerts) == limit {
			p.Next = p.Alerts[len(p.Alerts)-1].Seq
			break
		}
		e.Seq, e.views = seq, nil
		p.Alerts = append(p.Alerts, e)
	}
	if f.wake == nil {
		f.wake = make(chan struct{})
	}
	p.Wake = f.wake
	return p, nil
}
