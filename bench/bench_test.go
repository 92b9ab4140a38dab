package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestSmoke runs the whole harness at a tiny size, so that it cannot rot: it
// builds the bench and sekisho, imports 300 records, runs every workload for
// a second and checks that results.json has every key, with a positive
// number. It never judges a timing: a benchmark does not fail a test.
// With SEKISHO_TEST_POSTGRES set it runs against PostgreSQL too.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and runs a server")
	}
	dir := t.TempDir()
	bench := filepath.Join(dir, "bench")
	if out, err := exec.Command("go", "build", "-o", bench, ".").CombinedOutput(); err != nil {
		t.Fatalf("build bench: %v\n%s", err, out)
	}
	sek := filepath.Join(dir, "sekisho")
	build := exec.Command("go", "build", "-o", sek, "./cmd/sekisho")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build sekisho: %v\n%s", err, out)
	}
	stores := map[string]string{"sqlite": ""}
	if dsn := os.Getenv("SEKISHO_TEST_POSTGRES"); dsn != "" {
		stores["postgres"] = dsn
	}
	t.Run("tls", func(t *testing.T) {
		// -tls: floor_tls, hot_read over TLS and hot_read_mtls in one run,
		// in two rounds (-rounds) pooled.
		out := filepath.Join(dir, "out-tls")
		args := []string{"-bin", sek, "-records", "300", "-duration", "1s", "-concurrency", "4", "-tls", "-principals", "4",
			"-only", "floor_tls,hot_read,hot_read_mtls", "-rounds", "2", "-out", out}
		if b, err := exec.Command(bench, args...).CombinedOutput(); err != nil {
			t.Fatalf("bench %v: %v\n%s", args, err, b)
		}
		b, err := os.ReadFile(filepath.Join(out, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			TLS       bool                      `json:"tls"`
			MTLSRatio float64                   `json:"hot_read_mtls_floor_ratio"`
			Ratio     float64                   `json:"hot_read_floor_ratio"`
			Workloads map[string]map[string]any `json:"workloads"`
			Rounds    []struct {
				Round     int     `json:"round"`
				Floor     float64 `json:"floor_rps"`
				MTLSRatio float64 `json:"hot_read_mtls_floor_ratio"`
			} `json:"rounds"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if !r.TLS || r.MTLSRatio <= 0 || r.Ratio <= 0 || len(r.Rounds) != 2 {
			t.Fatalf("results: %s", b)
		}
		// The pooled ratio is the rounds' together: between theirs (up to
		// the rounds' slightly unequal lengths).
		lo, hi := min(r.Rounds[0].MTLSRatio, r.Rounds[1].MTLSRatio), max(r.Rounds[0].MTLSRatio, r.Rounds[1].MTLSRatio)
		if r.Rounds[0].Round != 1 || r.Rounds[1].Round != 2 || r.Rounds[0].Floor <= 0 || lo <= 0 || r.MTLSRatio < lo*0.95 || r.MTLSRatio > hi*1.05 {
			t.Fatalf("rounds %+v, pooled mtls ratio %.3f", r.Rounds, r.MTLSRatio)
		}
		for _, w := range []string{"floor_tls", "hot_read", "hot_read_mtls"} {
			if r.Workloads[w] == nil || r.Workloads[w]["errors"] != float64(0) {
				t.Fatalf("workload %s: %v", w, r.Workloads[w])
			}
		}
	})
	t.Run("pkcs11", func(t *testing.T) {
		// -key-provider pkcs11: import and serve keep the KEKs in a
		// SoftHSM2 token; hot_read runs without errors and the results
		// name the provider.
		if _, err := exec.LookPath("softhsm2-util"); err != nil {
			if os.Getenv("SEKISHO_REQUIRE_SOFTHSM") != "" {
				t.Fatalf("softhsm2-util not found (Debian's softhsm2): %v", err)
			}
			t.Skip("softhsm2-util not found; set SEKISHO_REQUIRE_SOFTHSM=1 to make this a failure")
		}
		out := filepath.Join(dir, "out-pkcs11")
		args := []string{"-bin", sek, "-records", "300", "-duration", "1s", "-concurrency", "4", "-principals", "4",
			"-key-provider", "pkcs11", "-only", "floor,hot_read", "-out", out}
		if b, err := exec.Command(bench, args...).CombinedOutput(); err != nil {
			t.Fatalf("bench %v: %v\n%s", args, err, b)
		}
		b, err := os.ReadFile(filepath.Join(out, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			KeyProvider string                    `json:"key_provider"`
			Ratio       float64                   `json:"hot_read_floor_ratio"`
			Workloads   map[string]map[string]any `json:"workloads"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.KeyProvider != "pkcs11 (SoftHSM2)" || r.Ratio <= 0 || r.Workloads["hot_read"] == nil || r.Workloads["hot_read"]["errors"] != float64(0) {
			t.Fatalf("results: %s", b)
		}
	})
	for name, dsn := range stores {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+name)
			args := []string{"-bin", sek, "-records", "300", "-duration", "1s", "-concurrency", "4", "-out", out}
			if dsn != "" {
				args = append(args, "-store", dsn)
			}
			cmd := exec.Command(bench, args...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("bench %v: %v\n%s", args, err, b)
			}
			checkResults(t, filepath.Join(out, "results.json"))
			if _, err := os.Stat(filepath.Join(out, "results.md")); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSoakSmoke runs the soak mode for a few seconds: soak.json has a
// sample a second with the server's RSS, heap, goroutines and open files
// read, every request sent, and no errors.
func TestSoakSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and runs a server")
	}
	dir := t.TempDir()
	bench := filepath.Join(dir, "bench")
	if out, err := exec.Command("go", "build", "-o", bench, ".").CombinedOutput(); err != nil {
		t.Fatalf("build bench: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out")
	args := []string{"-records", "300", "-principals", "2", "-soak", "4s", "-soak-every", "1s", "-soak-rate", "25", "-out", out}
	if b, err := exec.Command(bench, args...).CombinedOutput(); err != nil {
		t.Fatalf("bench %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "soak.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r soakResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.Requests != 100 {
		t.Errorf("%d requests, %d errors (%v, first %s)", r.Requests, r.Errors, r.ErrorKinds, r.FirstError)
	}
	if len(r.Samples) < 4 {
		t.Fatalf("%d samples", len(r.Samples))
	}
	for _, s := range r.Samples {
		if s.RSSMiB <= 0 || s.HeapInuseMiB <= 0 || s.Goroutines <= 0 || s.FDs <= 0 {
			t.Errorf("sample without a reading: %+v (%s)", s, r.MetricsNote)
		}
	}
	for _, k := range []string{"rss_mib", "heap_inuse_mib", "goroutines", "fds"} {
		if r.Series[k] == nil {
			t.Errorf("no series %s", k)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "soak.csv")); err != nil {
		t.Error(err)
	}
}

func checkResults(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	positive := func(m map[string]any, where, key string) {
		t.Helper()
		v, ok := m[key].(float64)
		if !ok {
			t.Errorf("%s: %s missing or not a number: %v", where, key, m[key])
		} else if v <= 0 {
			t.Errorf("%s: %s = %v, want > 0", where, key, v)
		}
	}
	for _, k := range []string{"hot_read_floor_ratio", "import_rps", "rss_mib", "half_peak_p99_ms"} {
		positive(r, "results", k)
	}
	if c, _ := r["commit"].(string); c == "" {
		t.Error("commit is empty")
	}
	// The 194M projection: the four regions, each with hours and disk.
	p, _ := r["projection_194m"].(map[string]any)
	if p == nil {
		t.Error("projection_194m missing")
	} else {
		positive(p, "projection_194m", "bytes_per_record")
		positive(p, "projection_194m", "wall_hours")
		regs, _ := p["regions"].([]any)
		if len(regs) != 4 {
			t.Errorf("projection_194m: %d regions, want jp th tw id", len(regs))
		}
		for _, rg := range regs {
			m, _ := rg.(map[string]any)
			positive(m, "projection region", "hours")
			positive(m, "projection region", "disk_gib")
		}
	}
	m, _ := r["machine"].(map[string]any)
	if m == nil || m["cpu_model"] == "" {
		t.Errorf("machine: %v", r["machine"])
	} else {
		positive(m, "machine", "cores")
	}
	ws, _ := r["workloads"].(map[string]any)
	for _, name := range workloadOrder {
		if name == "floor_tls" || name == "hot_read_mtls" {
			continue // only with -tls; TestSmoke/tls checks them
		}
		w, _ := ws[name].(map[string]any)
		if w == nil {
			t.Errorf("workload %s missing", name)
			continue
		}
		for _, k := range []string{"throughput_rps", "p50_ms", "p99_ms", "p999_ms", "cpu_s_per_1k"} {
			positive(w, name, k)
		}
		if e, _ := w["errors"].(float64); e != 0 {
			t.Errorf("workload %s: %v requests failed (see notes in %s)", name, e, path)
		}
	}
}
