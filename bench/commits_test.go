package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The commit latency a workload reports: the buckets of the default log
// between two scrapes of a real exposition, and their 99th percentile
// interpolated as histogram_quantile does.
func TestCommitP99FromScrapes(t *testing.T) {
	// before: 10 commits <= 1 ms; after: 100 more, 90 <= 1 ms, 9 in
	// (1, 5] ms, 1 in (5, 10] ms; another log's buckets are not counted.
	expo := func(b1, b5, b10, inf int, sum float64) string {
		s := "# TYPE sekisho_audit_commit_seconds histogram\n"
		for _, log := range []string{"default", "jp"} {
			k := 1
			if log == "jp" {
				k = 1000
			}
			s += fmt.Sprintf("sekisho_audit_commit_seconds_bucket{log=%q,le=\"0.001\"} %d\n", log, b1*k)
			s += fmt.Sprintf("sekisho_audit_commit_seconds_bucket{log=%q,le=\"0.005\"} %d\n", log, b5*k)
			s += fmt.Sprintf("sekisho_audit_commit_seconds_bucket{log=%q,le=\"0.01\"} %d\n", log, b10*k)
			s += fmt.Sprintf("sekisho_audit_commit_seconds_bucket{log=%q,le=\"+Inf\"} %d\n", log, inf*k)
			s += fmt.Sprintf("sekisho_audit_commit_seconds_sum{log=%q} %g\n", log, sum)
			s += fmt.Sprintf("sekisho_audit_commit_seconds_count{log=%q} %d\n", log, inf*k)
		}
		return s + fmt.Sprintf("sekisho_audit_commits_total %d\nsekisho_audit_committed_events_total %d\n", inf, 6*inf)
	}
	page := expo(10, 10, 10, 10, 0.005)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, page) }))
	defer srv.Close()
	ctx := context.Background()
	m0, err := scrape(ctx, srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	page = expo(100, 109, 110, 110, 0.2)
	m1, err := scrape(ctx, srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var p runPool
	p.addCommits(m0, m1)
	if p.commits != 100 || p.events != 600 {
		t.Fatalf("commits %v events %v, want 100 and 600", p.commits, p.events)
	}
	want := map[float64]float64{0.001: 90, 0.005: 99, 0.01: 100, math.Inf(1): 100}
	if fmt.Sprint(p.commitBuckets) != fmt.Sprint(want) {
		t.Fatalf("buckets %v, want %v", p.commitBuckets, want)
	}
	// The 99th of 100 is the last of the 9 in (1, 5] ms: 5 ms.
	if q := histogramQuantile(0.99, p.commitBuckets); math.Abs(q-0.005) > 1e-9 {
		t.Fatalf("p99 %v, want 0.005", q)
	}
	for _, tc := range []struct {
		name    string
		q       float64
		buckets map[float64]float64
		want    float64
	}{
		{"half way into the first bucket", 0.5, map[float64]float64{0.001: 10, math.Inf(1): 10}, 0.0005},
		{"in the +Inf bucket: the highest bound", 0.99, map[float64]float64{0.001: 1, 0.005: 2, math.Inf(1): 100}, 0.005},
		{"within the second bucket", 0.75, map[float64]float64{0.001: 50, 0.005: 100, math.Inf(1): 100}, 0.003},
		{"no observations", 0.99, map[float64]float64{0.001: 0, math.Inf(1): 0}, math.NaN()},
		{"no buckets", 0.99, nil, math.NaN()},
	} {
		got := histogramQuantile(tc.q, tc.buckets)
		if (math.IsNaN(tc.want) && !math.IsNaN(got)) || (!math.IsNaN(tc.want) && math.Abs(got-tc.want) > 1e-12) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
