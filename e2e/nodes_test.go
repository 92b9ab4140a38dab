package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sk "github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/postgres"
)

// publicURL is what the three nodes are reached at behind their load
// balancer: every DPoP proof's htu names it, whichever node takes it.
const publicURL = "http://vault.test"

// recorder remembers the headers of the last request it sent.
type recorder struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	last http.Header
	path string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.last, r.path = req.Header.Clone(), req.URL.RequestURI()
	r.mu.Unlock()
	return r.rt.RoundTrip(req)
}

// via is an HTTP client that sends every request to addr, whatever the URL
// says (a load balancer that picked that node).
func via(addr string) (*http.Client, *recorder) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	rec := &recorder{rt: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}}}
	return &http.Client{Timeout: 20 * time.Second, Transport: rec}, rec
}

// TestThreeNodes: three sekisho serve nodes over one PostgreSQL, behind one
// public URL. A DPoP proof used on node 1 is refused on node 3 (a fresh one
// is accepted there); a volume budget spent on node 1 counts on node 2; a
// device revoked through node 1 is refused on node 3 within a second or
// two; a node SIGKILLed in the middle of a stream of creates, reads and
// updates loses none that it acknowledged (every record holds its last
// acknowledged value or the in-flight update's), every answer it gave has
// its audit event, and the audit log verifies.
func TestThreeNodes(t *testing.T) {
	_, dsn := pgCluster(t)
	ctx := context.Background()
	key := masterKey()
	root := t.TempDir()
	var nodes []*server
	var addrs []string
	var admin *client.Client
	for i := range 3 {
		dir := filepath.Join(root, fmt.Sprintf("node%d", i+1))
		if i > 0 {
			// The same keyring and audit keys as node 1, as a deployment copies them.
			ok(t, "mkdir", os.MkdirAll(dir, 0o700))
			for _, f := range []string{"keyring.sealed", "audit-signing-key", "audit-verifier-key"} {
				b, err := os.ReadFile(filepath.Join(nodes[0].dir, f))
				ok(t, "read "+f, err)
				ok(t, "write "+f, os.WriteFile(filepath.Join(dir, f), b, 0o600))
			}
		}
		addr := freeAddr(t)
		nodes = append(nodes, startServerOn(t, addr, "http", &http.Client{Timeout: 10 * time.Second}, dir, key, "--store", dsn, "--public-url", publicURL))
		addrs = append(addrs, addr)
		if i == 0 {
			// Node 1 makes the keys of the operator's jp region before the copies.
			tok, err := os.ReadFile(filepath.Join(dir, "bootstrap-admin-token"))
			ok(t, "bootstrap token", err)
			adminKey, _ := dpop.GenerateKey("ed25519")
			hc, _ := via(addr)
			admin = client.New(publicURL, adminKey)
			admin.HTTP = hc
			_, err = admin.Bootstrap(ctx, strings.TrimSpace(string(tok)), "admin", "admin's laptop")
			ok(t, "bootstrap", err)
			ok(t, "first record", admin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": "jp",
				"fields": map[string]any{"display_name": "first"}}, nil))
		}
	}
	on := func(i int, k *dpop.Key) (*client.Client, *recorder) {
		hc, rec := via(addrs[i])
		c := client.New(publicURL, k)
		c.HTTP = hc
		return c, rec
	}
	// Rules that would fire on a new principal at the test's hour are set to
	// log; budgets hold whatever the rules say.
	for _, r := range []string{guard.RuleOffHours, guard.RuleNewPurpose, guard.RuleNewDevice, guard.RuleNewSource} {
		ok(t, "rule "+r, admin.JSON(ctx, "PUT", "/v1/guard/rules/"+r, "", map[string]any{"action": "log"}, nil))
	}
	var ids []string
	for i := range 30 {
		var rec struct{ ID string }
		ok(t, "create", admin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": "jp",
			"fields": map[string]any{"display_name": fmt.Sprintf("user %d", i)}}, &rec))
		ids = append(ids, rec.ID)
	}
	agentKey, _ := dpop.GenerateKey("ed25519")
	ok(t, "agent", admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "agent", "org": "operator", "roles": []string{"support"}}, nil))
	a1, rec1 := on(0, agentKey)
	dev, err := a1.Enrol(ctx, "agent", "agent's laptop")
	ok(t, "enrol", err)
	ok(t, "approve", admin.JSON(ctx, "POST", "/v1/devices/"+dev.ID+"/approve", "", nil, nil))
	a2, _ := on(1, agentKey)
	a3, _ := on(2, agentKey)
	read := func(c *client.Client, id string) error {
		return c.JSON(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", "support", nil, nil)
	}

	t.Run("proof replay across nodes", func(t *testing.T) {
		ok(t, "read on node 1", read(a1, ids[0]))
		rec1.mu.Lock()
		h, path := rec1.last.Clone(), rec1.path
		rec1.mu.Unlock()
		hc3, _ := via(addrs[2])
		req, _ := http.NewRequest("GET", publicURL+path, nil)
		req.Header = h
		resp, err := hc3.Do(req)
		ok(t, "replay on node 3", err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "dpop-proof-replayed") {
			t.Fatalf("a proof used on node 1 was not refused as replayed on node 3: %s %s", resp.Status, b)
		}
		ok(t, "a fresh proof on node 3", read(a3, ids[0]))
	})

	t.Run("budget across nodes", func(t *testing.T) {
		// support: 20 distinct subjects a minute. 14 on node 1 (1 above), then node 2.
		for _, id := range ids[1:15] {
			ok(t, "read on node 1", read(a1, id))
		}
		time.Sleep(2 * time.Second) // > the guard's sync interval
		var n int
		var err error
		for _, id := range ids[15:] {
			if err = read(a2, id); err != nil {
				break
			}
			n++
		}
		// The volume-budget rule's default action quarantines as well.
		if typ := client.ProblemType(err); (typ != guard.ProblemBudget && typ != guard.ProblemQuarantined) ||
			!strings.Contains(err.Error(), "volume budget exceeded") {
			t.Fatalf("reads on node 2 past the budget spent on node 1: %v", err)
		}
		if n > 5 {
			t.Fatalf("node 2 allowed %d more distinct subjects after 15 on node 1 (budget 20)", n)
		}
		t.Logf("node 2 refused the agent after %d more distinct subjects (15 read on node 1, budget 20)", n)
	})

	t.Run("quarantine across nodes", func(t *testing.T) {
		// The agent read on node 3 before (the replay case); node 2 quarantined it.
		deadline := time.Now().Add(3 * time.Second)
		var err error
		for err = read(a3, ids[0]); err == nil && time.Now().Before(deadline); err = read(a3, ids[0]) {
			time.Sleep(100 * time.Millisecond)
		}
		refusedWith(t, "the agent on node 3 after node 2 quarantined it", err, guard.ProblemQuarantined)
	})

	t.Run("revocation across nodes", func(t *testing.T) {
		k2, _ := dpop.GenerateKey("ed25519")
		ok(t, "agent2", admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "agent2", "org": "operator", "roles": []string{"support"}}, nil))
		b1, _ := on(0, k2)
		dev2, err := b1.Enrol(ctx, "agent2", "agent2's laptop")
		ok(t, "enrol agent2", err)
		ok(t, "approve agent2", admin.JSON(ctx, "POST", "/v1/devices/"+dev2.ID+"/approve", "", nil, nil))
		a3, _ := on(2, k2)
		ok(t, "agent2 reads on node 3 before the revocation", read(a3, ids[0]))
		ok(t, "revoke through node 1", admin.JSON(ctx, "POST", "/v1/devices/"+dev2.ID+"/revoke", "", nil, nil))
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if err = read(a3, ids[0]); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err == nil {
			t.Fatal("a device revoked through node 1 still reads on node 3 after 3 s")
		}
		refusedWith(t, "agent2 on node 3 after the revocation", err, "device-revoked")
	})

	t.Run("node killed mid-stream", func(t *testing.T) {
		svcKey, _ := dpop.GenerateKey("ed25519")
		ok(t, "svc", admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "svc", "org": "operator", "kind": "service", "roles": []string{"service"}}, nil))
		s3, _ := on(2, svcKey)
		d, err := s3.Enrol(ctx, "svc", "svc")
		ok(t, "enrol svc", err)
		ok(t, "approve svc", admin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil))
		// Four workers on node 3, each creating records, reading them and
		// updating them (its own, so that each record's last value is
		// known); node 3 is SIGKILLed while creates, reads and updates are
		// in flight.
		type state struct {
			acked   string // the value of the last acknowledged create or update
			pending string // an update sent whose answer never came ("" none)
		}
		var (
			mu       sync.Mutex
			records  = map[string]*state{}
			answered []string // X-Request-Id of every 2xx answer
			counts   = map[string]int{}
			cut      = map[string]int{} // requests in flight when the node died
		)
		h := http.Header{"Sekisho-Purpose": {"ops"}, "Content-Type": {"application/json"}}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				var own []string
				for i := 0; i < 300; i++ {
					op, method, path, val := "create", "POST", "/v1/collections/users/records", fmt.Sprintf("stream %d-%d", w, i)
					var body []byte
					if len(own) > 0 && i%3 == 1 {
						op, method, path, val = "read", "GET", "/v1/collections/users/records/"+own[i%len(own)]+"?fields=display_name", ""
					} else if len(own) > 0 && i%3 == 2 {
						op, method, path = "update", "PATCH", "/v1/collections/users/records/"+own[i%len(own)]
					}
					if op != "read" {
						f := map[string]any{"fields": map[string]any{"display_name": val}}
						if op == "create" {
							f["region"] = "jp"
						}
						body, _ = json.Marshal(f)
					}
					var id string
					if op != "create" {
						id = strings.TrimPrefix(strings.SplitN(path, "?", 2)[0], "/v1/collections/users/records/")
						if op == "update" {
							mu.Lock()
							records[id].pending = val
							mu.Unlock()
						}
					}
					resp, err := s3.Do(ctx, method, path, body, h)
					if err != nil {
						// The node died under the request: no answer, nothing
						// owed (an update's outcome stays unknown: pending).
						mu.Lock()
						cut[op]++
						mu.Unlock()
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						t.Errorf("%s on node 3: %s %s", op, resp.Status, b)
						return
					}
					var rec struct {
						ID     string
						Fields map[string]string
					}
					if err := json.Unmarshal(b, &rec); err != nil {
						t.Errorf("%s: %v: %s", op, err, b)
						return
					}
					mu.Lock()
					answered = append(answered, resp.Header.Get("X-Request-Id"))
					counts[op]++
					switch op {
					case "create":
						records[rec.ID] = &state{acked: val}
						own = append(own, rec.ID)
					case "update":
						records[id].acked, records[id].pending = val, ""
					case "read":
						if got := rec.Fields["display_name"]; got != records[id].acked {
							t.Errorf("read %s on node 3 = %q, want the last acknowledged %q", id, got, records[id].acked)
						}
					}
					mu.Unlock()
				}
			})
		}
		time.Sleep(1500 * time.Millisecond)
		nodes[2].kill()
		wg.Wait()
		if len(cut) == 0 {
			t.Fatal("no request was in flight when node 3 was killed")
		}
		if counts["create"] == 0 || counts["read"] == 0 || counts["update"] == 0 {
			t.Fatalf("node 3 answered %v before it was killed: want creates, reads and updates", counts)
		}
		// Every record holds its last acknowledged value, or the value of
		// the update in flight when node 3 died (which may or may not have
		// committed), read through node 1.
		s1, _ := on(0, svcKey)
		inFlight := 0
		for id, st := range records {
			var rec struct{ Fields map[string]string }
			ok(t, "read "+id+" on node 1", s1.JSON(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", "ops", nil, &rec))
			switch got := rec.Fields["display_name"]; {
			case got == st.acked:
			case st.pending != "" && got == st.pending:
				inFlight++
			default:
				t.Errorf("record %s = %q after the kill, want %q (acknowledged) or %q (in flight)", id, got, st.acked, st.pending)
			}
		}
		// Every answer node 3 gave has its audit event.
		pg, err := postgres.Open(ctx, dsn)
		ok(t, "open store", err)
		defer pg.Close()
		for _, rid := range answered {
			evs, err := pg.QueryAudit(ctx, sk.AuditFilter{RequestID: rid})
			if err != nil || len(evs) == 0 {
				t.Errorf("answer %s of node 3 has no audit event: %v", rid, err)
			}
		}
		t.Logf("node 3 answered %v before SIGKILL, %v were in flight (%d records); every record holds its acknowledged value (%d the in-flight update's); %d answers, each with its audit event",
			counts, cut, len(records), inFlight, len(answered))
	})

	for _, n := range nodes[:2] {
		n.kill()
	}
	outb, err := exec.Command(binary, "audit", "verify", "--data", nodes[0].dir, "--store", dsn).CombinedOutput()
	if out := string(outb); err != nil || !strings.HasPrefix(out, "OK") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}
