package guard

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// exactRef is the guard's former window, every event kept: the reference
// the bucketed window is held to.
type exactRef struct {
	ev []struct {
		at  int64
		ids []string
	}
	newest int64
}

func (r *exactRef) add(at int64, ids []string) {
	at = max(at, r.newest)
	r.newest = at
	r.ev = append(r.ev, struct {
		at  int64
		ids []string
	}{at, ids})
}

// count returns the records and distinct subjects of the events after
// now-span, with ids added at now.
func (r *exactRef) count(now int64, span time.Duration, ids []string) (recs, subj int64) {
	now = max(now, r.newest)
	set := map[string]bool{}
	for _, e := range r.ev {
		if e.at > now-int64(span) {
			recs += int64(len(e.ids))
			for _, id := range e.ids {
				set[id] = true
			}
		}
	}
	for _, id := range ids {
		if !set[id] {
			subj++
		}
	}
	return recs + int64(len(ids)), subj + int64(len(set))
}

// TestWindowMatchesExact feeds the bucketed window and the exact reference
// the same random streams (bursts, pauses, the clock stepping back) and
// checks, at every step, that each span's records and distinct subjects lie
// between the exact count over the span and the exact count over the span
// plus one bucket: the documented bound, and below the exactness limit the
// only difference from the former window.
func TestWindowMatchesExact(t *testing.T) {
	base := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).UnixNano()
	cases := []struct {
		name    string
		gap     time.Duration // mean time between events
		steps   int
		pool    int // distinct subjects to draw from
		perRead int
	}{
		{"burst", 50 * time.Millisecond, 2500, 300, 1},
		{"working-day", 40 * time.Second, 3000, 2000, 2},
		{"days", 20 * time.Minute, 600, 500, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, uint64(tc.steps)))
			w, ref := newWindow(), &exactRef{}
			now := base
			for i := range tc.steps {
				switch rnd.IntN(50) {
				case 0: // a clock step back
					now -= int64(time.Duration(rnd.Int64N(int64(10 * tc.gap))))
				case 1: // a pause
					now += int64(time.Duration(rnd.Int64N(int64(200 * tc.gap))))
				default:
					now += int64(time.Duration(rnd.Int64N(int64(2 * tc.gap))))
				}
				ids := make([]string, 1+rnd.IntN(tc.perRead))
				for j := range ids {
					ids[j] = fmt.Sprintf("users/r%d", rnd.IntN(tc.pool))
				}
				u := w.usage(now, ids)
				got := [3][2]int64{{u.RecordsMinute, u.SubjectsMinute}, {u.RecordsHour, u.SubjectsHour}, {u.RecordsDay, u.SubjectsDay}}
				for k, d := range spanDefs {
					span := time.Duration(d.n) * d.width
					loR, loS := ref.count(now, span, ids)
					hiR, hiS := ref.count(now, span+d.width, ids)
					if got[k][0] < loR || got[k][0] > hiR || got[k][1] < loS || got[k][1] > hiS {
						t.Fatalf("step %d, span %v: records %d (exact %d..%d), subjects %d (exact %d..%d)",
							i, span, got[k][0], loR, hiR, got[k][1], loS, hiS)
					}
				}
				if want := int64(len(ids)); u.RecordsTotal != w.total+want {
					t.Fatalf("step %d: records total %d", i, u.RecordsTotal)
				}
				w.add(now, ids)
				ref.add(now, ids)
			}
		})
	}
}

// TestWindowPastExactnessLimit: a key reading more distinct subjects in a
// minute than the exactness limit is counted by the sketches within 10%
// (six standard errors), never below what the exact set still holds; once a whole span has
// passed without overflow the count is exact again.
func TestWindowPastExactnessLimit(t *testing.T) {
	w := newWindow()
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).UnixNano()
	const n = 3 * exactSubjects
	for i := range n {
		w.add(now+int64(i)*int64(time.Millisecond), []string{fmt.Sprintf("users/r%d", i)})
	}
	now += n * int64(time.Millisecond) // 24.6 s later: all still in the minute
	u := w.usage(now, nil)
	for name, got := range map[string]int64{"minute": u.SubjectsMinute, "hour": u.SubjectsHour, "day": u.SubjectsDay} {
		if got < n*90/100 || got > n*110/100 { // six standard errors
			t.Errorf("%s: %d distinct subjects counted, %d read", name, got, n)
		}
	}
	if u.RecordsMinute != n || u.RecordsDay != n {
		t.Errorf("records %d/%d, want %d", u.RecordsMinute, u.RecordsDay, n)
	}
	if !w.spans[0].overflow {
		t.Fatal("the minute span did not switch to its sketches")
	}
	// Two minutes on, a few reads: the minute span is exact again.
	now += int64(2 * time.Minute)
	w.add(now, []string{"users/a", "users/b", "users/a"})
	u = w.usage(now, []string{"users/a", "users/c"})
	if w.spans[0].overflow || u.SubjectsMinute != 3 || u.RecordsMinute != 5 {
		t.Errorf("after the burst: overflow %v, subjects %d (want 3), records %d (want 5)", w.spans[0].overflow, u.SubjectsMinute, u.RecordsMinute)
	}
	if u.SubjectsHour < n*90/100 || u.RecordsHour != n+5 {
		t.Errorf("the hour still holds the burst: subjects %d, records %d", u.SubjectsHour, u.RecordsHour)
	}
}

// TestWindowMemoryBounded: the guard's memory is bounded by keys x buckets,
// not by requests. Keys read a new distinct subject every second (the worst
// case: every read is a subject never seen) for three simulated days; the
// heap they hold after three days is what it was after one (within 10%),
// and below the bound the structure gives.
func TestWindowMemoryBounded(t *testing.T) {
	const keys = 2
	ws := make([]*window, keys)
	for i := range ws {
		ws[i] = newWindow()
	}
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC).UnixNano()
	seq := 0
	feed := func(d time.Duration) {
		for end := now + int64(d); now < end; now += int64(time.Second) {
			for _, w := range ws {
				seq++
				w.add(now, []string{fmt.Sprintf("users/r%d", seq)})
			}
		}
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	feed(24 * time.Hour)
	oneDay := heap() - before
	feed(48 * time.Hour)
	threeDays := heap() - before
	runtime.KeepAlive(ws)
	t.Logf("%d keys, %d reads: %.1f MiB after one day, %.1f MiB after three (%.2f MiB a key)",
		keys, seq, float64(oneDay)/(1<<20), float64(threeDays)/(1<<20), float64(threeDays)/keys/(1<<20))
	if threeDays > oneDay*11/10 {
		t.Errorf("memory grew with requests: %d bytes after one day, %d after three", oneDay, threeDays)
	}
	// The structure's bound per key: three exact sets of at most
	// exactSubjects entries (a Go map entry of two int64s takes under 64
	// bytes), a 4 KiB sketch per bucket and a 16 KiB total sketch.
	var buckets int
	for _, d := range spanDefs {
		buckets += d.n + 1
	}
	bound := uint64(keys * (3*exactSubjects*64 + buckets*(4096+256) + 16384 + 4096))
	if threeDays > bound {
		t.Errorf("%d bytes held, bound %d", threeDays, bound)
	}
	for _, w := range ws {
		for i := range w.spans {
			if l := len(w.spans[i].last); l > exactSubjects {
				t.Errorf("span %d holds %d exact subjects", i, l)
			}
		}
	}
}

// TestWindowMemoryStopsAtItsSubjects: a key's exact sets of distinct
// subjects hold at most the subjects its load reads, so under a load over a
// fixed population (the soak's: 1,400 users, 32 keys) the guard's memory
// stops growing once every set holds the population, however long the load
// goes on; the control (a second population of new subjects) grows it. This
// is why the soak's warm-up ends when the sets are full (bench/README.md
// "Soak").
func TestWindowMemoryStopsAtItsSubjects(t *testing.T) {
	const keys, population = 32, 1400
	ws := make([]*window, keys)
	for i := range ws {
		ws[i] = newWindow()
	}
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC).UnixNano()
	rng := rand.New(rand.NewPCG(19, 6))
	ids := func(base int) []string {
		out := make([]string, population)
		for i := range out {
			out[i] = fmt.Sprintf("users/r%d", base+i)
		}
		return out
	}
	first, second := ids(0), ids(population)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	// Every key reads every subject of the population once (in 10 simulated
	// minutes), then at random from it, 3 reads a second a key, for 15
	// minutes and then an hour more.
	for i, id := range first {
		at := now + int64(i)*int64(10*time.Minute)/population
		for _, w := range ws {
			w.add(at, []string{id})
		}
	}
	now += int64(10 * time.Minute)
	read := func(d time.Duration) {
		for end := now + int64(d); now < end; now += int64(time.Second) {
			for _, w := range ws {
				for range 3 {
					w.add(now, []string{first[rng.IntN(population)]})
				}
			}
		}
	}
	read(15 * time.Minute) // the minute span's set settles at its churn
	full := heap() - before
	read(time.Hour)
	later := heap() - before
	// Control: each key reads a population of new subjects.
	for i, id := range second {
		at := now + int64(i)*int64(10*time.Minute)/population
		for _, w := range ws {
			w.add(at, []string{id})
		}
	}
	grown := heap() - before
	runtime.KeepAlive(ws)
	t.Logf("%d keys: %.2f MiB with the population in every set, %.2f MiB after an hour more of reads of it, %.2f MiB after a second population",
		keys, float64(full)/(1<<20), float64(later)/(1<<20), float64(grown)/(1<<20))
	if later > full+full/100 {
		t.Errorf("the sets grew while the load read only subjects they held: %d bytes, then %d", full, later)
	}
	if grown < later+later/4 {
		t.Errorf("control: a second population of subjects grew the sets from %d to only %d bytes", later, grown)
	}
	for _, w := range ws {
		// The day holds both populations; the hour the second and what of
		// the first was read in its last hour.
		if d, h := len(w.spans[2].last), len(w.spans[1].last); d != 2*population || h < population || h > 2*population {
			t.Errorf("the day holds %d subjects (want %d), the hour %d", d, 2*population, h)
		}
	}
}
