package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCrashEveryResponseIsAudited kills a serving process with SIGKILL, five
// times, while clients create and read records. Afterwards every response a
// client received (by its X-Request-Id) must have its event in the log, and
// the log must verify: the event is durable before the data leaves.
func TestCrashEveryResponseIsAudited(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a server")
	}
	const (
		rounds  = 5
		workers = 8
	)
	dir := filepath.Join(t.TempDir(), "data")
	key := masterKey()
	var (
		mu       sync.Mutex
		received = map[string]string{} // request id -> method and path
		ids      []string              // records created, for reads
		others   int                   // responses other than 2xx
	)
	var cred, svc *creds
	for round := 0; round < rounds; round++ {
		srv := startServer(t, dir, key)
		if cred == nil {
			cred = enrol(t, srv)
			svc = service(t, srv, cred)
		}
		auth := svc.authorize(t, srv)
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					method, url, purpose, body := "POST", srv.base+"/v1/collections/users/records", "ops",
						[]byte(fmt.Sprintf(`{"region":"jp","fields":{"display_name":"User %d-%d","country":"JP"}}`, round, n))
					mu.Lock()
					if len(ids) > 0 && n%2 == 1 {
						method, body = "GET", nil
						url += "/" + ids[rand.IntN(len(ids))]
					}
					mu.Unlock()
					resp, b, err := do(client, auth, method, url, purpose, body)
					if err != nil {
						// The server died under the request: no response
						// was received, so nothing is owed.
						if resp == nil {
							continue
						}
					}
					rid := resp.Header.Get("X-Request-Id")
					mu.Lock()
					if resp.StatusCode/100 == 2 {
						received[rid] = method + " " + strings.TrimPrefix(url, srv.base)
						if method == "POST" {
							var rec struct{ ID string }
							if json.Unmarshal(b, &rec) == nil && rec.ID != "" {
								ids = append(ids, rec.ID)
							}
						}
					} else {
						others++
						t.Logf("round %d: %s %s: %s %s", round, method, url, resp.Status, b)
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(600+rand.IntN(600)) * time.Millisecond)
		srv.kill() // SIGKILL while the workers are mid-request
		close(stop)
		wg.Wait()
		client.CloseIdleConnections()
		mu.Lock()
		t.Logf("round %d: %d responses received so far", round, len(received))
		mu.Unlock()
	}
	if len(received) < 50 {
		t.Fatalf("only %d responses received: the load did not run", len(received))
	}
	if others > 0 {
		t.Errorf("%d responses were not 2xx", others)
	}

	// The server is dead; read the log from the data directory.
	out, code := sekisho(t, "audit", "events", "--data", dir)
	if code != 0 {
		t.Fatalf("audit events: exit %d", code)
	}
	logged := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct {
			RequestID string `json:"request_id"`
			Decision  string `json:"decision"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit events line %q: %v", sc.Text(), err)
		}
		logged[ev.RequestID] = true
	}
	missing := 0
	for rid, what := range received {
		if !logged[rid] {
			missing++
			if missing <= 10 {
				t.Errorf("response %s (%s) was received but has no audit event", rid, what)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d received responses have no audit event", missing, len(received))
	}
	t.Logf("%d responses received over %d SIGKILLs, all %d in the log of %d events", len(received), rounds, len(received), len(logged))

	// Spot checks through the --request-id filter.
	n := 0
	for rid := range received {
		if n++; n > 3 {
			break
		}
		out, code := sekisho(t, "audit", "events", "--data", dir, "--request-id", rid)
		if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"request_id":"`+rid+`"`) {
			t.Fatalf("audit events --request-id %s: exit %d: %s", rid, code, out)
		}
	}
	out, code = sekisho(t, "audit", "verify", "--data", dir)
	if code != 0 {
		t.Fatalf("audit verify after the crashes: exit %d:\n%s", code, out)
	}
	t.Log(strings.TrimSpace(out))
}
