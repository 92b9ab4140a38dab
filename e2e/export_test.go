package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/sinktest"
	"github.com/sekisho/sekisho/internal/testpki"
)

// TestAuditExport: `sekisho serve --config` with the three sinks of
// audit_export (json-lines, syslog, otlp), each a real receiver over TLS.
// The receivers are stopped while a service creates and reads records:
// every request still succeeds; once they are back, each has every event
// of the store (as `sekisho audit tail` lists it), byte for byte.
func TestAuditExport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a server")
	}
	ca, err := testpki.NewCA("siem CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	caFile := filepath.Join(tmp, "siem-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	kinds := []string{"json-lines", "syslog", "otlp"}
	recv := map[string]*sinktest.Receiver{}
	var sinks []string
	for _, k := range kinds {
		r := sinktest.New(t, k, leaf.TLS())
		r.Start()
		defer func() { r.Stop() }()
		recv[k] = r
		where := "address: " + r.Addr()
		if k == "otlp" {
			where = "endpoint: https://" + r.Addr() + "/v1/logs\n      headers: {X-Api-Key: " + sinktest.APIKey + "}"
		}
		sinks = append(sinks, fmt.Sprintf("    - name: %s\n      type: %s\n      %s\n      ca_file: %s\n      poll_interval: 50ms", strings.ReplaceAll(k, "-", "_"), k, where, caFile))
	}
	cursors := filepath.Join(tmp, "cursors")
	config := filepath.Join(tmp, "sekisho.yaml")
	conf := "audit_export:\n  cursor_dir: " + cursors + "\n  sinks:\n" + strings.Join(sinks, "\n") + "\n"
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "data")
	srv := startServer(t, dir, masterKey(), "--config", config)
	svc := service(t, srv, enrol(t, srv))
	auth := svc.authorize(t, srv)

	var ids []string
	work := func(n int) {
		t.Helper()
		for i := range n {
			resp, b, err := do(srv.http, auth, "POST", srv.base+"/v1/collections/users/records", "ops",
				[]byte(fmt.Sprintf(`{"region":"jp","fields":{"display_name":"User %d","country":"JP"}}`, i)))
			var rec struct{ ID string }
			if err != nil || resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &rec) != nil {
				t.Fatalf("create: %v %s", err, b)
			}
			ids = append(ids, rec.ID)
			for _, id := range ids[max(0, len(ids)-3):] {
				if resp, b, err := do(srv.http, auth, "GET", srv.base+"/v1/collections/users/records/"+id, "ops", nil); err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("read: %v %s", err, b)
				}
			}
		}
	}
	work(5)
	waitExported(t, dir, recv)

	for _, r := range recv {
		r.Stop()
	}
	work(10) // every request answered while no sink is reachable
	for _, r := range recv {
		r.Start()
	}
	n := waitExported(t, dir, recv)
	for k, r := range recv {
		if bad := r.Bad(); len(bad) > 0 {
			t.Errorf("%s receiver could not decode: %v", k, bad)
		}
	}
	t.Logf("%d events exported to each of %v", n, kinds)
}

// waitExported waits until every receiver has every event of the data
// directory's log, each the stored event byte for byte, and returns how
// many there are.
func waitExported(t *testing.T, dir string, recv map[string]*sinktest.Receiver) int {
	t.Helper()
	out, code := sekisho(t, "audit", "tail", "--data", dir, "-n", "1000000", "--format", "json")
	if code != 0 {
		t.Fatalf("audit tail: exit %d", code)
	}
	want := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var tl struct {
			Log   string          `json:"log"`
			Index uint64          `json:"index"`
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal([]byte(l), &tl); err != nil {
			t.Fatalf("audit tail line %q: %v", l, err)
		}
		want[fmt.Sprintf("%s/%d", tl.Log, tl.Index)] = string(tl.Event)
	}
	deadline := time.Now().Add(30 * time.Second)
	for k, r := range recv {
		for {
			have := map[string]bool{}
			for _, g := range r.Snapshot() {
				key := fmt.Sprintf("%s/%d", g.Log, g.Index)
				if ev, ok := want[key]; ok {
					if ev != g.Event {
						t.Fatalf("%s received %s as\n%s\nthe store has\n%s", k, key, g.Event, ev)
					}
					have[key] = true
				}
			}
			if len(have) == len(want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d of the %d stored events; log:\n%s", k, len(have), len(want), readLog(dir))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return len(want)
}
