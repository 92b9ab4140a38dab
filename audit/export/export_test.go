package export_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/audit/export"
	"github.com/sekisho/sekisho/internal/sinktest"
	"github.com/sekisho/sekisho/internal/testpki"
	"github.com/sekisho/sekisho/sqlite"
)

// vaultLogs is a default log and a region's log, each in its own SQLite store.
type vaultLogs struct {
	logs   map[string]*audit.Log
	stores []sekisho.LogStore
}

func newLogs(t *testing.T) *vaultLogs {
	t.Helper()
	ctx := context.Background()
	v := &vaultLogs{logs: map[string]*audit.Log{}}
	for _, region := range []string{"", "jp"} {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		signer, verifier, err := audit.LoadOrCreateKeys(t.TempDir(), "sekisho.test/audit")
		if err != nil {
			t.Fatal(err)
		}
		l, err := audit.New(ctx, st, signer, audit.Options{Origin: "sekisho.test/audit", Verifier: verifier})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		v.logs[export.LogName(sekisho.LogStore{Region: region})] = l
		v.stores = append(v.stores, sekisho.LogStore{Region: region, Store: st})
	}
	return v
}

// add appends n events to every log (deny every third).
func (v *vaultLogs) add(t *testing.T, n int) {
	t.Helper()
	if err := v.append(n); err != nil {
		t.Fatal(err)
	}
}

func (v *vaultLogs) append(n int) error {
	for name, l := range v.logs {
		for i := range n {
			d := sekisho.Allow
			if i%3 == 0 {
				d = sekisho.Deny
			}
			ev := sekisho.Event{Time: time.Now(), RequestID: fmt.Sprintf("req-%s-%d", name, i), Org: "line", Principal: "alice",
				Action: "read", Collection: "users", Records: []string{"r" + strconv.Itoa(i)}, Decision: d, Policy: "grant/g1",
				Detail: "名前 \"quoted\" ] \\ line\nbreak"}
			if _, err := l.Append(context.Background(), ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// leaves returns every stored leaf of every log by (log, index).
func (v *vaultLogs) leaves(t *testing.T) map[[2]string]string {
	t.Helper()
	out := map[[2]string]string{}
	for _, ls := range v.stores {
		es, err := ls.Store.AuditLeaves(context.Background(), 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out[[2]string{export.LogName(ls), strconv.FormatUint(e.Index, 10)}] = string(e.Leaf)
		}
	}
	return out
}

// waitAll waits until the receiver has every stored event, and checks each
// is the stored leaf byte for byte; it returns how many arrived twice.
func waitAll(t *testing.T, kind string, r *sinktest.Receiver, v *vaultLogs) int {
	t.Helper()
	want := v.leaves(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		seen := map[[2]string]int{}
		dups := 0
		for _, g := range r.Snapshot() {
			k := [2]string{g.Log, strconv.FormatUint(g.Index, 10)}
			if leaf, ok := want[k]; !ok || leaf != g.Event {
				t.Fatalf("%s: received %v/%d that is not the stored leaf:\n got %s\nwant %s", kind, g.Log, g.Index, g.Event, leaf)
			}
			if seen[k]++; seen[k] > 1 {
				dups++
			}
		}
		if len(seen) == len(want) {
			return dups
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d events received", kind, len(seen), len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readCursor(t *testing.T, dir, sink, log string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, sink+"."+log+".cursor"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Next uint64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Next
}

// TestSinkDownThenBack: for each sink type with a real receiver, the events
// appended while the receiver is stopped all arrive once it is back (each
// the stored leaf, byte for byte, of the default and the regional log);
// the cursor does not move while the sink is down; a restarted exporter
// goes on from its cursor and sends nothing acknowledged before again.
func TestSinkDownThenBack(t *testing.T) {
	ca, err := testpki.NewCA("sink test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{export.TypeJSONLines, export.TypeSyslog, export.TypeOTLP} {
		t.Run(kind, func(t *testing.T) {
			v := newLogs(t)
			r := sinktest.New(t, kind, leaf.TLS())
			r.Start()
			defer func() { r.Stop() }()
			cfg := export.Config{Name: "siem", Type: kind, CAFile: caFile, BatchSize: 7, PollInterval: 20 * time.Millisecond}
			if kind == export.TypeOTLP {
				cfg.Endpoint = "https://" + r.Addr() + "/v1/logs"
				cfg.Headers = map[string]string{"X-Api-Key": sinktest.APIKey}
			} else {
				cfg.Address = r.Addr()
			}
			cursors := t.TempDir()
			reg := prometheus.NewRegistry()
			run := func() (stop func()) {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					done <- export.Run(ctx, export.Options{Sinks: []export.Config{cfg}, Logs: v.stores, CursorDir: cursors, Registry: reg,
						MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
				}()
				return func() {
					cancel()
					if err := <-done; err != nil {
						t.Fatal(err)
					}
				}
			}
			stopExport := run()

			v.add(t, 30)
			dups := waitAll(t, kind, r, v)

			// The receiver goes away; the vault goes on appending.
			r.Stop()
			v.add(t, 40)
			time.Sleep(300 * time.Millisecond)
			for _, log := range []string{"default", "jp"} {
				if c := readCursor(t, cursors, "siem", log); c != 30 {
					t.Errorf("cursor of %s while the sink is down = %d, want 30 (what it acknowledged)", log, c)
				}
			}
			fails, err := testutil.GatherAndCount(reg, "sekisho_audit_export_failures_total")
			if err != nil || fails == 0 {
				t.Errorf("failures metric: %d series, %v; want failures counted while the sink is down", fails, err)
			}
			r.Start()
			dups += waitAll(t, kind, r, v)

			// A restarted exporter starts from its cursors. The receiver
			// holds the last batch before the exporter has its answer and
			// moves the cursor: stopping before that is a resend, not a
			// loss (at least once), so the test waits for the cursors.
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if readCursor(t, cursors, "siem", "default") == 70 && readCursor(t, cursors, "siem", "jp") == 70 {
					break
				}
			}
			stopExport()
			for _, log := range []string{"default", "jp"} {
				if c := readCursor(t, cursors, "siem", log); c != 70 {
					t.Errorf("cursor of %s = %d, want 70", log, c)
				}
			}
			before := len(r.Snapshot())
			reg = prometheus.NewRegistry()
			stopExport = run()
			defer stopExport()
			v.add(t, 5)
			dups += waitAll(t, kind, r, v)
			for _, g := range r.Snapshot()[before:] {
				if g.Index < 70 {
					t.Errorf("restarted exporter sent %s/%d again: its cursor said 70", g.Log, g.Index)
				}
			}
			if bad := r.Bad(); len(bad) > 0 {
				t.Errorf("receiver could not decode: %v", bad)
			}
			t.Logf("%s: %d events received, %d duplicates", kind, len(r.Snapshot()), dups)
		})
	}
}

// TestSinkWithUnknownCertificateGetsNothing: the exporter checks the
// receiver's certificate; a receiver whose certificate the configured CA
// did not sign receives nothing and the cursor stays at 0 (the positive
// control is TestSinkDownThenBack, the same receiver with the right CA).
func TestSinkWithUnknownCertificateGetsNothing(t *testing.T) {
	ca, err := testpki.NewCA("sink test CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := other.Server()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	v := newLogs(t)
	v.add(t, 5)
	r := sinktest.New(t, export.TypeJSONLines, leaf.TLS())
	r.Start()
	defer r.Stop()
	cursors := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = export.Run(ctx, export.Options{Sinks: []export.Config{{Name: "siem", Type: export.TypeJSONLines, Address: r.Addr(), CAFile: caFile,
		PollInterval: 10 * time.Millisecond}}, Logs: v.stores, CursorDir: cursors, MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Snapshot()); n != 0 {
		t.Fatalf("receiver with an unknown certificate got %d events", n)
	}
	if _, err := os.Stat(filepath.Join(cursors, "siem.default.cursor")); err == nil {
		t.Fatal("a cursor was written though nothing was delivered")
	}
}

func TestConfigValidate(t *testing.T) {
	fac := 30
	tests := []struct {
		name string
		cfg  export.Config
		ok   bool
	}{
		{"json-lines", export.Config{Name: "siem", Type: "json-lines", Address: "siem.example:6514"}, true},
		{"syslog", export.Config{Name: "sys_1", Type: "syslog", Address: "[::1]:6514", SDID: "audit@55555"}, true},
		{"otlp", export.Config{Name: "otel", Type: "otlp", Endpoint: "https://collector:4318/v1/logs"}, true},
		{"bad name", export.Config{Name: "a/b", Type: "json-lines", Address: "h:1"}, false},
		{"unknown type", export.Config{Name: "x", Type: "kafka", Address: "h:1"}, false},
		{"no port", export.Config{Name: "x", Type: "syslog", Address: "h"}, false},
		{"otlp over http", export.Config{Name: "x", Type: "otlp", Endpoint: "http://collector:4318/v1/logs"}, false},
		{"otlp with address", export.Config{Name: "x", Type: "otlp", Endpoint: "https://c/v1/logs", Address: "h:1"}, false},
		{"facility out of range", export.Config{Name: "x", Type: "syslog", Address: "h:1", Facility: &fac}, false},
		{"facility on json-lines", export.Config{Name: "x", Type: "json-lines", Address: "h:1", Hostname: "a"}, false},
		{"bad sd_id", export.Config{Name: "x", Type: "syslog", Address: "h:1", SDID: "a b"}, false},
		{"cert without key", export.Config{Name: "x", Type: "syslog", Address: "h:1", CertFile: "c.pem"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	if err := export.Check(export.Options{Sinks: []export.Config{
		{Name: "a", Type: "json-lines", Address: "h:1"}, {Name: "a", Type: "syslog", Address: "h:2"}}, CursorDir: "x"}); err == nil {
		t.Fatal("two sinks named a: want an error")
	}
}

// TestOTLPCollectorStoppedUnderLoad: the OTLP collector goes away while
// events are being appended and exported (requests in flight are cut); once
// it is back it has every event: its 2xx answer is the acknowledgement, so
// a cut request is sent again.
func TestOTLPCollectorStoppedUnderLoad(t *testing.T) {
	ca, err := testpki.NewCA("sink test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	v := newLogs(t)
	kind := export.TypeOTLP
	r := sinktest.New(t, export.TypeOTLP, leaf.TLS())
	r.Start()
	defer func() { r.Stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- export.Run(ctx, export.Options{Sinks: []export.Config{{Name: "otel", Type: export.TypeOTLP, Endpoint: "https://" + r.Addr() + "/v1/logs",
			Headers: map[string]string{"X-Api-Key": sinktest.APIKey}, CAFile: caFile, BatchSize: 3, PollInterval: 5 * time.Millisecond}},
			Logs: v.stores, CursorDir: t.TempDir(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for round := range 3 {
		writer := make(chan struct{})
		go func() {
			defer close(writer)
			for range 20 {
				if err := v.append(2); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		time.Sleep(time.Duration(20+30*round) * time.Millisecond)
		r.Stop()
		<-writer
		r.Start()
		dups := waitAll(t, kind, r, v)
		t.Logf("round %d: %d events received, %d duplicates", round, len(r.Snapshot()), dups)
	}
}
