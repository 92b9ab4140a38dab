package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sk "github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/postgres"
)

// TestPostgresFailover: a PostgreSQL primary and a synchronous streaming
// standby (scripts/pg.sh: pg_basebackup -R, synchronous_standby_names), two
// sekisho serve nodes on the multi-host URL with target_session_attrs=
// read-write, under mixed load (creates and reads on both nodes). The primary
// is SIGKILLed, then the standby promoted. Meanwhile requests answer 2xx or
// store-unavailable (503, Retry-After) and never 500; the nodes recover by
// themselves; afterwards every acknowledged create is there with its value,
// every answered request's X-Request-Id has its audit event, and audit
// verify passes.
func TestPostgresFailover(t *testing.T) {
	pdir, _ := pgCluster(t)
	sdir, err := os.MkdirTemp("/tmp", "sekisho-e2e-standby-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sdir, 0o755)
	out, err := pgScript("standby", pdir, sdir)
	if err != nil {
		t.Fatalf("start the standby: %v\n%s", err, out)
	}
	t.Cleanup(func() { pgScript("stop", sdir); os.RemoveAll(sdir) })
	port := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(dir, "port"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	user := strings.TrimPrefix(strings.Split(strings.TrimSpace(out), "@")[0], "postgres://")
	dsn := fmt.Sprintf("postgres://%s@127.0.0.1:%s,127.0.0.1:%s/postgres?sslmode=disable&target_session_attrs=read-write",
		user, port(pdir), port(sdir))

	ctx := context.Background()
	key := masterKey()
	dir1 := filepath.Join(t.TempDir(), "node1")
	n1 := startServer(t, dir1, key, "--store", dsn)
	tok, err := os.ReadFile(filepath.Join(dir1, "bootstrap-admin-token"))
	ok(t, "bootstrap token", err)
	admin := newClient(t, n1, nil)
	_, err = admin.Bootstrap(ctx, strings.TrimSpace(string(tok)), "admin", "admin's laptop")
	ok(t, "bootstrap", err)
	svcKey, err := dpop.GenerateKey("ed25519")
	ok(t, "key", err)
	ok(t, "principal", admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "fo-svc", "org": "operator", "kind": "service", "roles": []string{"service"}}, nil))
	c1 := newClient(t, n1, svcKey)
	d, err := c1.Enrol(ctx, "fo-svc", "fo-svc device")
	ok(t, "enrol", err)
	ok(t, "approve", admin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil))
	var first struct{ ID string }
	ok(t, "first record", c1.JSON(ctx, "POST", "/v1/collections/users/records", "ops", map[string]any{"region": "jp",
		"fields": map[string]any{"display_name": "first"}}, &first))
	// The second node: the same keyring and audit keys, as a deployment copies them.
	dir2 := filepath.Join(t.TempDir(), "node2")
	ok(t, "mkdir", os.MkdirAll(dir2, 0o700))
	for _, f := range []string{"keyring.sealed", "audit-signing-key", "audit-verifier-key"} {
		b, err := os.ReadFile(filepath.Join(dir1, f))
		ok(t, "read "+f, err)
		ok(t, "write "+f, os.WriteFile(filepath.Join(dir2, f), b, 0o600))
	}
	n2 := startServer(t, dir2, key, "--store", dsn)
	c2 := newClient(t, n2, svcKey)

	type result struct {
		status int
		reqID  string
		id     string
		name   string
		retry  string
	}
	var (
		mu      sync.Mutex
		results []result
		errs    []error
		phase   atomic.Int32 // 0 before the kill, 1 from the kill on
		during  atomic.Int64
	)
	send := func(c *client.Client, rnd *rand.Rand, n int) {
		var r result
		var resp *http.Response
		var err error
		if n%3 == 2 {
			resp, err = c.Do(ctx, "GET", "/v1/collections/users/records/"+first.ID+"?fields=display_name", nil, http.Header{"Sekisho-Purpose": {"ops"}})
		} else {
			r.name = fmt.Sprintf("rec-%d-%d", rnd.Uint32(), n)
			body, _ := json.Marshal(map[string]any{"region": "jp", "fields": map[string]any{"display_name": r.name}})
			resp, err = c.Do(ctx, "POST", "/v1/collections/users/records", body, http.Header{"Sekisho-Purpose": {"ops"}, "Content-Type": {"application/json"}})
		}
		if phase.Load() == 1 {
			during.Add(1)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.status, r.reqID, r.retry = resp.StatusCode, resp.Header.Get("X-Request-Id"), resp.Header.Get("Retry-After")
		if resp.StatusCode == http.StatusCreated {
			var rec struct{ ID string }
			json.Unmarshal(b, &rec)
			r.id = rec.ID
		}
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			r.name = string(b)
		}
		results = append(results, r)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				send([]*client.Client{c1, c2}[(w+n)%2], rnd, n)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(2 * time.Second)

	// The primary crashes; a supervisor promotes the standby a little later.
	killed := time.Now()
	phase.Store(1)
	if out, err := pgScript("kill9", pdir); err != nil {
		t.Fatalf("kill the primary: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second)
	if out, err := pgScript("promote", sdir); err != nil {
		t.Fatalf("promote the standby: %v\n%s", err, out)
	}
	promoted := time.Now()
	// Recovered when both nodes acknowledge a create again.
	recovered := map[*client.Client]time.Duration{}
	for time.Since(killed) < 90*time.Second && len(recovered) < 2 {
		for _, c := range []*client.Client{c1, c2} {
			if _, done := recovered[c]; done {
				continue
			}
			if c.JSON(ctx, "POST", "/v1/collections/users/records", "ops", map[string]any{"region": "jp", "fields": map[string]any{"display_name": "probe"}}, nil) == nil {
				recovered[c] = time.Since(killed)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	phase.Store(2)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if len(recovered) < 2 {
		t.Fatalf("the nodes did not recover within 90 s of the kill (%v)", recovered)
	}

	// Every answer was a success or store-unavailable with Retry-After.
	var acked, unavailable, other int
	for _, r := range results {
		switch {
		case r.status == http.StatusCreated || r.status == http.StatusOK:
			if r.status == http.StatusCreated {
				acked++
			}
		case r.status == http.StatusServiceUnavailable && r.retry != "":
			unavailable++
		default:
			other++
			t.Errorf("answer %d (request %s): %s", r.status, r.reqID, r.name)
		}
	}
	st, err := postgres.Open(ctx, dsn)
	ok(t, "open the new primary", err)
	defer st.Close()
	var missingEvents int
	for _, r := range results {
		if r.status == http.StatusCreated {
			recs, err := st.GetRecords(ctx, "users", []string{r.id})
			if err != nil || len(recs) != 1 {
				t.Errorf("acknowledged record %s (%s) is missing after the failover: %v", r.id, r.name, err)
			}
		}
		if r.status == http.StatusCreated || r.status == http.StatusOK {
			evs, err := st.QueryAudit(ctx, sk.AuditFilter{RequestID: r.reqID, Limit: 5})
			if err != nil || len(evs) == 0 {
				missingEvents++
				t.Errorf("request %s answered %d has no audit event: %v", r.reqID, r.status, err)
			}
		}
	}
	// Values: read back through a node.
	for _, r := range results[:min(len(results), 400)] {
		if r.status != http.StatusCreated {
			continue
		}
		var rec struct {
			Fields map[string]any `json:"fields"`
		}
		ok(t, "read back "+r.id, c1.JSON(ctx, "GET", "/v1/collections/users/records/"+r.id+"?fields=display_name", "ops", nil, &rec))
		if rec.Fields["display_name"] != r.name {
			t.Errorf("record %s: %v, want %s", r.id, rec.Fields["display_name"], r.name)
		}
	}
	n1.kill()
	n2.kill()
	vout, err := exec.Command(binary, "audit", "verify", "--data", dir1, "--store", dsn).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(vout), "OK") {
		t.Fatalf("audit verify after the failover: %v\n%s", err, vout)
	}
	t.Logf("failover: %d answers (%d during the failover window), %d acknowledged creates, %d store-unavailable 503, %d other, %d transport/token errors, %d without an event; promoted %v after the kill; recovered %v (node 1) and %v (node 2) after the kill; lost 0; %s",
		len(results), during.Load(), acked, unavailable, other, len(errs), missingEvents, promoted.Sub(killed).Round(time.Millisecond),
		recovered[c1].Round(time.Millisecond), recovered[c2].Round(time.Millisecond), strings.TrimSpace(string(vout)))
}
