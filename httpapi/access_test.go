package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

const bootToken = "sekisho-bootstrap-test-token"

// clock is a shared clock the tests can move forward: servers and clients
// read it, so that proofs stay fresh across a jump.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// env is a running sekisho: real SQLite store, keyring, audit log, vault,
// access service and HTTP handler behind an httptest.Server. node() starts
// another node over the same store (as a second server of a cluster).
type env struct {
	t     *testing.T
	store sekisho.Store
	kp    *keys.Local
	log   *audit.Log
	clk   *clock
	srv   *httptest.Server
	acc   *access.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, dir+"/sekisho.db")
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	rand.Read(master)
	kp, err := keys.OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, "sekisho.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(ctx, store, signer, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, kp: kp, log: log, clk: &clock{}}
	e.srv, e.acc = e.node()
	t.Cleanup(func() { log.Close(); store.Close() })
	return e
}

func (e *env) node() (*httptest.Server, *access.Service) {
	e.t.Helper()
	return e.nodeWith(nil)
}

// nodeWith is node with the access configuration changed by edit (nonces,
// public URL) before the service is made.
func (e *env) nodeWith(edit func(*access.Config)) (*httptest.Server, *access.Service) {
	e.t.Helper()
	ctx := context.Background()
	v := vault.New(e.store, e.kp, e.log, vault.Options{Now: e.clk.Now, Rotation: vault.RotationOptions{Grace: time.Millisecond}})
	defs, err := schemas.Defaults()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := v.EnsureSchemas(ctx, defs); err != nil {
		e.t.Fatal(err)
	}
	cfg := access.Config{Store: e.store, Schema: func(ctx context.Context, c string) (*sekisho.Schema, error) { return v.Schema(ctx, c) }, Audit: e.log, TokenKey: bytes.Repeat([]byte{7}, 32),
		BootstrapToken: bootToken, RootOrg: "operator", RootRegion: "jp", Now: e.clk.Now,
		// These tests' devices are file keys; TestDeviceRequirementsOverHTTP
		// tests the default requirement (hardware-bound).
		DeviceDefault: access.DeviceAny}
	if edit != nil {
		edit(&cfg)
	}
	acc, err := access.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := acc.EnsurePolicies(ctx); err != nil {
		e.t.Fatal(err)
	}
	v = vault.New(e.store, e.kp, e.log, vault.Options{Now: e.clk.Now, Rotation: vault.RotationOptions{Grace: time.Millisecond}, Authorizer: acc.Authorizer()})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Vault: v, AuditLog: e.log, Auth: acc, Access: acc, KnownPurpose: acc.KnownPurpose}))
	e.t.Cleanup(srv.Close)
	return srv, acc
}

func (e *env) client(srv *httptest.Server) *client.Client {
	e.t.Helper()
	k, err := dpop.GenerateKey("ed25519")
	if err != nil {
		e.t.Fatal(err)
	}
	c := client.New(srv.URL, k)
	c.Now = e.clk.Now
	return c
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// refused checks that err is a problem of type typ.
func refused(t *testing.T, err error, typ string) {
	t.Helper()
	if got := client.ProblemType(err); got != typ {
		t.Fatalf("want problem %q, got %q (%v)", typ, got, err)
	}
}

// world is the cast of the tests: the operator's two admins and a support
// agent, the affiliate's admin and member, and a subcontractor's member.
type world struct {
	*env
	admin, admin2, support, affAdmin, bob, eve *client.Client
	recJP, recTH                               string
}

// principal creates a principal and a device for it, enrolled by the
// device's own key and approved by approver.
func (e *env) principal(creator, approver *client.Client, id, org string, roles ...string) *client.Client {
	e.t.Helper()
	ctx := context.Background()
	must(e.t, creator.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": id, "org": org, "roles": roles}, nil))
	c := e.client(e.srv)
	d, err := c.Enrol(ctx, id, id+"'s laptop")
	must(e.t, err)
	must(e.t, approver.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil))
	return c
}

func newWorld(t *testing.T) *world {
	e := newEnv(t)
	ctx := context.Background()
	w := &world{env: e}
	w.admin = e.client(e.srv)
	res, err := w.admin.Bootstrap(ctx, bootToken, "admin", "admin's laptop")
	must(t, err)
	if res.Device.Status != access.StatusApproved {
		t.Fatalf("bootstrap device is %s", res.Device.Status)
	}
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "subcontractor", "home_region": "jp"}, nil))
	w.admin2 = e.principal(w.admin, w.admin, "admin2", "operator", "admin")
	w.support = e.principal(w.admin, w.admin, "sam", "operator", "support")
	// The root admin creates the affiliate's first admin and approves its
	// device (the affiliate has no admin yet); that admin approves the rest.
	w.affAdmin = e.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	w.bob = e.principal(w.affAdmin, w.affAdmin, "bob", "affiliate", "member")
	w.eve = e.principal(w.admin, w.admin, "eve", "subcontractor", "member")
	w.recJP = w.create(w.admin, "jp", "+81 90-1234-5678")
	w.recTH = w.create(w.admin, "th", "+66 81 234 5678")
	return w
}

func (w *world) create(c *client.Client, region, phone string) string {
	w.t.Helper()
	var rec struct{ ID string }
	must(w.t, c.JSON(context.Background(), "POST", "/v1/collections/users/records", "support", map[string]any{"region": region,
		"fields": map[string]any{"display_name": "Hanako", "phone": phone, "email": "hanako@example.jp", "gender": "f", "country": strings.ToUpper(region)}}, &rec))
	return rec.ID
}

func (w *world) read(c *client.Client, id, purpose, fields string) (map[string]any, error) {
	var rec struct {
		Fields map[string]any `json:"fields"`
	}
	path := "/v1/collections/users/records/" + id
	if fields != "" {
		path += "?fields=" + fields
	}
	err := c.JSON(context.Background(), "GET", path, purpose, nil, &rec)
	return rec.Fields, err
}

type grantOut struct {
	ID        string            `json:"id"`
	Status    string            `json:"status"`
	TwoPerson string            `json:"two_person"`
	Approvals []access.Approval `json:"approvals"`
}

func (w *world) grant(c *client.Client, body map[string]any) (*grantOut, error) {
	var g grantOut
	err := c.JSON(context.Background(), "POST", "/v1/grants", "", body, &g)
	return &g, err
}

func (w *world) grantToAffiliate(regions ...string) map[string]any {
	return map[string]any{"grantee_org": "affiliate", "collections": []string{"users"}, "fields": []string{"email", "phone"},
		"regions": regions, "purposes": []string{"support"}, "actions": []string{"read"},
		"expires": w.clk.Now().Add(time.Hour).Format(time.RFC3339)}
}

func TestAccessOwnOrgAndMasks(t *testing.T) {
	w := newWorld(t)
	f, err := w.read(w.admin, w.recJP, "support", "")
	must(t, err)
	if f["phone"] != "+819012345678" {
		t.Fatalf("admin sees phone %v", f["phone"])
	}
	// The support role's policy masks every field.
	f, err = w.read(w.support, w.recJP, "support", "phone,email")
	must(t, err)
	if f["phone"] != "***-****-5678" || f["email"] != "***@example.jp" {
		t.Fatalf("support sees %v", f)
	}
	_, err = w.read(w.support, w.recJP, "fraud", "phone")
	refused(t, err, "purpose-not-permitted")
	_, err = w.read(w.support, w.recJP, "", "phone")
	refused(t, err, "purpose-required")
	_, err = w.read(w.support, w.recJP, "gossip", "phone")
	refused(t, err, "purpose-unknown")
}

func TestAccessCrossOrgNeedsGrant(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	_, err := w.read(w.bob, w.recJP, "support", "phone")
	refused(t, err, "no-grant")

	g, err := w.grant(w.admin, w.grantToAffiliate("jp"))
	must(t, err)
	if g.Status != access.StatusActive || g.TwoPerson != "" {
		t.Fatalf("home-region grant of non-sensitive fields: %+v", g)
	}
	f, err := w.read(w.bob, w.recJP, "support", "phone,email")
	must(t, err)
	if f["phone"] != "+819012345678" {
		t.Fatalf("bob reads %v", f)
	}
	_, err = w.read(w.bob, w.recJP, "fraud", "phone")
	refused(t, err, "grant-purpose-not-listed")
	_, err = w.read(w.bob, w.recJP, "support", "phone,gender")
	refused(t, err, "grant-field-not-listed")
	_, err = w.read(w.bob, w.recTH, "support", "phone")
	refused(t, err, "grant-region-not-listed")
	// The grant does not reach the subcontractor.
	_, err = w.read(w.eve, w.recJP, "support", "phone")
	refused(t, err, "no-grant")

	// Revoked: refused again.
	must(t, w.admin.JSON(ctx, "POST", "/v1/grants/"+g.ID+"/revoke", "", nil, nil))
	_, err = w.read(w.bob, w.recJP, "support", "phone")
	refused(t, err, "grant-revoked")
}

func TestAccessExpiredGrant(t *testing.T) {
	w := newWorld(t)
	_, err := w.grant(w.admin, w.grantToAffiliate("jp"))
	must(t, err)
	_, err = w.read(w.bob, w.recJP, "support", "phone")
	must(t, err)
	w.clk.Advance(2 * time.Hour) // past the grant's expiry; clients refresh their tokens
	_, err = w.read(w.bob, w.recJP, "support", "phone")
	refused(t, err, "grant-expired")
}

func TestAccessTwoPersonRule(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// admin2 approves below: it must have been an admin for a while.
	w.clk.Advance(access.MinApproverTenure + time.Hour)
	// Thailand is not the affiliate's home region: two admins needed.
	g, err := w.grant(w.admin, w.grantToAffiliate("th"))
	must(t, err)
	if g.Status != access.StatusPending || !strings.Contains(g.TwoPerson, "region th") {
		t.Fatalf("cross-region grant: %+v", g)
	}
	_, err = w.read(w.bob, w.recTH, "support", "phone")
	refused(t, err, "grant-pending")
	err = w.admin.JSON(ctx, "POST", "/v1/grants/"+g.ID+"/approve", "", nil, nil)
	refused(t, err, "two-person-rule")
	// A sensitive field needs two as well.
	body := w.grantToAffiliate("jp")
	body["fields"] = []string{"gender"}
	g2, err := w.grant(w.admin, body)
	must(t, err)
	if g2.Status != access.StatusPending || !strings.Contains(g2.TwoPerson, "sensitive") {
		t.Fatalf("sensitive grant: %+v", g2)
	}

	var approved grantOut
	must(t, w.admin2.JSON(ctx, "POST", "/v1/grants/"+g.ID+"/approve", "", nil, &approved))
	if approved.Status != access.StatusActive || len(approved.Approvals) != 2 || approved.Approvals[1].Principal != "admin2" {
		t.Fatalf("approved: %+v", approved)
	}
	f, err := w.read(w.bob, w.recTH, "support", "phone")
	must(t, err)
	if f["phone"] != "+66812345678" {
		t.Fatalf("bob reads %v", f)
	}
	// Both approvals are in the audit log.
	evs, err := w.store.QueryAudit(ctx, sekisho.AuditFilter{Limit: 10000})
	must(t, err)
	var creates, approves int
	for _, e := range evs {
		s := string(e.Leaf)
		if strings.Contains(s, `"grant.create"`) && strings.Contains(s, g.ID) {
			creates++
		}
		if strings.Contains(s, `"grant.approve"`) && strings.Contains(s, g.ID) && strings.Contains(s, `"allow"`) {
			approves++
		}
	}
	if creates != 1 || approves != 1 {
		t.Fatalf("audit: %d grant.create and %d grant.approve events", creates, approves)
	}
}

func TestAccessListingIsScoped(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	err := w.eve.JSON(ctx, "GET", "/v1/principals?org=operator", "", nil, nil)
	refused(t, err, "org-scope-forbidden")
	err = w.eve.JSON(ctx, "GET", "/v1/grants?org=operator", "", nil, nil)
	refused(t, err, "org-scope-forbidden")
	var l struct{ Principals []access.Principal }
	must(t, w.eve.JSON(ctx, "GET", "/v1/principals", "", nil, &l))
	for _, p := range l.Principals {
		if p.Org != "subcontractor" {
			t.Fatalf("eve lists %s of %s", p.ID, p.Org)
		}
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/principals?org=subcontractor", "", nil, &l))
	if len(l.Principals) != 1 {
		t.Fatalf("root admin lists %d subcontractor principals", len(l.Principals))
	}
	// A member is not an admin.
	err = w.eve.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "mallory", "roles": []string{"admin"}}, nil)
	refused(t, err, "admin-required")
}

// send sends a prepared request and returns the problem type of its answer
// ("" for 2xx).
func send(t *testing.T, req *http.Request) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 {
		return ""
	}
	var p httpapi.Problem
	json.Unmarshal(b, &p)
	return strings.TrimPrefix(p.Type, httpapi.ProblemBase)
}

func TestAccessDeviceBoundCredentials(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	url := w.srv.URL + "/v1/whoami"

	// A valid token of bob's device, replayed from a second, un-enrolled key.
	tok, err := w.bob.Refresh(ctx)
	must(t, err)
	thief := w.client(w.srv)
	req, _ := http.NewRequest("GET", url, nil)
	proof, _ := thief.Key.Proof("GET", url, tok.AccessToken, w.clk.Now())
	req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	req.Header.Set("DPoP", proof)
	if got := send(t, req); got != "token-key-mismatch" {
		t.Fatalf("stolen token: %q", got)
	}

	// A proof replayed: the same request twice.
	req, err = w.bob.NewRequest(ctx, "GET", "/v1/whoami", nil)
	must(t, err)
	if got := send(t, req); got != "" {
		t.Fatalf("first use: %q", got)
	}
	if got := send(t, req.Clone(ctx)); got != "dpop-proof-replayed" {
		t.Fatalf("replayed proof: %q", got)
	}

	// A proof for another URL, and one out of its time window.
	req, _ = w.bob.NewRequest(ctx, "GET", "/v1/orgs", nil)
	req.URL.Path = "/v1/whoami"
	if got := send(t, req); got != "dpop-proof-mismatch" {
		t.Fatalf("proof for another URL: %q", got)
	}
	req, _ = http.NewRequest("GET", url, nil)
	proof, _ = w.bob.Key.Proof("GET", url, tok.AccessToken, w.clk.Now().Add(-5*time.Minute))
	req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	req.Header.Set("DPoP", proof)
	if got := send(t, req); got != "dpop-proof-stale" {
		t.Fatalf("stale proof: %q", got)
	}

	// A bearer token, and the bootstrap token, are not credentials.
	req, _ = http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+bootToken)
	if got := send(t, req); got != "token-not-bearer" {
		t.Fatalf("bearer: %q", got)
	}
	_, err = w.client(w.srv).Bootstrap(ctx, bootToken, "admin9", "")
	refused(t, err, "bootstrap-token-spent")

	// Enrolled but not approved.
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "carol", "roles": []string{"member"}}, nil))
	carol := w.client(w.srv)
	d, err := carol.Enrol(ctx, "carol", "")
	must(t, err)
	if d.Status != access.StatusPending {
		t.Fatalf("enrolled device is %s", d.Status)
	}
	_, err = carol.Refresh(ctx)
	refused(t, err, "device-not-approved")
	// Only an admin of carol's own org approves it, not the operator's.
	err = w.admin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil)
	refused(t, err, "admin-required")
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil))
	_, err = carol.Refresh(ctx)
	must(t, err)
}

// TestAccessRevocationWithinOneSecond revokes bob's device on one node and
// shows that another node, whose cache holds bob's device as approved,
// refuses it within access.MaxCacheTTL, while the revoking node refuses it
// at once.
func TestAccessRevocationWithinOneSecond(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	srv2, _ := w.node()
	bob2 := client.New(srv2.URL, w.bob.Key)
	must(t, bob2.JSON(ctx, "GET", "/v1/whoami", "", nil, nil)) // warms node 2's cache
	must(t, w.bob.JSON(ctx, "GET", "/v1/whoami", "", nil, nil))

	var me struct{ Device string }
	must(t, w.bob.JSON(ctx, "GET", "/v1/whoami", "", nil, &me))
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/devices/"+me.Device+"/revoke", "", nil, nil))
	revoked := time.Now()
	refused(t, w.bob.JSON(ctx, "GET", "/v1/whoami", "", nil, nil), "device-revoked")
	for {
		err := bob2.JSON(ctx, "GET", "/v1/whoami", "", nil, nil)
		if err != nil {
			refused(t, err, "device-revoked")
			break
		}
		if time.Since(revoked) > access.MaxCacheTTL {
			t.Fatalf("node 2 still accepts the revoked device %s after revocation", time.Since(revoked))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("node 2 refused the revoked device %s after revocation", time.Since(revoked).Round(time.Millisecond))

	// Revoking a principal, and all of an org's devices, likewise.
	must(t, w.admin.JSON(ctx, "POST", "/v1/principals/eve/revoke", "", nil, nil))
	refused(t, w.eve.JSON(ctx, "GET", "/v1/whoami", "", nil, nil), "principal-revoked")
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs/affiliate/revoke-devices", "", nil, nil))
	refused(t, w.affAdmin.JSON(ctx, "GET", "/v1/whoami", "", nil, nil), "device-revoked")
}

// TestAccessDistinctProblemTypes lists the refusals issue 4 asks for; each
// has its own problem type (the tests above show each one happening).
func TestAccessDistinctProblemTypes(t *testing.T) {
	types := []string{"no-grant", "token-key-mismatch", "dpop-proof-replayed", "grant-expired", "grant-purpose-not-listed",
		"grant-field-not-listed", "grant-region-not-listed", "device-not-approved", "device-revoked", "org-scope-forbidden", "two-person-rule"}
	seen := map[string]bool{}
	for _, typ := range types {
		if seen[typ] {
			t.Fatalf("problem type %s used twice", typ)
		}
		seen[typ] = true
	}
}

func TestAccessPoliciesAreData(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	var l struct{ Policies []access.Policy }
	must(t, w.admin.JSON(ctx, "GET", "/v1/policies", "", nil, &l))
	if len(l.Policies) != len(access.DefaultPolicies) {
		t.Fatalf("%d policies", len(l.Policies))
	}
	// Forbid every read of the support agent for fraud... and see the
	// decision name the policy and its version.
	var p access.Policy
	must(t, w.admin.JSON(ctx, "PUT", "/v1/policies/no-th-reads", "", map[string]any{"cedar": `forbid (principal, action == Action::"read", resource) when { context.region == "th" };`}, &p))
	if p.Version != 1 {
		t.Fatalf("version %d", p.Version)
	}
	_, err := w.read(w.admin, w.recTH, "support", "phone")
	refused(t, err, "policy-forbids")
	if err == nil || !strings.Contains(err.Error(), "no-th-reads@1") {
		t.Fatalf("decision does not name the policy: %v", err)
	}
	err = w.bob.JSON(ctx, "PUT", "/v1/policies/x", "", map[string]any{"cedar": `permit (principal, action, resource);`}, nil)
	refused(t, err, "admin-required")
	err = w.admin.JSON(ctx, "PUT", "/v1/policies/bad", "", map[string]any{"cedar": `permit (principal, action, resource`}, nil)
	refused(t, err, "policy-invalid")
}
