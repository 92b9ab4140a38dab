package main

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// scrapeMetrics reads the text exposition at url into a map from each
// sample's name with its labels (as written) to its value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// /metrics has the audit log's commit latency, a histogram whose count is
// the log's commits (sekisho_audit_commits_total, the control) and whose
// buckets add up: after a request the server audits, both count it.
func TestServeExportsAuditCommitLatency(t *testing.T) {
	setMasterKey(t)
	metrics := freeAddr(t)
	s := startServe(t, t.TempDir(), freeAddr(t), "--metrics-addr", metrics)
	before := scrapeMetrics(t, "http://"+metrics+"/metrics")
	// An unauthenticated read is refused and audited.
	resp, err := http.Get(s.url + "/v1/collections/users/records/01JD0000000000000000000000")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated read: %d, want 401", resp.StatusCode)
	}
	const count = `sekisho_audit_commit_seconds_count{log="default"}`
	var m map[string]float64
	for range 50 { // the counts are read one after the other: a commit may land between
		m = scrapeMetrics(t, "http://"+metrics+"/metrics")
		if m[count] == m["sekisho_audit_commits_total"] && m[count] > before[count] {
			break
		}
	}
	if m[count] != m["sekisho_audit_commits_total"] || m[count] <= before[count] {
		t.Fatalf("commit latency count %v (before the request %v), sekisho_audit_commits_total %v", m[count], before[count], m["sekisho_audit_commits_total"])
	}
	prev := -1.0
	for _, le := range []string{"0.0001", "0.00025", "0.0005", "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf"} {
		v, ok := m[`sekisho_audit_commit_seconds_bucket{log="default",le="`+le+`"}`]
		if !ok {
			t.Fatalf("no bucket le=%s", le)
		}
		if v < prev {
			t.Fatalf("bucket le=%s holds %v, fewer than the one below (%v)", le, v, prev)
		}
		prev = v
	}
	if prev != m[count] || m[`sekisho_audit_commit_seconds_sum{log="default"}`] <= 0 {
		t.Fatalf("the +Inf bucket holds %v, count %v, sum %v", prev, m[count], m[`sekisho_audit_commit_seconds_sum{log="default"}`])
	}
}
