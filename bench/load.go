package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// request describes one request of a workload; the generator makes a fresh
// one for every send.
type request struct {
	method, url string
	body        []byte
	want        int // expected status
}

// workload makes the requests of one measured run.
type workload func(rng *rand.Rand) request

// loader sends requests with one credential; the floor and the server are
// driven through the same one.
type loader struct {
	hc      *http.Client
	cred    Credential
	purpose string
}

func newHTTPClient(conns int, tlsConf *tls.Config) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DisableCompression: true, IdleConnTimeout: 90 * time.Second, TLSClientConfig: tlsConf,
	}}
}

// do sends one request and reads the whole answer; a status other than the
// expected one is an error.
func (c *loader) do(ctx context.Context, r request) (int, error) {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, rd)
	if err != nil {
		return 0, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Sekisho-Purpose", c.purpose)
	if err := c.cred.Apply(req); err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != r.want {
		return int(n), fmt.Errorf("%s %s: status %d, want %d", r.method, r.url, resp.StatusCode, r.want)
	}
	return int(n), nil
}

// run is the outcome of one measured run.
type run struct {
	Requests int
	Errors   int
	FirstErr error
	Elapsed  time.Duration
	lat      []time.Duration
	Bytes    int64
}

func (r *run) rps() float64 { return float64(r.Requests-r.Errors) / r.Elapsed.Seconds() }

// quantile returns the q-quantile of the latencies, in milliseconds.
func (r *run) quantile(q float64) float64 {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.lat)))
	if i >= len(r.lat) {
		i = len(r.lat) - 1
	}
	return float64(r.lat[i]) / 1e6
}

// collector gathers latencies from many goroutines.
type collector struct {
	mu    sync.Mutex
	lat   []time.Duration
	n     int
	errs  int
	first error
	bytes int64
}

func (c *collector) add(d time.Duration, n int, err error) {
	c.mu.Lock()
	c.n++
	c.bytes += int64(n)
	if err != nil {
		c.errs++
		if c.first == nil {
			c.first = err
		}
	} else {
		c.lat = append(c.lat, d)
	}
	c.mu.Unlock()
}

func (c *collector) result(elapsed time.Duration) *run {
	slices.Sort(c.lat)
	return &run{Requests: c.n, Errors: c.errs, FirstErr: c.first, Elapsed: elapsed, lat: c.lat, Bytes: c.bytes}
}

// closedLoop runs conc workers, each sending its next request as soon as the
// last one is answered, for d.
func closedLoop(ctx context.Context, c *loader, w workload, conc int, d time.Duration, seed uint64) *run {
	var col collector
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for time.Now().Before(end) {
				r := w(rng)
				t := time.Now()
				n, err := c.do(ctx, r)
				col.add(time.Since(t), n, err)
			}
		})
	}
	wg.Wait()
	return col.result(time.Since(start))
}

// openLoop sends requests at a fixed arrival rate for d, whatever the
// answers do. A request's latency counts from when it was due, not from when
// it was sent, so a server that falls behind is charged for the queue
// (no coordinated omission). At most maxInflight requests are in flight;
// an arrival beyond that counts as an error.
func openLoop(ctx context.Context, c *loader, w workload, rate float64, d time.Duration, maxInflight int, seed uint64) *run {
	var col collector
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	rng := rand.New(rand.NewPCG(seed, 99))
	var inflight atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	total := int(rate * d.Seconds())
	for i := range total {
		due := start.Add(time.Duration(float64(i) / rate * 1e9))
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if inflight.Load() >= int64(maxInflight) {
			col.add(0, 0, fmt.Errorf("open loop: %d requests in flight, arrival dropped", maxInflight))
			continue
		}
		r := w(rng)
		inflight.Add(1)
		wg.Go(func() {
			defer inflight.Add(-1)
			n, err := c.do(ctx, r)
			col.add(time.Since(due), n, err)
		})
	}
	wg.Wait()
	return col.result(time.Since(start))
}
