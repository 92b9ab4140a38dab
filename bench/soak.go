package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho/client"
)

// Soak mode (issue 19): `go run ./bench -soak 1h` drives the server with a
// mixed open-loop load at -soak-rate requests a second for the given time
// and samples the server process every -soak-every (30 s): RSS, Go heap,
// goroutines and open file descriptors, with the requests and errors of
// each interval. A server whose memory or descriptors grow with requests
// shows it here as drift; the verdict is "flat" when every series stays
// within 10% of where it was after the warm-up.

// soakSample is one sample of the server.
type soakSample struct {
	ElapsedS     float64 `json:"elapsed_s"`
	RSSMiB       float64 `json:"rss_mib"`
	HeapInuseMiB float64 `json:"heap_inuse_mib"`
	HeapAllocMiB float64 `json:"heap_alloc_mib"`
	// HeapLiveMiB is the heap just after a forced GC (HeapAlloc of the
	// server's /debug/pprof/heap?gc=1): the live heap, without the
	// garbage that heap_inuse holds at a random point of the GC cycle.
	HeapLiveMiB float64 `json:"heap_live_mib"`
	Goroutines  float64 `json:"goroutines"`
	FDs         float64 `json:"fds"`
	Requests    int64   `json:"requests"` // in the interval
	Errors      int64   `json:"errors"`   // in the interval
	RPS         float64 `json:"rps"`
	P99ms       float64 `json:"p99_ms"`
	// Where the resident memory is: RssAnon of /proc/PID/status (the
	// process's own memory; the rest of RSS is the binary's pages),
	// the Go runtime's mapped memory (go_memstats_sys_bytes less what it
	// released to the OS) and SQLite's heap (sekisho_sqlite_memory_bytes:
	// page caches, schemas, statements).
	AnonMiB     float64 `json:"anon_mib"`
	GoMappedMiB float64 `json:"go_mapped_mib"`
	SQLiteMiB   float64 `json:"sqlite_mib"`
	// P50ms is the median latency of the interval; ConnWaitP99ms the p99
	// of the time a request waited for one of the bench's -concurrency
	// connections (the client's queue, not the server); ServerP99ms the
	// p99 from the request written to the first byte of the answer.
	P50ms         float64 `json:"p50_ms"`
	ConnWaitP99ms float64 `json:"conn_wait_p99_ms"`
	ServerP99ms   float64 `json:"server_p99_ms"`
	Load1         float64 `json:"load1"` // the machine's 1-minute load average
}

// soakWindow is the latency of a longer stretch (5 minutes, or a sixth of
// a shorter soak): percentiles do not add up from the 30-s samples.
type soakWindow struct {
	FromS    float64 `json:"from_s"`
	ToS      float64 `json:"to_s"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

// soakSeries sums one series. The measured window is the run after the
// warm-up (soakResult.WarmupS); the whole run's extremes are kept beside
// it, so that what the warm-up leaves out is still in the verdict's output.
type soakSeries struct {
	First    float64 `json:"first"` // mean of the first quarter of the measured window
	Last     float64 `json:"last"`  // mean of its last quarter
	Min      float64 `json:"min"`   // over the measured window
	Max      float64 `json:"max"`
	DriftPct float64 `json:"drift_pct"` // (last-first)/first
	// TrendPct is the least-squares slope over the measured window times
	// its length, in % of the window's mean: a steady climb that the two
	// quarter means understate (their centres are 3/4 of the window
	// apart) shows here in full.
	TrendPct float64 `json:"trend_pct"`
	// BandPct is (max-min)/first over the measured window: reported, not
	// part of the verdict (goroutines and heap_inuse move with the
	// requests in flight and the GC cycle sample by sample).
	BandPct  float64 `json:"band_pct"`
	RunMin   float64 `json:"run_min"` // over the whole run, warm-up included
	RunMinAt float64 `json:"run_min_at_s"`
	RunMax   float64 `json:"run_max"`
	RunMaxAt float64 `json:"run_max_at_s"`
	// Verdict is "flat" (|drift| and |trend| at most soakFlatPct),
	// "not flat", "no reading" (a verdict series that was never read), or
	// "" for a series that is reported only.
	Verdict string `json:"verdict,omitempty"`
}

// soakResult is what soak.json holds.
type soakResult struct {
	Started     time.Time              `json:"started"`
	DurationS   float64                `json:"duration_s"`
	RateRPS     float64                `json:"rate_rps"`
	EveryS      float64                `json:"every_s"`
	WarmupS     float64                `json:"warmup_s"` // the measured window starts here
	Mix         map[string]float64     `json:"mix"`
	Requests    int64                  `json:"requests"`
	Errors      int64                  `json:"errors"`
	ErrorKinds  map[string]int64       `json:"error_kinds,omitempty"`
	FirstError  string                 `json:"first_error,omitempty"`
	Samples     []soakSample           `json:"samples"`
	Windows     []soakWindow           `json:"windows"`
	Series      map[string]*soakSeries `json:"series"`
	Flat        bool                   `json:"flat"`
	MetricsNote string                 `json:"metrics_note,omitempty"`
}

// soakOp is one kind of request of the mix.
type soakOp struct {
	name   string
	weight float64
	do     func(ctx context.Context, rng *rand.Rand) error
}

// reqTrace times the phases of one request: how long it waited for a
// connection of the bench's pool and how long the server took from the
// request written to the first byte of the answer. A request that timed
// out without a connection timed out in the client's queue.
type reqTrace struct {
	start, gotConn, wrote, firstByte atomic.Int64 // unix nanos; 0: not reached
}

func (t *reqTrace) with(ctx context.Context) context.Context {
	t.start.Store(time.Now().UnixNano())
	set := func(a *atomic.Int64) { a.CompareAndSwap(0, time.Now().UnixNano()) }
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { set(&t.gotConn) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { set(&t.wrote) },
		GotFirstResponseByte: func() { set(&t.firstByte) },
	})
}

// phase names where a failed request was: "no connection" (queued in the
// client), "no answer" (sent, the server did not answer in time) or ""
// (it had an answer: the error is about the answer).
func (t *reqTrace) phase() string {
	switch {
	case t.gotConn.Load() == 0:
		return "no connection"
	case t.firstByte.Load() == 0:
		return "no answer"
	}
	return ""
}

func (t *reqTrace) connWait() (time.Duration, bool) {
	g := t.gotConn.Load()
	return time.Duration(g - t.start.Load()), g != 0
}

func (t *reqTrace) server() (time.Duration, bool) {
	w, f := t.wrote.Load(), t.firstByte.Load()
	return time.Duration(f - w), w != 0 && f != 0
}

// runSoak runs the soak against the server of pid at base and writes
// soak.json and soak.csv into out.
func runSoak(ctx context.Context, o options, pid int, metricsURL string, ops []soakOp, out string) (*soakResult, error) {
	res := &soakResult{Started: time.Now().UTC(), DurationS: o.soak.Seconds(), RateRPS: o.soakRate, EveryS: o.soakEvery.Seconds(),
		Mix: map[string]float64{}, ErrorKinds: map[string]int64{}, Series: map[string]*soakSeries{}}
	var total float64
	for _, op := range ops {
		total += op.weight
	}
	for _, op := range ops {
		res.Mix[op.name] = op.weight / total
	}
	hc := &http.Client{Timeout: 5 * time.Second}

	var (
		mu       sync.Mutex
		lat      []float64 // latencies of the interval, ms
		waits    []float64 // connection waits of the interval, ms
		srvs     []float64 // server times of the interval, ms
		all      []reqLat  // every request of the run, for the windows
		reqs     int64
		errs     int64
		inflight atomic.Int64
		wg       sync.WaitGroup
	)
	start := time.Now()
	record := func(due time.Time, d time.Duration, name string, tr *reqTrace, err error) {
		mu.Lock()
		defer mu.Unlock()
		reqs++
		lat = append(lat, float64(d)/1e6)
		all = append(all, reqLat{at: float32(due.Sub(start).Seconds()), ms: float32(float64(d) / 1e6), failed: err != nil})
		if tr != nil {
			if w, ok := tr.connWait(); ok {
				waits = append(waits, float64(w)/1e6)
			}
			if v, ok := tr.server(); ok {
				srvs = append(srvs, float64(v)/1e6)
			}
		}
		if err != nil {
			errs++
			res.Errors++
			kind := name + ": " + errorKind(err)
			if tr != nil && tr.phase() != "" {
				kind += " (" + tr.phase() + ")"
			}
			res.ErrorKinds[kind]++
			if res.FirstError == "" {
				res.FirstError = name + ": " + err.Error()
			}
			logf("soak error at %.0fs: %s: %v", due.Sub(start).Seconds(), kind, err)
		}
	}
	last := start
	sample := func() {
		now := time.Now()
		s := soakSample{ElapsedS: now.Sub(start).Seconds()}
		s.RSSMiB, _, _ = memMiB(pid)
		s.AnonMiB = rssAnonMiB(pid)
		s.Load1 = loadAvg()
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			s.FDs = float64(len(ents))
		}
		if m, err := scrape(ctx, hc, metricsURL); err == nil {
			s.HeapInuseMiB = m["go_memstats_heap_inuse_bytes"] / (1 << 20)
			s.HeapAllocMiB = m["go_memstats_heap_alloc_bytes"] / (1 << 20)
			s.Goroutines = m["go_goroutines"]
			s.GoMappedMiB = (m["go_memstats_sys_bytes"] - m["go_memstats_heap_released_bytes"]) / (1 << 20)
			s.SQLiteMiB = m["sekisho_sqlite_memory_bytes"] / (1 << 20)
		} else if res.MetricsNote == "" {
			res.MetricsNote = "heap and goroutines from " + metricsURL + " failed: " + err.Error()
		}
		s.HeapLiveMiB = heapProfile(ctx, hc, strings.TrimSuffix(metricsURL, "/metrics")+"/debug/pprof/heap",
			filepath.Join(out, "heap", fmt.Sprintf("heap-%05.0f.pprof", s.ElapsedS)))
		mu.Lock()
		s.Requests, s.Errors = reqs, errs
		if dt := now.Sub(last).Seconds(); dt >= 0.5 {
			s.RPS = float64(reqs) / dt
		}
		s.P50ms, s.P99ms = pct(lat, 0.5), pct(lat, 0.99)
		s.ConnWaitP99ms, s.ServerP99ms = pct(waits, 0.99), pct(srvs, 0.99)
		reqs, errs, lat, waits, srvs = 0, 0, lat[:0], waits[:0], srvs[:0]
		mu.Unlock()
		last = now
		res.Samples = append(res.Samples, s)
		logf("soak %6.0fs  rss %6.1f MiB (anon %.1f: go %.1f, sqlite %.1f)  heap %6.1f MiB  live %6.1f MiB  goroutines %4.0f  fds %4.0f  %6.1f req/s  %d errors  p50 %.1f p99 %.1f ms (conn wait p99 %.1f, server p99 %.1f)  load %.2f",
			s.ElapsedS, s.RSSMiB, s.AnonMiB, s.GoMappedMiB, s.SQLiteMiB, s.HeapInuseMiB, s.HeapLiveMiB, s.Goroutines, s.FDs, s.RPS, s.Errors,
			s.P50ms, s.P99ms, s.ConnWaitP99ms, s.ServerP99ms, s.Load1)
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var swg sync.WaitGroup
	swg.Go(func() {
		sample()
		t := time.NewTicker(o.soakEvery)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				sample()
			}
		}
	})

	rng := rand.New(rand.NewPCG(o.seed, 1919))
	n := int64(o.soakRate * o.soak.Seconds())
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(float64(i) / o.soakRate * 1e9))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		x := rng.Float64() * total
		op := ops[len(ops)-1]
		for _, cand := range ops {
			if x < cand.weight {
				op = cand
				break
			}
			x -= cand.weight
		}
		res.Requests++
		if inflight.Load() >= int64(o.maxInflight) {
			record(due, 0, op.name, nil, fmt.Errorf("%d requests in flight, arrival dropped", o.maxInflight))
			continue
		}
		orng := rand.New(rand.NewPCG(rng.Uint64(), 7))
		inflight.Add(1)
		wg.Go(func() {
			defer inflight.Add(-1)
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			defer rcancel()
			tr := &reqTrace{}
			err := op.do(tr.with(rctx), orng)
			record(due, time.Since(due), op.name, tr, err)
		})
	}
	wg.Wait()
	cancel()
	swg.Wait()
	sample()
	res.Windows = windows(all, o.soak)
	summarise(res)
	if err := writeSoak(out, res); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// reqLat is one request of the run: when it was due (s after the start),
// its latency and whether it failed.
type reqLat struct {
	at, ms float32
	failed bool
}

// windows cuts the run into stretches of 5 minutes (a sixth of a run
// shorter than 30 minutes) and gives each its median and p99.
func windows(all []reqLat, d time.Duration) []soakWindow {
	w := 5 * time.Minute
	if d < 30*time.Minute {
		w = max(time.Second, d/6)
	}
	var out []soakWindow
	for from := time.Duration(0); from < d; from += w {
		sw := soakWindow{FromS: from.Seconds(), ToS: min(from+w, d).Seconds()}
		var ms []float64
		for _, r := range all {
			if float64(r.at) >= sw.FromS && float64(r.at) < sw.ToS {
				ms = append(ms, float64(r.ms))
				sw.Requests++
				if r.failed {
					sw.Errors++
				}
			}
		}
		sw.P50ms, sw.P99ms = pct(ms, 0.5), pct(ms, 0.99)
		out = append(out, sw)
	}
	return out
}

// pct sorts xs and returns its q-quantile (0 when empty).
func pct(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(float64(len(xs))*q))]
}

// rssAnonMiB is the process's anonymous resident memory (RssAnon).
func rssAnonMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			if fs := strings.Fields(v); len(fs) > 0 {
				kb, _ := strconv.ParseFloat(fs[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// loadAvg is the machine's 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fs := strings.Fields(string(b))
	if len(fs) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fs[0], 64)
	return v
}

// errorKind shortens an error to what tells kinds apart (a status, a
// problem type).
func errorKind(err error) string {
	if t := client.ProblemType(err); t != "" {
		return t
	}
	s := err.Error()
	if i := strings.Index(s, "status "); i >= 0 {
		return s[i:min(len(s), i+10)]
	}
	return firstLine(s)[:min(60, len(firstLine(s)))]
}

// soakFlatPct is the verdict's bound: a series is flat when its drift and
// its trend over the measured window are both within this many %.
const soakFlatPct = 10

// soakVerdictSeries are the series the verdict holds flat (issue 19: RSS,
// heap, goroutines, open files); the others are reported only (RSS holds
// them).
var soakVerdictSeries = []string{"rss_mib", "heap_live_mib", "heap_inuse_mib", "goroutines", "fds"}

// soakReportedSeries are reported beside the verdict's.
var soakReportedSeries = []string{"anon_mib", "go_mapped_mib", "sqlite_mib"}

func soakGetter(name string) func(s soakSample) float64 {
	switch name {
	case "rss_mib":
		return func(s soakSample) float64 { return s.RSSMiB }
	case "heap_inuse_mib":
		return func(s soakSample) float64 { return s.HeapInuseMiB }
	case "heap_live_mib":
		return func(s soakSample) float64 { return s.HeapLiveMiB }
	case "goroutines":
		return func(s soakSample) float64 { return s.Goroutines }
	case "fds":
		return func(s soakSample) float64 { return s.FDs }
	case "anon_mib":
		return func(s soakSample) float64 { return s.AnonMiB }
	case "go_mapped_mib":
		return func(s soakSample) float64 { return s.GoMappedMiB }
	case "sqlite_mib":
		return func(s soakSample) float64 { return s.SQLiteMiB }
	}
	return nil
}

// summarise fills the series and the verdict. The warm-up is a fixed
// sixth of the run (10 minutes of an hour; bench/README.md "Soak" says why
// that is when the bounded structures of the soak's load are full); the
// measured window is every sample from then on. Each verdict series must
// have a drift (mean of the window's last quarter against its first) and a
// trend (least-squares slope times the window) within soakFlatPct, and the
// run no error, for flat. The whole run's min and max are reported beside.
func summarise(res *soakResult) {
	res.Series = map[string]*soakSeries{}
	res.Flat = false
	if len(res.Samples) == 0 {
		return
	}
	warm := res.DurationS / 6
	var post []soakSample
	for _, s := range res.Samples {
		if s.ElapsedS >= warm {
			post = append(post, s)
		}
	}
	if len(post) < 2 {
		post = res.Samples[len(res.Samples)-min(2, len(res.Samples)):]
	}
	res.WarmupS = post[0].ElapsedS
	res.Flat = res.Errors == 0
	for _, name := range soakVerdictSeries {
		sr := soakSeriesOf(res.Samples, post, soakGetter(name))
		sr.Verdict = "flat"
		switch {
		case sr.RunMax == 0:
			sr.Verdict = "no reading"
		case sr.DriftPct > soakFlatPct || sr.DriftPct < -soakFlatPct || sr.TrendPct > soakFlatPct || sr.TrendPct < -soakFlatPct:
			sr.Verdict = "not flat"
		}
		if sr.Verdict != "flat" {
			res.Flat = false
		}
		res.Series[name] = sr
	}
	for _, name := range soakReportedSeries {
		res.Series[name] = soakSeriesOf(res.Samples, post, soakGetter(name))
	}
}

// soakSeriesOf sums f over the measured window post and the whole run all.
func soakSeriesOf(all, post []soakSample, f func(soakSample) float64) *soakSeries {
	mean := func(ss []soakSample) float64 {
		var t float64
		for _, s := range ss {
			t += f(s)
		}
		return t / float64(len(ss))
	}
	q := max(1, len(post)/4)
	sr := &soakSeries{First: mean(post[:q]), Last: mean(post[len(post)-q:]), Min: f(post[0]), Max: f(post[0]),
		RunMin: f(all[0]), RunMax: f(all[0]), RunMinAt: all[0].ElapsedS, RunMaxAt: all[0].ElapsedS}
	for _, s := range post {
		sr.Min, sr.Max = min(sr.Min, f(s)), max(sr.Max, f(s))
	}
	for _, s := range all {
		if v := f(s); v < sr.RunMin {
			sr.RunMin, sr.RunMinAt = v, s.ElapsedS
		} else if v > sr.RunMax {
			sr.RunMax, sr.RunMaxAt = v, s.ElapsedS
		}
	}
	// Least squares over the window: slope = cov(t, v) / var(t).
	var mt, mv float64
	for _, s := range post {
		mt += s.ElapsedS
		mv += f(s)
	}
	mt, mv = mt/float64(len(post)), mv/float64(len(post))
	var cov, vt float64
	for _, s := range post {
		cov += (s.ElapsedS - mt) * (f(s) - mv)
		vt += (s.ElapsedS - mt) * (s.ElapsedS - mt)
	}
	if sr.First > 0 {
		sr.DriftPct = (sr.Last - sr.First) / sr.First * 100
		sr.BandPct = (sr.Max - sr.Min) / sr.First * 100
	}
	if vt > 0 && mv > 0 {
		span := post[len(post)-1].ElapsedS - post[0].ElapsedS
		sr.TrendPct = cov / vt * span / mv * 100
	}
	return sr
}

func writeSoak(dir string, res *soakResult) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var sb strings.Builder
	sb.WriteString("elapsed_s,rss_mib,heap_inuse_mib,heap_alloc_mib,heap_live_mib,goroutines,fds,requests,errors,rps,p99_ms,anon_mib,go_mapped_mib,sqlite_mib,p50_ms,conn_wait_p99_ms,server_p99_ms,load1\n")
	for _, s := range res.Samples {
		fmt.Fprintf(&sb, "%.0f,%.1f,%.1f,%.1f,%.1f,%.0f,%.0f,%d,%d,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.2f\n", s.ElapsedS, s.RSSMiB, s.HeapInuseMiB, s.HeapAllocMiB, s.HeapLiveMiB,
			s.Goroutines, s.FDs, s.Requests, s.Errors, s.RPS, s.P99ms, s.AnonMiB, s.GoMappedMiB, s.SQLiteMiB, s.P50ms, s.ConnWaitP99ms, s.ServerP99ms, s.Load1)
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.csv"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.md"), []byte(soakVerdictText(res)), 0o644); err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimSpace(soakVerdictText(res)), "\n") {
		logf("soak: %s", l)
	}
	logf("soak: series in %s, verdict in %s", filepath.Join(dir, "soak.csv"), filepath.Join(dir, "soak.md"))
	return nil
}

// soakVerdictText is soak.md: the verdict per series, the whole run's
// extremes, the errors and the latency windows.
func soakVerdictText(res *soakResult) string {
	var sb strings.Builder
	verdict := "NOT FLAT"
	if res.Flat {
		verdict = "FLAT"
	}
	fmt.Fprintf(&sb, "# Soak %s: %s\n\n", res.Started.Format(time.RFC3339), verdict)
	fmt.Fprintf(&sb, "%.0f s at %.0f requests/s: %d requests, %d errors. Warm-up %.0f s (a sixth of the run); measured window %.0f-%.0f s; flat = drift and trend within %d%% on every verdict series, and 0 errors.\n\n",
		res.DurationS, res.RateRPS, res.Requests, res.Errors, res.WarmupS, res.WarmupS, lastElapsed(res), soakFlatPct)
	sb.WriteString("| series | verdict | first quarter | last quarter | drift % | trend % | window min-max | band % | whole run min (at s) | whole run max (at s) |\n")
	sb.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, name := range append(append([]string{}, soakVerdictSeries...), soakReportedSeries...) {
		sr := res.Series[name]
		if sr == nil {
			continue
		}
		v := sr.Verdict
		if v == "" {
			v = "reported"
		}
		fmt.Fprintf(&sb, "| %s | %s | %.1f | %.1f | %+.1f | %+.1f | %.1f-%.1f | %.1f | %.1f (%.0f) | %.1f (%.0f) |\n",
			name, v, sr.First, sr.Last, sr.DriftPct, sr.TrendPct, sr.Min, sr.Max, sr.BandPct, sr.RunMin, sr.RunMinAt, sr.RunMax, sr.RunMaxAt)
	}
	if len(res.ErrorKinds) > 0 {
		sb.WriteString("\nErrors:\n")
		for k, n := range res.ErrorKinds {
			fmt.Fprintf(&sb, "- %s: %d\n", k, n)
		}
	}
	if len(res.Windows) > 0 {
		sb.WriteString("\n| from s | to s | requests | errors | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, w := range res.Windows {
			fmt.Fprintf(&sb, "| %.0f | %.0f | %d | %d | %.1f | %.1f |\n", w.FromS, w.ToS, w.Requests, w.Errors, w.P50ms, w.P99ms)
		}
	}
	return sb.String()
}

func lastElapsed(res *soakResult) float64 {
	if len(res.Samples) == 0 {
		return 0
	}
	return res.Samples[len(res.Samples)-1].ElapsedS
}

// soakVerdictCommand is the first argument that recomputes the verdict of
// a finished soak from its soak.json (`go run ./bench soak-verdict DIR`),
// rewriting soak.json, soak.csv and soak.md in DIR.
const soakVerdictCommand = "soak-verdict"

func soakVerdictMain(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: bench %s DIR (a soak's -out, with its soak.json)", soakVerdictCommand)
	}
	b, err := os.ReadFile(filepath.Join(args[0], "soak.json"))
	if err != nil {
		return err
	}
	var res soakResult
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(args[0], "soak.json"), err)
	}
	summarise(&res)
	return writeSoak(args[0], &res)
}

// scrape reads the Prometheus text exposition at url into name -> value;
// a labelled sample's name is written with its labels, as exposed
// (`sekisho_audit_commit_seconds_bucket{log="default",le="0.001"}`).
func scrape(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the name and its labels, whose quoted values
		// may hold spaces: cut after the closing brace when there is one.
		at := 0
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			at = i + 1
		}
		i := strings.IndexByte(line[at:], ' ')
		if i < 0 {
			continue
		}
		name, val := line[:at+i], strings.Fields(line[at+i:])
		if len(val) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(val[0], 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

// soakOps is the soak's mix: 80% hot reads, 10% lookups by phone and 8%
// creates by the service principals, and 2% admin actions (the audit
// checkpoint, the latest audit events, the collections, a guard rule set
// again, which writes a new rule version).
func soakOps(cl *loader, admin *client.Client, hot, lookup, create workload) []soakOp {
	data := func(w workload) func(ctx context.Context, rng *rand.Rand) error {
		return func(ctx context.Context, rng *rand.Rand) error {
			_, err := cl.do(ctx, w(rng))
			return err
		}
	}
	// One rule change at a time, as one admin works: concurrent PUTs of
	// one rule by the same admin conflict with each other (409, optimistic
	// concurrency), which would be the bench's doing, not the server's. A
	// PUT due while another is in flight reads the collections instead
	// (waiting for the lock would queue admin requests behind a slow one).
	var adminMu sync.Mutex
	adminOps := []func(ctx context.Context) error{
		func(ctx context.Context) error { return admin.JSON(ctx, "GET", "/v1/audit/checkpoint", "", nil, nil) },
		func(ctx context.Context) error {
			return admin.JSON(ctx, "GET", "/v1/audit/events?limit=20", "", nil, nil)
		},
		func(ctx context.Context) error { return admin.JSON(ctx, "GET", "/v1/collections", "", nil, nil) },
		func(ctx context.Context) error {
			if !adminMu.TryLock() {
				return admin.JSON(ctx, "GET", "/v1/collections", "", nil, nil)
			}
			defer adminMu.Unlock()
			return admin.JSON(ctx, "PUT", "/v1/guard/rules/enumeration", "", map[string]any{"action": "log"}, nil)
		},
	}
	return []soakOp{
		{"hot_read", 80, data(hot)},
		{"lookup_phone", 10, data(lookup)},
		{"create", 8, data(create)},
		{"admin", 2, func(ctx context.Context, rng *rand.Rand) error { return adminOps[rng.IntN(len(adminOps))](ctx) }},
	}
}

// heapProfile saves the server's heap profile (after a forced GC) at path
// and returns its live heap in MiB, or 0 when the server does not serve
// profiles (started without SEKISHO_PPROF=1).
func heapProfile(ctx context.Context, hc *http.Client, url, path string) float64 {
	get := func(q string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", url+q, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", url, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	b, err := get("?gc=1")
	if err != nil {
		return 0
	}
	if os.MkdirAll(filepath.Dir(path), 0o755) == nil {
		os.WriteFile(path, b, 0o644)
	}
	// The text form ends with runtime.MemStats; HeapAlloc right after the
	// GC is the live heap.
	txt, err := get("?debug=1&gc=1")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(txt), "\n") {
		if v, ok := strings.CutPrefix(l, "# HeapAlloc = "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n / (1 << 20)
		}
	}
	return 0
}
