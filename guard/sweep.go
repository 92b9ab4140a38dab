package guard

import (
	"strings"
	"time"
)

// sweepEvery is how often Sync drops the state of keys that went idle.
const sweepEvery = time.Minute

// sweepLocked drops, at most every sweepEvery, what no budget or rule can
// use any more, so that the guard's maps hold the keys active lately, not
// every key ever seen: the windows of principals, devices and lookups
// (and the denial windows) with no event for a day and one bucket (every
// bucket of every span has expired; a restart forgets the same, as it
// folds in one day of the log), and the recent lookups of principals with
// none in ten minutes. Grants' windows are kept: their total budget counts
// every record read under the grant (they are as many as the grants).
// g.mu is held.
func (g *Guard) sweepLocked(now time.Time) {
	if now.Sub(g.swept) < sweepEvery && now.Sub(g.swept) >= 0 {
		return
	}
	g.swept = now
	idle := now.Add(-(24*time.Hour + spanDefs[2].width)).UnixNano()
	for _, m := range []map[string]*window{g.windows, g.denials} {
		for k, w := range m {
			if w.newest < idle && !strings.HasPrefix(k, "g:") {
				delete(m, k)
			}
		}
	}
	cut := now.Add(-10 * time.Minute).UnixNano()
	for p, recent := range g.lookups {
		if len(recent) == 0 || recent[len(recent)-1].at <= cut {
			delete(g.lookups, p)
		}
	}
}
