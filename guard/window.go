package guard

import "time"

// window counts records and distinct data subjects over the last minute,
// hour and day, and in total, for one key (a principal, a device or a
// grant). Events are kept in time order; two running sums per window are
// moved forward as events age out, so a check is O(1) amortised.
type window struct {
	ev []event
	// heads[i] is the first event inside window i (minute, hour, day).
	heads [3]int
	recs  [3]int64
	subj  [3]map[string]int64 // subject -> unix nanos last seen inside window i
	total int64
	// seen is every subject ever counted (bounded by maxSeen).
	seen map[string]struct{}
}

type event struct {
	at  int64
	ids []string
}

var spans = [3]time.Duration{time.Minute, time.Hour, 24 * time.Hour}

// maxSeen bounds the total set of distinct subjects kept per key; a key past
// it has long passed every default budget.
const maxSeen = 200_000

func newWindow() *window {
	w := &window{seen: map[string]struct{}{}}
	for i := range w.subj {
		w.subj[i] = map[string]int64{}
	}
	return w
}

// advance drops what has aged out of each window at now.
func (w *window) advance(now int64) {
	for i, span := range spans {
		cut := now - int64(span)
		for w.heads[i] < len(w.ev) && w.ev[w.heads[i]].at <= cut {
			e := w.ev[w.heads[i]]
			w.recs[i] -= int64(len(e.ids))
			for _, id := range e.ids {
				if t, ok := w.subj[i][id]; ok && t <= e.at {
					delete(w.subj[i], id)
				}
			}
			w.heads[i]++
		}
	}
	// Compact once the day window's head has moved far enough.
	if h := w.heads[2]; h > 1024 && h > len(w.ev)/2 {
		n := copy(w.ev, w.ev[h:])
		clear(w.ev[n:])
		w.ev = w.ev[:n]
		for i := range w.heads {
			w.heads[i] -= h
		}
	}
}

// add counts ids read at now (events must come in time order; a late event
// is counted at the newest time seen).
func (w *window) add(now int64, ids []string) {
	if n := len(w.ev); n > 0 && w.ev[n-1].at > now {
		now = w.ev[n-1].at
	}
	w.advance(now)
	w.ev = append(w.ev, event{at: now, ids: ids})
	for i := range spans {
		w.recs[i] += int64(len(ids))
		for _, id := range ids {
			w.subj[i][id] = now
		}
	}
	w.total += int64(len(ids))
	if len(w.seen) < maxSeen {
		for _, id := range ids {
			w.seen[id] = struct{}{}
		}
	}
}

// Usage is a key's counters at one instant.
type Usage struct {
	RecordsMinute, RecordsHour, RecordsDay, RecordsTotal     int64
	SubjectsMinute, SubjectsHour, SubjectsDay, SubjectsTotal int64
}

// usage returns the counters at now, as if ids were added too.
func (w *window) usage(now int64, ids []string) Usage {
	w.advance(now)
	u := Usage{RecordsMinute: w.recs[0], RecordsHour: w.recs[1], RecordsDay: w.recs[2], RecordsTotal: w.total,
		SubjectsMinute: int64(len(w.subj[0])), SubjectsHour: int64(len(w.subj[1])), SubjectsDay: int64(len(w.subj[2])),
		SubjectsTotal: int64(len(w.seen))}
	n := int64(len(ids))
	u.RecordsMinute += n
	u.RecordsHour += n
	u.RecordsDay += n
	u.RecordsTotal += n
	for _, id := range ids {
		if _, ok := w.subj[0][id]; !ok {
			u.SubjectsMinute++
		}
		if _, ok := w.subj[1][id]; !ok {
			u.SubjectsHour++
		}
		if _, ok := w.subj[2][id]; !ok {
			u.SubjectsDay++
		}
		if _, ok := w.seen[id]; !ok {
			u.SubjectsTotal++
		}
	}
	return u
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
