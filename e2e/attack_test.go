package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/internal/pgtest"
)

// The project's own attack suite (issue 13): the 2023 chain and the
// hardening cases, each run over HTTP against a real `sekisho serve`, each
// a refusal beside its positive control (the same request done right
// succeeds).

// cast is the cast of the attack: the operator's first admin, the
// affiliate's admin and its personnel-sync service account, and the
// subcontractor's member whose PC the malware is on.
type cast struct {
	srv                       *server
	admin, affAdmin, sync, pc *client.Client
	employee                  string // an operator employee's record id
	user                      string // a messaging user's record id
}

// newClient is a client of srv with a fresh device key.
func newClient(t *testing.T, srv *server, key *dpop.Key) *client.Client {
	t.Helper()
	if key == nil {
		var err error
		if key, err = dpop.GenerateKey("ed25519"); err != nil {
			t.Fatal(err)
		}
	}
	c := client.New(srv.base, key)
	c.HTTP = srv.http
	return c
}

func ok(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// refusedWith checks that err is the problem typ.
func refusedWith(t *testing.T, what string, err error, typ string) {
	t.Helper()
	if got := client.ProblemType(err); got != typ {
		t.Fatalf("%s: want %s, got %q (%v)", what, typ, got, err)
	}
}

// principal creates a principal of org with roles; its device key enrols
// itself and approver approves it.
func principal(t *testing.T, srv *server, creator, approver *client.Client, id, org string, roles ...string) *client.Client {
	t.Helper()
	ctx := context.Background()
	ok(t, "create "+id, creator.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": id, "org": org, "roles": roles}, nil))
	c := newClient(t, srv, nil)
	d, err := c.Enrol(ctx, id, id+"'s device")
	ok(t, "enrol "+id, err)
	ok(t, "approve "+id, approver.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil))
	return c
}

// newCast bootstraps srv's first admin and creates the orgs, principals,
// an operator employee and the grant of the shared personnel system.
func newCast(t *testing.T, srv *server) *cast {
	t.Helper()
	ctx := context.Background()
	tok, err := os.ReadFile(filepath.Join(srv.dir, "bootstrap-admin-token"))
	ok(t, "bootstrap token", err)
	c := &cast{srv: srv, admin: newClient(t, srv, nil)}
	_, err = c.admin.Bootstrap(ctx, strings.TrimSpace(string(tok)), "admin", "admin's laptop")
	ok(t, "bootstrap", err)
	for _, org := range []string{"affiliate", "subcontractor"} {
		ok(t, "org "+org, c.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": org, "home_region": "jp"}, nil))
	}
	c.affAdmin = principal(t, srv, c.admin, c.admin, "aff-admin", "affiliate", "admin")
	c.sync = principal(t, srv, c.affAdmin, c.affAdmin, "personnel-sync", "affiliate", "service")
	c.pc = principal(t, srv, c.admin, c.admin, "contractor", "subcontractor", "member")
	var rec struct{ ID string }
	ok(t, "employee", c.admin.JSON(ctx, "POST", "/v1/collections/employees/records", "ops", map[string]any{"region": "jp",
		"fields": map[string]any{"name": "Taro Yamada", "employee_number": "E-0001", "department": "infra", "email": "taro@corp.example",
			"salary_band": "S4"}}, &rec))
	c.employee = rec.ID
	ok(t, "user", c.admin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": "th",
		"fields": map[string]any{"display_name": "Somchai", "phone": "+66 81 234 5678", "country": "TH"}}, &rec))
	c.user = rec.ID
	ok(t, "grant", c.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": "affiliate", "grantee_principal": "personnel-sync",
		"collections": []string{"employees"}, "fields": []string{"name", "employee_number", "department", "email"},
		"regions": []string{"jp"}, "purposes": []string{"ops"}, "actions": []string{"read", "batch-get"},
		"expires": time.Now().Add(24 * time.Hour).Format(time.RFC3339)}, nil))
	return c
}

func (c *cast) readEmployee(cl *client.Client, fields string) error {
	return cl.JSON(context.Background(), "GET", "/v1/collections/employees/records/"+c.employee+"?fields="+fields, "ops", nil, nil)
}

// TestAttack2023Chain replays the 2023 chain against a real server: the
// subcontractor's token stolen and used from another machine, its device
// key used against the operator, and the pivot through the affiliate's
// shared personnel account beyond what its grant names.
func TestAttack2023Chain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir, masterKey())
	c := newCast(t, srv)
	ctx := context.Background()

	// (a) The PC's access token, copied by the malware and sent with the
	// attacker's own key: refused. Control: the PC itself is served.
	ok(t, "the PC's own request", c.pc.JSON(ctx, "GET", "/v1/whoami", "", nil, nil))
	tok, exp := c.pc.CurrentToken()
	thief := newClient(t, srv, nil)
	thief.SetToken(tok, exp)
	refusedWith(t, "stolen token", thief.JSON(ctx, "GET", "/v1/whoami", "", nil, nil), "token-key-mismatch")

	// (b) The PC's own key against the operator's records: no grant.
	refusedWith(t, "subcontractor reads operator", c.readEmployee(c.pc, "name,email"), "no-grant")

	// (c) The pivot: the affiliate's personnel-sync account reads what its
	// grant names (control), and nothing else.
	ok(t, "sync reads a granted field", c.readEmployee(c.sync, "name,email"))
	refusedWith(t, "sync asks for salary bands", c.readEmployee(c.sync, "salary_band"), "grant-field-not-listed")
	err := c.sync.JSON(ctx, "POST", "/v1/collections/users/records:batchGet", "ops", map[string]any{"ids": []string{c.user}, "fields": []string{"phone"}}, nil)
	refusedWith(t, "sync asks for users", err, "grant-collection-not-listed")
	err = c.sync.JSON(ctx, "GET", "/v1/collections/employees/records/"+c.employee+"?fields=name", "analytics", nil, nil)
	refusedWith(t, "sync states another purpose", err, "grant-purpose-not-listed")
}

// TestAttackGrantCannotBreakOtherOrgs (issue 13 point 1): an org admin's
// grant with a control character in a field name is refused when written,
// and every org's decisions go on; the same grant spelled right is stored.
func TestAttackGrantCannotBreakOtherOrgs(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"), masterKey())
	c := newCast(t, srv)
	ctx := context.Background()
	bad := map[string]any{"grantee_org": "subcontractor", "collections": []string{"employees", "partners"}, "fields": []string{"email\a"},
		"regions": []string{"jp"}, "purposes": []string{"ops"}, "actions": []string{"read"},
		"expires": time.Now().Add(time.Hour).Format(time.RFC3339)}
	refusedWith(t, "grant with a bell", c.affAdmin.JSON(ctx, "POST", "/v1/grants", "", bad, nil), "grant-invalid")
	ok(t, "operator reads its own employee after", c.readEmployee(c.admin, "name"))
	ok(t, "the affiliate's grant still works after", c.readEmployee(c.sync, "name"))
	bad["fields"] = []string{"email"}
	ok(t, "the grant spelled right", c.affAdmin.JSON(ctx, "POST", "/v1/grants", "", bad, nil))
	ok(t, "operator reads its own employee", c.readEmployee(c.admin, "name"))

	// Point 2: a forbid with a typo is refused with the validator's message.
	err := c.admin.JSON(ctx, "PUT", "/v1/policies/no-analytics", "", map[string]any{"cedar": `forbid (principal, action, resource) when { context.purpse == "analytics" };`}, nil)
	refusedWith(t, "policy with a typo", err, "policy-invalid")
	if !strings.Contains(err.Error(), "purpse") {
		t.Fatalf("policy-invalid does not say what: %v", err)
	}
	ok(t, "the policy spelled right", c.admin.JSON(ctx, "PUT", "/v1/policies/no-analytics", "",
		map[string]any{"cedar": `forbid (principal, action, resource) when { context.purpose == "analytics" };`}, nil))
}

// TestAttackDeviceKeyKnown (issue 13 point 3): the PC's key, taken by the
// malware, cannot be enrolled as a device of another principal.
func TestAttackDeviceKeyKnown(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"), masterKey())
	c := newCast(t, srv)
	ctx := context.Background()
	ok(t, "create mallory", c.affAdmin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "mallory", "roles": []string{"member"}}, nil))
	_, err := c.pc.Enrol(ctx, "mallory", "stolen key")
	refusedWith(t, "the PC's key under another principal", err, "device-key-known")
	_, err = newClient(t, srv, nil).Enrol(ctx, "mallory", "a key of its own")
	ok(t, "a fresh key", err)
}

// captured is a request as it went over the wire: headers with the access
// token and the DPoP proof.
type captured struct {
	method, path string
	header       http.Header
}

func capture(t *testing.T, c *client.Client, method, path string) captured {
	t.Helper()
	req, err := c.NewRequest(context.Background(), method, path, nil)
	ok(t, "build request", err)
	return captured{method: method, path: path, header: req.Header.Clone()}
}

// replay sends a captured request to base (whose public URL is public) and
// returns its status and problem type.
func (r captured) replay(t *testing.T, hc *http.Client, base string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(r.method, base+r.path, nil)
	req.Header = r.header.Clone()
	resp, err := hc.Do(req)
	ok(t, "send", err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return 200, ""
	}
	p := &client.Problem{}
	_ = jsonDecode(resp, p)
	return resp.StatusCode, strings.TrimPrefix(p.Type, "https://sekisho.dev/problems/")
}

// TestAttackProofReplayedAfterRestart (issue 13 point 4): a captured
// request is served once; sent again after the server restarts (killed,
// started again on its data directory) it is refused.
func TestAttackProofReplayedAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	key := masterKey()
	addr := freeAddr(t)
	srv := startServerOn(t, addr, "http", &http.Client{Timeout: 10 * time.Second}, dir, key)
	c := newCast(t, srv)
	req := capture(t, c.sync, "GET", "/v1/whoami")
	if code, typ := req.replay(t, srv.http, srv.base); code != 200 {
		t.Fatalf("first use: %d %s", code, typ)
	}
	srv.kill()
	srv = startServerOn(t, addr, "http", &http.Client{Timeout: 10 * time.Second}, dir, key)
	if code, typ := req.replay(t, srv.http, srv.base); typ != "dpop-proof-replayed" {
		t.Fatalf("replay after a restart: %d %q, want dpop-proof-replayed", code, typ)
	}
	// Control: a fresh request of the same device after the restart.
	fresh := capture(t, c.sync, "GET", "/v1/whoami")
	if code, typ := fresh.replay(t, srv.http, srv.base); code != 200 {
		t.Fatalf("fresh request after restart: %d %s", code, typ)
	}
}

// dialTo is a client that sends every request to addr, whatever the URL
// says: a load balancer's choice of node behind one public URL.
func dialTo(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}}
}

// copyKeys copies a data directory's keys and settings to another node's,
// leaving out the embedded database.
func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	ok(t, "mkdir", os.MkdirAll(to, 0o700))
	ents, err := os.ReadDir(from)
	ok(t, "read data dir", err)
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), "sekisho.db") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		ok(t, "read "+e.Name(), err)
		ok(t, "write "+e.Name(), os.WriteFile(filepath.Join(to, e.Name()), b, 0o600))
	}
}

// TestAttackProofReplayedOnSecondNode (issue 13 point 4): two servers over
// the same PostgreSQL behind one public URL; a request captured on its way
// to one node is refused by the other, in both directions.
func TestAttackProofReplayedOnSecondNode(t *testing.T) {
	dsn := pgtest.DSN(t)
	key := masterKey()
	const public = "http://sekisho.test"
	addrA, addrB := freeAddr(t), freeAddr(t)
	dirA := filepath.Join(t.TempDir(), "data")
	a := startServerOn(t, addrA, "http", dialTo(addrA), dirA, key, "--store", dsn, "--public-url", public)
	a.base = public
	c := newCast(t, a)
	dirB := filepath.Join(t.TempDir(), "data")
	copyKeys(t, dirA, dirB)
	b := startServerOn(t, addrB, "http", dialTo(addrB), dirB, key, "--store", dsn, "--public-url", public)
	b.base = public

	// Control: fresh requests are served by either node.
	for _, n := range []*server{a, b} {
		if code, typ := capture(t, c.sync, "GET", "/v1/whoami").replay(t, n.http, public); code != 200 {
			t.Fatalf("fresh request: %d %s", code, typ)
		}
	}
	for _, order := range [][2]*server{{a, b}, {b, a}} {
		req := capture(t, c.sync, "GET", "/v1/whoami")
		if code, typ := req.replay(t, order[0].http, public); code != 200 {
			t.Fatalf("first use: %d %s", code, typ)
		}
		if code, typ := req.replay(t, order[1].http, public); typ != "dpop-proof-replayed" {
			t.Fatalf("replay on the other node: %d %q, want dpop-proof-replayed", code, typ)
		}
	}
}

// jsonDecode decodes a response body.
func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// TestAttackMetricsNotOnDataListener (issue 13 point 8): the data listener
// does not serve /metrics (route-not-found); the metrics listener
// (--metrics-addr) does.
func TestAttackMetricsNotOnDataListener(t *testing.T) {
	maddr := freeAddr(t)
	srv := startServer(t, filepath.Join(t.TempDir(), "data"), masterKey(), "--metrics-addr", maddr)
	resp, err := srv.http.Get(srv.base + "/metrics")
	ok(t, "GET data /metrics", err)
	p := &client.Problem{}
	_ = jsonDecode(resp, p)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasSuffix(p.Type, "/route-not-found") {
		t.Fatalf("data listener /metrics: %d %s, want 404 route-not-found", resp.StatusCode, p.Type)
	}
	resp, err = srv.http.Get("http://" + maddr + "/metrics")
	ok(t, "GET metrics listener", err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "sekisho_http_requests_total") {
		t.Fatalf("metrics listener: %d\n%.300s", resp.StatusCode, b)
	}
}

// TestAttackRegionsClosedList (issue 13 point 11): serve --regions sets the
// closed list: a record pinned to a listed region is stored, anything else
// is region-unknown.
func TestAttackRegionsClosedList(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"), masterKey(), "--regions", "jp,kr")
	c := newCastRegions(t, srv)
	ctx := context.Background()
	for r, want := range map[string]string{"jp": "", "kr": "", "th": "region-unknown", "xx": "region-unknown"} {
		err := c.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": r,
			"fields": map[string]any{"country": strings.ToUpper(r)}}, nil)
		if got := client.ProblemType(err); got != want {
			t.Fatalf("region %s: %q (%v), want %q", r, got, err, want)
		}
	}
}

// newCastRegions bootstraps only the first admin.
func newCastRegions(t *testing.T, srv *server) *client.Client {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(srv.dir, "bootstrap-admin-token"))
	ok(t, "bootstrap token", err)
	admin := newClient(t, srv, nil)
	_, err = admin.Bootstrap(context.Background(), strings.TrimSpace(string(tok)), "admin", "admin's laptop")
	ok(t, "bootstrap", err)
	return admin
}

// TestAttackDecoyQuarantineTwoSided (issue 13 point 7): the affiliate's
// personnel-sync account, driven by the attacker, touches one of the
// operator's decoys among the employees it may read: it is quarantined,
// and the affiliate's admin alone cannot lift it (the lift is recorded,
// the account stays refused, lifts_needed names the operator). Nor does the
// affiliate's admin learn which record was the decoy: not in the
// quarantine's reason, not in the audit events. Positive control: once the
// operator's admin lifts it too, the account is served again.
func TestAttackDecoyQuarantineTwoSided(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir, masterKey())
	c := newCast(t, srv)
	ctx := context.Background()
	var made struct{ Honeytokens []struct{ ID string } }
	ok(t, "honeytokens", c.admin.JSON(ctx, "POST", "/v1/collections/employees/honeytokens", "", map[string]any{"region": "jp", "count": 1}, &made))
	decoy := made.Honeytokens[0].ID
	ok(t, "sync reads a real employee", c.readEmployee(c.sync, "name"))
	err := c.sync.JSON(ctx, "POST", "/v1/collections/employees/records:batchGet", "ops", map[string]any{"ids": []string{c.employee, decoy}, "fields": []string{"name"}}, nil)
	refusedWith(t, "sync touches the decoy", err, "quarantined")

	type quarantine struct {
		ID, Status, Reason string
		LiftsNeeded        []string `json:"lifts_needed"`
	}
	var l struct{ Quarantines []quarantine }
	ok(t, "the affiliate's quarantines", c.affAdmin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &l))
	if len(l.Quarantines) != 2 {
		t.Fatalf("the affiliate's admin sees %+v", l.Quarantines)
	}
	for _, q := range l.Quarantines {
		if strings.Contains(q.Reason, decoy) || !strings.Contains(q.Reason, "a decoy record of org operator") {
			t.Fatalf("quarantine reason %q", q.Reason)
		}
	}
	device := "device:" + c.sync.Key.Thumbprint()
	var q quarantine
	for _, id := range []string{"principal:personnel-sync", device} {
		ok(t, "the affiliate lifts "+id, c.affAdmin.JSON(ctx, "POST", "/v1/quarantines/"+id+"/lift", "", map[string]string{"reason": "reviewed with the sync team"}, &q))
		if q.Status != "active" || len(q.LiftsNeeded) != 1 || q.LiftsNeeded[0] != "operator" {
			t.Fatalf("after the affiliate's lift of %s: %+v", id, q)
		}
	}
	time.Sleep(1100 * time.Millisecond) // a new token's iat (whole seconds) after the quarantine
	_, err = c.sync.Refresh(ctx)
	refusedWith(t, "sync after the affiliate's lift alone", err, "quarantined")
	resp, err := c.affAdmin.Do(ctx, "GET", "/v1/audit/events?principal=personnel-sync&limit=1000", nil, nil)
	ok(t, "the affiliate's audit events", err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), decoy) || !strings.Contains(string(b), `"redacted"`) {
		t.Fatalf("the affiliate's admin reads the audit events: %d %s", resp.StatusCode, b)
	}

	for _, id := range []string{"principal:personnel-sync", device} {
		ok(t, "the operator lifts "+id, c.admin.JSON(ctx, "POST", "/v1/quarantines/"+id+"/lift", "", map[string]string{"reason": "reviewed with the sync team"}, &q))
		if q.Status != "lifted" {
			t.Fatalf("after both lifts of %s: %+v", id, q)
		}
	}
	_, err = c.sync.Refresh(ctx)
	ok(t, "sync gets a token after both lifts", err)
	ok(t, "sync reads again", c.readEmployee(c.sync, "name"))
}
