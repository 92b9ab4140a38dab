package main

import (
	"math"
	"strings"
	"testing"
)

// soakRun makes the samples of a run of d seconds sampled every 30 s,
// with every verdict series equal to f(t) (goroutines and fds scaled).
func soakRun(d float64, f func(t float64) float64) *soakResult {
	res := &soakResult{DurationS: d, RateRPS: 50}
	for t := 0.0; t <= d; t += 30 {
		v := f(t)
		res.Samples = append(res.Samples, soakSample{ElapsedS: t, RSSMiB: 80 * v, HeapLiveMiB: 10 * v, HeapInuseMiB: 18 * v,
			Goroutines: 35 * v, FDs: 40 * v, AnonMiB: 50 * v, SQLiteMiB: 17 * v, GoMappedMiB: 30 * v})
	}
	return res
}

// TestSoakVerdict: the verdict holds every verdict series within 10% over
// the measured window (after a warm-up of a sixth of the run): a flat
// series passes, a series that grows or shrinks 15% fails (by its drift
// or, when the growth is spread over the run so that the quarter means
// understate it, by its trend), a step inside the warm-up passes and is
// still shown by the whole run's min and max, a step inside the measured
// window fails, and one error fails a flat run.
func TestSoakVerdict(t *testing.T) {
	const hour = 3600.0
	wobble := func(t float64) float64 { return 0.03 * math.Sin(t/97) } // +-3%, not a trend
	cases := []struct {
		name    string
		res     *soakResult
		errors  int64
		flat    bool
		verdict map[string]string // series -> verdict, when not all alike
		check   func(t *testing.T, r *soakResult)
	}{
		{name: "flat", res: soakRun(hour, func(t float64) float64 { return 1 + wobble(t) }), flat: true},
		{name: "grows 15% over the measured window", flat: false,
			res: soakRun(hour, func(t float64) float64 {
				return 1 + 0.15*max(0, t-600)/(hour-600)
			}),
			check: func(t *testing.T, r *soakResult) {
				if s := r.Series["rss_mib"]; s.DriftPct <= 10 || s.TrendPct <= 10 {
					t.Errorf("drift %.1f%%, trend %.1f%%: want both past 10%%", s.DriftPct, s.TrendPct)
				}
			}},
		{name: "grows 15% over the whole run: the trend catches what the quarters understate", flat: false,
			res: soakRun(hour, func(t float64) float64 { return 1 + 0.15*t/hour }),
			check: func(t *testing.T, r *soakResult) {
				if s := r.Series["rss_mib"]; s.DriftPct > 10 || s.TrendPct <= 10 {
					t.Errorf("drift %.1f%% (want within 10%%), trend %.1f%% (want past 10%%)", s.DriftPct, s.TrendPct)
				}
			}},
		{name: "shrinks 15%", flat: false,
			res: soakRun(hour, func(t float64) float64 { return 1 - 0.15*max(0, t-600)/(hour-600) })},
		{name: "grows 8%: within the bound", flat: true,
			res: soakRun(hour, func(t float64) float64 { return 1 + 0.08*max(0, t-600)/(hour-600) })},
		{name: "a step of 16% at 9 minutes, inside the warm-up", flat: true,
			res: soakRun(hour, func(t float64) float64 {
				if t < 540 {
					return 1 + wobble(t)
				}
				return 1.16 + wobble(t)
			}),
			check: func(t *testing.T, r *soakResult) {
				if r.WarmupS != 600 {
					t.Errorf("warm-up %v s, want 600 (a sixth of the hour)", r.WarmupS)
				}
				s := r.Series["heap_live_mib"]
				if s.RunMin > 10.4 || s.RunMinAt >= 540 || s.RunMax < 11.5 {
					t.Errorf("whole run min %.2f at %v s, max %.2f: the step must show in the whole run's extremes", s.RunMin, s.RunMinAt, s.RunMax)
				}
				if s.Min < 11.2 {
					t.Errorf("window min %.2f: the window must start after the step", s.Min)
				}
			}},
		{name: "the same step at 30 minutes, inside the measured window", flat: false,
			res: soakRun(hour, func(t float64) float64 {
				if t < 1800 {
					return 1 + wobble(t)
				}
				return 1.16 + wobble(t)
			})},
		{name: "flat with one error", errors: 1, flat: false,
			res: soakRun(hour, func(t float64) float64 { return 1 })},
		{name: "one verdict series grows, the others flat", flat: false,
			res: func() *soakResult {
				r := soakRun(hour, func(t float64) float64 { return 1 })
				for i := range r.Samples {
					r.Samples[i].FDs = 40 + r.Samples[i].ElapsedS/60 // a descriptor a minute
				}
				return r
			}(),
			verdict: map[string]string{"fds": "not flat", "rss_mib": "flat", "heap_live_mib": "flat", "heap_inuse_mib": "flat", "goroutines": "flat"}},
		{name: "a series never read", flat: false,
			res: func() *soakResult {
				r := soakRun(hour, func(t float64) float64 { return 1 })
				for i := range r.Samples {
					r.Samples[i].HeapLiveMiB = 0
				}
				return r
			}(),
			verdict: map[string]string{"heap_live_mib": "no reading", "rss_mib": "flat"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.res.Errors = c.errors
			summarise(c.res)
			if c.res.Flat != c.flat {
				t.Errorf("flat %v, want %v\n%s", c.res.Flat, c.flat, soakVerdictText(c.res))
			}
			for _, name := range soakVerdictSeries {
				s := c.res.Series[name]
				if s == nil {
					t.Fatalf("no series %s", name)
				}
				want := c.verdict[name]
				if c.verdict == nil {
					want = "not flat"
					if c.flat || c.errors > 0 {
						want = "flat"
					}
				}
				if want != "" && s.Verdict != want {
					t.Errorf("%s: verdict %q, want %q (drift %.1f%%, trend %.1f%%)", name, s.Verdict, want, s.DriftPct, s.TrendPct)
				}
			}
			for _, name := range soakReportedSeries {
				if s := c.res.Series[name]; s == nil || s.Verdict != "" {
					t.Errorf("%s: %+v, want a reported series without a verdict", name, s)
				}
			}
			txt := soakVerdictText(c.res)
			if head := strings.SplitN(txt, "\n", 2)[0]; strings.HasSuffix(head, ": FLAT") != c.flat {
				t.Errorf("soak.md says %q, flat %v", head, c.flat)
			}
			if c.check != nil {
				c.check(t, c.res)
			}
		})
	}
}
