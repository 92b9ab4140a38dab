package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/gen"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/vault"
)

const hookSecret = "webhook-secret-for-tests"

// hookRecv is an alert webhook receiver that checks signatures and
// de-duplicates on the alert id.
type hookRecv struct {
	mu     sync.Mutex
	alerts map[string]guard.Alert
	order  []string // rules, in order of arrival, once per alert id
	bad    int
	now    func() time.Time
}

func (h *hookRecv) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if guard.VerifySignature([]byte(hookSecret), r.Header, b, h.now(), 5*time.Minute) != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var a guard.Alert
	json.Unmarshal(b, &a)
	if _, dup := h.alerts[a.ID]; !dup {
		h.alerts[a.ID] = a
		h.order = append(h.order, a.Rule)
	}
}

// rules returns the rules of the alerts received so far, in order.
func (h *hookRecv) rules() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.order)
}

// gworld is a running sekisho with the guard wired as serve wires it.
type gworld struct {
	*env
	v      *vault.Vault
	g      *guard.Guard
	hooks  *hookRecv
	admin  *client.Client
	agent  *client.Client
	ids    []string
	phones []string
}

// tuesday9 is 09:00 in Tokyo on a working day.
var tuesday9 = time.Date(2025, 6, 10, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))

// newGuardWorld runs the guard with the server's zone set to Tokyo's, the
// zone the tests' clock speaks in (tuesday9).
func newGuardWorld(t *testing.T, records int) *gworld {
	return newGuardWorldIn(t, records, tuesday9.Location())
}

// newGuardWorldIn runs the guard with loc as the server's local zone (the
// off-hours baseline of orgs without a time zone of their own).
func newGuardWorldIn(t *testing.T, records int, loc *time.Location) *gworld {
	e := newEnv(t)
	ctx := context.Background()
	e.clk.Advance(time.Until(tuesday9))
	w := &gworld{env: e, hooks: &hookRecv{alerts: map[string]guard.Alert{}, now: e.clk.Now}}
	hs := httptest.NewServer(w.hooks)
	t.Cleanup(hs.Close)
	w.v = vault.New(e.store, e.kp, e.log, vault.Options{Now: e.clk.Now})
	defs, err := schemas.Defaults()
	must(t, err)
	must(t, w.v.EnsureSchemas(ctx, defs))
	reg := prometheus.NewRegistry()
	w.g = guard.New(guard.Config{Store: e.store, Directory: access.NewDirectory(e.store), Audit: e.log, RootOrg: "operator", Now: e.clk.Now, Registry: reg, Location: loc,
		Webhooks: []guard.Webhook{{URL: hs.URL, Secret: hookSecret}}, WebhookBackoff: 10 * time.Millisecond, SyncInterval: 200 * time.Millisecond})
	must(t, w.g.Start(ctx))
	t.Cleanup(w.g.Close)
	acc, err := access.New(access.Config{Store: e.store, Schema: func(ctx context.Context, c string) (*sekisho.Schema, error) { return w.v.Schema(ctx, c) }, Audit: e.log, TokenKey: make([]byte, 32),
		BootstrapToken: bootToken, RootOrg: "operator", RootRegion: "jp", Now: e.clk.Now, DeviceDefault: access.DeviceAny, Quarantine: w.g,
		Alert: func(ctx context.Context, rule, org, detail string) {
			w.g.Raise(ctx, vaultCaller("sekisho", org), rule, detail)
		}})
	must(t, err)
	must(t, acc.EnsurePolicies(ctx))
	w.v = vault.New(e.store, e.kp, e.log, vault.Options{Now: e.clk.Now, Authorizer: acc.Authorizer(), Guard: w.g})
	e.srv = httptest.NewServer(httpapi.New(httpapi.Config{Vault: w.v, AuditLog: e.log, Auth: acc, Access: acc,
		KnownPurpose: acc.KnownPurpose, Registry: reg, Guard: w.g, Now: e.clk.Now}))
	t.Cleanup(e.srv.Close)
	e.acc = acc

	w.admin = e.client(e.srv)
	_, err = w.admin.Bootstrap(ctx, bootToken, "admin", "admin's laptop")
	must(t, err)
	w.agent = e.principal(w.admin, w.admin, "sam", "operator", "support", "member")
	// The records the agent works on, written straight through the vault.
	gn := gen.New(7)
	var inputs []*sekisho.RecordInput
	for range records {
		u := gn.User()
		inputs = append(inputs, u)
		var p string
		json.Unmarshal(u.Fields["phone"], &p)
		w.phones = append(w.phones, p)
	}
	items, err := w.v.CreateBatch(ctx, sekisho.Caller{Principal: "admin", Org: "operator", Roles: []string{"admin"}, Purpose: "import"}, "users", inputs)
	must(t, err)
	for _, it := range items {
		must(t, it.Err)
		w.ids = append(w.ids, it.ID)
	}
	return w
}

// normalDay is a support agent's day: n purposeful single-record reads and
// lookups spread over 09:00-17:30, with the clock moved between them.
func (w *gworld) normalDay(c *client.Client, n int, seed uint64) {
	w.t.Helper()
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(seed, seed))
	step := (8*time.Hour + 30*time.Minute) / time.Duration(n)
	for i := range n {
		w.clk.Advance(step/2 + time.Duration(rnd.Int64N(int64(step))))
		k := rnd.IntN(len(w.ids))
		if i%2 == 0 {
			_, err := w.read(c, w.ids[k])
			must(w.t, err)
		} else {
			must(w.t, c.JSON(ctx, "POST", "/v1/collections/users/lookup", "support", map[string]any{"field": "phone", "value": w.phones[k]}, nil))
		}
	}
}

func (w *gworld) read(c *client.Client, id string) (map[string]any, error) {
	var rec struct {
		Fields map[string]any `json:"fields"`
	}
	err := c.JSON(context.Background(), "GET", "/v1/collections/users/records/"+id+"?fields=display_name,phone", "support", nil, &rec)
	return rec.Fields, err
}

// waitAlerts waits until the receiver holds n alerts.
func (w *gworld) waitAlerts(n int) []string {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r := w.hooks.rules(); len(r) >= n {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w.hooks.rules()
}

// nextDay moves the clock to 10:00 Tokyo of the next day.
func (w *gworld) nextDayAt(hour int) {
	now := w.clk.Now().In(tuesday9.Location())
	next := time.Date(now.Year(), now.Month(), now.Day()+1, hour, 0, 0, 0, now.Location())
	w.clk.Advance(next.Sub(now))
}

// TestGuardRules runs a support agent's normal day, on which no rule fires,
// then each rule's attack, on which that rule (and no other) fires.
func TestGuardRules(t *testing.T) {
	w := newGuardWorld(t, 200)
	ctx := context.Background()
	w.normalDay(w.agent, 300, 1)
	time.Sleep(100 * time.Millisecond)
	if r := w.hooks.rules(); len(r) != 0 {
		t.Fatalf("a normal day raised alerts: %v", r)
	}
	// A second normal day, now against the learned hours, raises nothing either.
	w.nextDayAt(9)
	w.normalDay(w.agent, 300, 2)
	time.Sleep(100 * time.Millisecond)
	if r := w.hooks.rules(); len(r) != 0 {
		t.Fatalf("a second normal day raised alerts: %v", r)
	}
	w.nextDayAt(10)
	seen := 0
	expect := func(t *testing.T, rule string) {
		t.Helper()
		w.waitAlerts(seen + 1)
		time.Sleep(50 * time.Millisecond)
		got := w.hooks.rules()
		fresh := got[seen:]
		seen = len(got)
		if len(fresh) == 0 || slices.ContainsFunc(fresh, func(r string) bool { return r != rule }) {
			t.Fatalf("want only %s to fire, got %v", rule, fresh)
		}
	}
	t.Run(guard.RuleNewPurpose, func(t *testing.T) {
		var out any
		must(t, w.agent.JSON(ctx, "GET", "/v1/collections/users/records/"+w.ids[0], "fraud", nil, &out))
		expect(t, guard.RuleNewPurpose)
	})
	t.Run(guard.RuleNewDevice, func(t *testing.T) {
		c := w.client(w.srv)
		d, err := c.Enrol(ctx, "sam", "sam's second laptop")
		must(t, err)
		must(t, w.admin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil))
		_, err = w.read(c, w.ids[1])
		must(t, err)
		expect(t, guard.RuleNewDevice)
	})
	t.Run(guard.RuleNewSource, func(t *testing.T) {
		c := client.New(w.srv.URL, w.agent.Key)
		c.Now = w.clk.Now
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		c.HTTP = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		_, err := w.read(c, w.ids[2])
		must(t, err)
		expect(t, guard.RuleNewSource)
	})
	t.Run(guard.RuleOffHours, func(t *testing.T) {
		w.nextDayAt(3)
		_, err := w.read(w.agent, w.ids[3])
		must(t, err)
		expect(t, guard.RuleOffHours)
		w.nextDayAt(10)
	})
	t.Run(guard.RuleDeniedBurst, func(t *testing.T) {
		for i := range 11 {
			// Support staff may not read for analytics: each is denied.
			_, err := w.agent.Do(ctx, "GET", "/v1/collections/users/records/"+w.ids[i], nil, http.Header{"Sekisho-Purpose": {"analytics"}})
			must(t, err)
			w.clk.Advance(time.Second)
		}
		expect(t, guard.RuleDeniedBurst)
	})
	t.Run(guard.RuleEnumeration, func(t *testing.T) {
		w.clk.Advance(2 * time.Minute)
		var last error
		for i := range 6 {
			last = w.agent.JSON(ctx, "POST", "/v1/collections/users/lookup", "support", map[string]any{"field": "phone", "value": fmt.Sprintf("+819012345%03d", 670+i)}, nil)
			if last != nil {
				break
			}
			w.clk.Advance(3 * time.Second)
		}
		refused(t, last, guard.ProblemQuarantined)
		expect(t, guard.RuleEnumeration)
		_, err := w.read(w.agent, w.ids[5])
		refused(t, err, guard.ProblemQuarantined)
	})
	t.Run("lookup-subjects", func(t *testing.T) {
		// Many distinct subjects a minute through lookups, by another agent.
		c := w.principal(w.admin, w.admin, "sue", "operator", "support")
		var err error
		for i := range 20 {
			if err = c.JSON(ctx, "POST", "/v1/collections/users/lookup", "support", map[string]any{"field": "phone", "value": w.phones[i]}, nil); err != nil {
				break
			}
		}
		refused(t, err, guard.ProblemQuarantined)
		expect(t, guard.RuleEnumeration)
	})
	if w.hooks.bad != 0 {
		t.Fatalf("%d webhook deliveries had a bad signature", w.hooks.bad)
	}
}

// TestHoneytokenQuarantinesInTheSameRequest: reading a decoy returns nothing
// of it and quarantines the principal and its device at once; the device
// key is refused under another principal too; an admin of the org lifts it.
func TestHoneytokenQuarantinesInTheSameRequest(t *testing.T) {
	w := newGuardWorld(t, 20)
	ctx := context.Background()
	var made struct{ Honeytokens []guard.Honeytoken }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/honeytokens", "", map[string]any{"region": "jp", "count": 3}, &made))
	if len(made.Honeytokens) != 3 || !vault.ValidID(made.Honeytokens[0].ID) {
		t.Fatalf("honeytokens: %+v", made)
	}
	var listed struct{ Honeytokens []guard.Honeytoken }
	must(t, w.admin.JSON(ctx, "GET", "/v1/collections/users/honeytokens", "", nil, &listed))
	if len(listed.Honeytokens) != 3 {
		t.Fatalf("listed %d honeytokens", len(listed.Honeytokens))
	}
	// Only admins tell them apart.
	refused(t, w.agent.JSON(ctx, "GET", "/v1/collections/users/honeytokens", "", nil, nil), "admin-required")
	// The decoy is stored like a real record: same fields, same lookups.
	recs, err := w.store.GetRecords(ctx, "users", []string{made.Honeytokens[0].ID, w.ids[0]})
	must(t, err)
	if !recs[0].Honeytoken || recs[1].Honeytoken || len(recs[0].Fields) != len(recs[1].Fields) || len(recs[0].Index) != len(recs[1].Index) {
		t.Fatalf("decoy is not shaped like a real record: %d/%d fields, %d/%d index", len(recs[0].Fields), len(recs[1].Fields), len(recs[0].Index), len(recs[1].Index))
	}
	_, err = w.read(w.agent, w.ids[0])
	must(t, err)

	resp, err := w.agent.Do(ctx, "GET", "/v1/collections/users/records/"+made.Honeytokens[0].ID, nil, http.Header{"Sekisho-Purpose": {"support"}})
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), `"fields"`) || strings.Contains(string(body), "display_name") ||
		strings.Contains(string(body), "+81") {
		t.Fatalf("decoy read answered %d %s", resp.StatusCode, body)
	}
	// The next request of the principal is refused, from any node.
	_, err = w.read(w.agent, w.ids[0])
	refused(t, err, guard.ProblemQuarantined)
	// Its device key gets no new token, and cannot be enrolled for another principal.
	_, err = w.agent.Refresh(ctx)
	refused(t, err, guard.ProblemQuarantined)
	must(t, w.admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "sam2", "org": "operator", "roles": []string{"support"}}, nil))
	_, err = w.agent.Enrol(ctx, "sam2", "same laptop")
	refused(t, err, guard.ProblemQuarantined)

	var qs struct{ Quarantines []guard.Quarantine }
	must(t, w.admin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &qs))
	if len(qs.Quarantines) != 2 || qs.Quarantines[0].Rule != guard.RuleHoneytoken {
		t.Fatalf("quarantines: %+v", qs.Quarantines)
	}
	if got := w.waitAlerts(1); len(got) == 0 || got[0] != guard.RuleHoneytoken {
		t.Fatalf("alerts: %v", got)
	}
	if a := w.hooks.alerts; len(a) > 0 {
		for _, al := range a {
			if !slices.Contains(al.OrgAdmins, "admin") {
				t.Fatalf("the org's admins are not named in the alert: %+v", al)
			}
		}
	}
	// Lifting needs an admin of the principal's own org, and is audited.
	// A lift says why: without a reason (no body, an empty one, a blank
	// one) it is refused as invalid input naming the field, and the
	// quarantine stays.
	refused(t, w.agent.JSON(ctx, "POST", "/v1/quarantines/principal:sam/lift", "", liftBody, nil), guard.ProblemQuarantined)
	for _, body := range []any{nil, map[string]string{}, map[string]string{"reason": "  "}} {
		err := w.admin.JSON(ctx, "POST", "/v1/quarantines/principal:sam/lift", "", body, nil)
		var p *client.Problem
		if !errors.As(err, &p) || p.Status != http.StatusBadRequest || p.Field != "reason" {
			t.Fatalf("lift with %v: %v, want 400 invalid naming reason", body, err)
		}
	}
	var still struct{ Quarantines []guard.Quarantine }
	must(t, w.admin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &still))
	for _, q := range still.Quarantines {
		if q.Status != guard.StatusActive {
			t.Fatalf("a lift without a reason changed %s: %+v", q.ID, q)
		}
	}
	var lifted guard.Quarantine
	must(t, w.admin.JSON(ctx, "POST", "/v1/quarantines/principal:sam/lift", "", liftBody, &lifted))
	if lifted.Status != guard.StatusLifted || len(lifted.Lifts) != 1 || lifted.Lifts[0].Reason != liftBody["reason"] || lifted.Lifts[0].By != "admin" {
		t.Fatalf("lifted: %+v", lifted)
	}
	must(t, w.admin.JSON(ctx, "POST", "/v1/quarantines/device:"+w.agent.Key.Thumbprint()+"/lift", "", liftBody, nil))
	entries, err := w.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: "admin"})
	must(t, err)
	lifts := 0
	for _, e := range entries {
		ev, _ := sekisho.UnmarshalEvent(e.Leaf)
		if ev.Action == "guard.quarantine.lift" && ev.Decision == sekisho.Allow {
			lifts++
			if !strings.HasSuffix(ev.Detail, "; reason: "+liftBody["reason"]) {
				t.Fatalf("the lift's audit event does not hold its reason: %q", ev.Detail)
			}
		}
	}
	if lifts != 2 {
		t.Fatalf("%d lifts audited, want 2", lifts)
	}
	// The token issued before the quarantine stays revoked; a new one works.
	w.clk.Advance(2 * time.Second)
	_, err = w.read(w.agent, w.ids[0])
	refused(t, err, guard.ProblemQuarantined)
	_, err = w.agent.Refresh(ctx)
	must(t, err)
	_, err = w.read(w.agent, w.ids[0])
	must(t, err)
}

// TestGrantBudgetStopsBulkRead: a bulk read under a valid grant is stopped
// by the grant's budget after at most its number of records, and the
// records returned are exactly the allowed events' records in the audit log.
func TestGrantBudgetStopsBulkRead(t *testing.T) {
	w := newGuardWorld(t, 200)
	ctx := context.Background()
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	bob := w.principal(affAdmin, affAdmin, "bob", "affiliate", "member")
	// Regions other than the grantee's home need a second admin, of long
	// enough standing.
	admin2 := w.principal(w.admin, w.admin, "admin2", "operator", "admin")
	w.clk.Advance(access.MinApproverTenure + time.Hour)
	const budget = 30
	var g struct{ ID, Status string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": "affiliate", "collections": []string{"users"},
		"masked_fields": []string{"*"}, "regions": []string{"jp", "th", "tw", "id"}, "purposes": []string{"support"},
		"expires": w.clk.Now().Add(24 * time.Hour), "budget_per_hour": budget}, &g))
	if g.Status != "active" {
		must(t, admin2.JSON(ctx, "POST", "/v1/grants/"+g.ID+"/approve", "", nil, nil))
	}
	returned, batches := 0, 0
	var stop error
	for i := 0; i+10 <= len(w.ids); i += 10 {
		var out struct{ Records []map[string]any }
		err := bob.JSON(ctx, "POST", "/v1/collections/users/records:batchGet", "support", map[string]any{"ids": w.ids[i : i+10]}, &out)
		if err != nil {
			stop = err
			break
		}
		returned += len(out.Records)
		batches++
		w.clk.Advance(time.Second)
	}
	if stop == nil || returned > budget {
		t.Fatalf("bulk read was not stopped by the budget of %d: %d records returned (%v)", budget, returned, stop)
	}
	t.Logf("stopped after %d records in %d batches: %v", returned, batches, stop)
	entries, err := w.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: "bob"})
	must(t, err)
	audited := 0
	for _, e := range entries {
		ev, err := sekisho.UnmarshalEvent(e.Leaf)
		must(t, err)
		if ev.Decision == sekisho.Allow && ev.Action == sekisho.ActionBatchGet {
			audited += len(ev.Records)
		}
	}
	if audited != returned {
		t.Fatalf("records returned %d, allowed in the audit log %d", returned, audited)
	}
}

// TestGuardOffHoursInTheOrgsTimeZone: the off-hours baseline is read in the
// org's time zone (an org without one: the server's), and a newcomer's
// first requests raise nothing.
func TestGuardOffHoursInTheOrgsTimeZone(t *testing.T) {
	w := newGuardWorldIn(t, 20, time.UTC) // the server's local zone: UTC
	ctx := context.Background()
	bkk, err := time.LoadLocation("Asia/Bangkok")
	must(t, err)
	// 09:00 in Bangkok is 02:00 UTC: working hours there, night here.
	w.clk.Advance(time.Date(2025, 6, 11, 9, 0, 0, 0, bkk).Sub(w.clk.Now()))
	refused(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "nowhere", "home_region": "th", "time_zone": "Mars/Olympus"}, nil), "invalid")
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "thai-co", "home_region": "th", "time_zone": "Asia/Bangkok"}, nil))
	nok := w.principal(w.admin, w.admin, "nok", "thai-co", "admin")
	var rec struct{ ID string }
	must(t, nok.JSON(ctx, "POST", "/v1/collections/users/records", "support",
		map[string]any{"region": "th", "fields": map[string]any{"display_name": "Nok", "phone": "+66 81 234 5678"}}, &rec))
	readOwn := func(c *client.Client, id string, n int) {
		t.Helper()
		for range n {
			must(t, c.JSON(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", "support", nil, nil))
			w.clk.Advance(20 * time.Second)
		}
	}
	// A newcomer's first requests (fewer than min_history, 50) raise
	// nothing, even at night in the server's zone.
	readOwn(w.agent, w.ids[0], 30)
	readOwn(nok, rec.ID, 70) // and in Bangkok it is morning: nothing either
	time.Sleep(100 * time.Millisecond)
	if r := w.hooks.rules(); len(r) != 0 {
		t.Fatalf("alerts on newcomers' first requests or in the org's working hours: %v", r)
	}
	// Past min_history, sam (operator: the server's zone, UTC) is at night.
	readOwn(w.agent, w.ids[0], 25)
	if r := w.waitAlerts(1); len(r) == 0 || r[0] != guard.RuleOffHours {
		t.Fatalf("sam at 02:00 UTC: alerts %v, want off-hours", r)
	}
	seen := len(w.hooks.rules())
	// 02:00 in Bangkok is 19:00 UTC: usual by the server's zone, night in
	// the org's.
	w.clk.Advance(time.Date(2025, 6, 12, 2, 0, 0, 0, bkk).Sub(w.clk.Now()))
	readOwn(nok, rec.ID, 1)
	if r := w.waitAlerts(seen + 1); len(r) <= seen || r[seen] != guard.RuleOffHours {
		t.Fatalf("nok at 02:00 Bangkok: alerts %v, want off-hours", r[seen:])
	}
}

// liftBody is the body of a lift in the tests: the reason it needs.
var liftBody = map[string]string{"reason": "sam read a decoy in a drill; reviewed with sam"}
