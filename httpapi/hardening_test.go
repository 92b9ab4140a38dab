package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/vault"
)

func vaultCaller(principal, org string) sekisho.Caller {
	return sekisho.Caller{Principal: principal, Org: org}
}

// TestHardeningGrantNamesValidated (issue 13 point 1): a grant whose names
// do not exist, or hold characters Go's %q would spell in a way Cedar
// refuses, is refused when it is written (grant-invalid, naming the value),
// so no org's grant can break the next policy snapshot and with it every
// org's decisions. On the old code a field name with a control character
// in a two-collection grant was stored, and every data request of every org
// then answered 503.
func TestHardeningGrantNamesValidated(t *testing.T) {
	w := newWorld(t)
	good := func() map[string]any {
		return map[string]any{"grantee_org": "affiliate", "collections": []string{"users", "partners"}, "fields": []string{"email", "phone"},
			"regions": []string{"jp"}, "purposes": []string{"support"}, "actions": []string{"read"},
			"expires": w.clk.Now().Add(time.Hour).Format(time.RFC3339)}
	}
	cases := []struct {
		name, key string
		val       any
		field     string
	}{
		{"field with a bell", "fields", []string{"email", "phone\a"}, "fields"},
		{"field with a NUL", "fields", []string{"phone\x00"}, "fields"},
		{"unknown field", "fields", []string{"shoe_size"}, "fields"},
		{"masked field with a form feed", "masked_fields", []string{"phone\f"}, "masked_fields"},
		{"unknown masked field", "masked_fields", []string{"shoe_size"}, "masked_fields"},
		{"unknown collection", "collections", []string{"users", "diaries"}, "collections"},
		{"collection with a quote", "collections", []string{`users"`}, "collections"},
		{"region not configured", "regions", []string{"zz"}, "regions"},
		{"region with a vertical tab", "regions", []string{"jp\v"}, "regions"},
		{"unknown purpose", "purposes", []string{"gossip"}, "purposes"},
		{"unknown action", "actions", []string{"read", "exfiltrate"}, "actions"},
		{"grantee with a backslash", "grantee_org", `affiliate\`, "grantee_org"},
		{"grantee principal with a newline", "grantee_principal", "bob\n", "grantee_principal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := good()
			body[c.key] = c.val
			_, err := w.grant(w.admin, body)
			refused(t, err, "grant-invalid")
			var p *client.Problem
			if !errors.As(err, &p) || p.Field != c.field {
				t.Fatalf("problem %v does not name field %q", err, c.field)
			}
		})
	}
	// Every org's decisions go on: the operator's own reads, and the
	// positive control, the same grant done right, which the affiliate uses.
	if _, err := w.read(w.admin, w.recJP, "support", "phone"); err != nil {
		t.Fatalf("operator's own read after refused grants: %v", err)
	}
	g, err := w.grant(w.admin, good())
	must(t, err)
	if g.Status != access.StatusActive {
		t.Fatalf("grant is %s", g.Status)
	}
	f, err := w.read(w.bob, w.recJP, "support", "phone")
	must(t, err)
	if f["phone"] != "+819012345678" {
		t.Fatalf("grantee reads %v", f)
	}
}

// TestHardeningBrokenStoredPolicyLeftOut (issue 13 point 1d): a stored
// policy or grant that no longer compiles (written before a schema change,
// or straight into the store) is left out of the snapshot alone; every
// other decision goes on, and the failure is audited and alerted once.
func TestHardeningBrokenStoredPolicyLeftOut(t *testing.T) {
	w := newGuardWorld(t, 3)
	ctx := context.Background()
	// Control: the agent reads before anything is broken.
	if _, err := w.read(w.agent, w.ids[0]); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []access.Policy{
		{ID: "typo", Cedar: `forbid (principal, action, resource) when { context.purpse == "support" };`, Version: 1},
		{ID: "unparsable", Cedar: "permit (principal, action, resource) when { context.purpose == \"\\a\" };", Version: 1},
	} {
		b, _ := json.Marshal(bad)
		must(t, w.store.PutObject(ctx, &sekisho.Object{Kind: sekisho.KindPolicy, ID: bad.ID, Version: 1, Body: b, Updated: w.clk.Now()}))
	}
	w.clk.Advance(2 * time.Second) // past the snapshot cache
	for range 3 {
		if _, err := w.read(w.agent, w.ids[0]); err != nil {
			t.Fatalf("a broken stored policy broke another decision: %v", err)
		}
		w.clk.Advance(2 * time.Second)
	}
	got := w.waitAlerts(2)
	n := 0
	for _, r := range got {
		if r == access.RuleCompileFailed {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("alerts %v, want %s twice (once per broken policy)", got, access.RuleCompileFailed)
	}
	var evs struct {
		Events []httpapi.EventItem `json:"events"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/audit/events?limit=1000", "", nil, &evs))
	seen := map[string]bool{}
	for _, it := range evs.Events {
		e := it.Event
		if e.Action == "policy.compile" && e.Reason == access.RuleCompileFailed {
			for _, id := range []string{"typo", "unparsable"} {
				if strings.Contains(e.Detail, "policy "+id+"@") {
					seen[id] = true
				}
			}
		}
	}
	if !seen["typo"] || !seen["unparsable"] {
		t.Fatalf("audit events %+v do not record both broken policies", evs.Events)
	}
}

// TestHardeningPolicyValidatedAgainstSchema (issue 13 points 1c and 2): a
// policy is compiled and validated against the shipped Cedar schema when it
// is written: a typo in a context attribute, an action or an entity type is
// policy-invalid with the validator's message, not stored to silently never
// match. The same policy spelled right is stored and decides.
func TestHardeningPolicyValidatedAgainstSchema(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, c := range []struct{ cedar, says string }{
		{`forbid (principal, action, resource) when { context.purpse == "support" };`, "purpse"},
		{`forbid (principal, action == Action::"reed", resource);`, "reed"},
		{`forbid (principal in Rolle::"support", action, resource);`, "Rolle"},
		{`forbid (principal, action, resource) when { context.fields == "phone" };`, ""},
		{`permit (principal, action, resource`, ""},
	} {
		err := w.admin.JSON(ctx, "PUT", "/v1/policies/no-support-reads", "", map[string]any{"cedar": c.cedar}, nil)
		refused(t, err, "policy-invalid")
		if !strings.Contains(err.Error(), c.says) {
			t.Fatalf("%s: message %q does not name %q", c.cedar, err, c.says)
		}
	}
	// Nothing was stored: the support agent still reads.
	_, err := w.read(w.support, w.recJP, "support", "phone")
	must(t, err)
	// Positive control: the policy spelled right is stored and forbids.
	must(t, w.admin.JSON(ctx, "PUT", "/v1/policies/no-support-reads", "", map[string]any{"cedar": `forbid (principal in Role::"support", action, resource) when { context.purpose == "support" };`}, nil))
	_, err = w.read(w.support, w.recJP, "support", "phone")
	refused(t, err, "policy-forbids")
}

// rawProof is a DPoP proof for method and url signed by priv whose header
// carries jwk exactly as given (a key spelled in a way the client never
// would).
func rawProof(t *testing.T, priv ed25519.PrivateKey, jwk map[string]string, method, url string, now time.Time) string {
	t.Helper()
	h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk})
	var jti [16]byte
	rand.Read(jti[:])
	c, _ := json.Marshal(map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti[:]), "htm": method, "htu": url, "iat": now.Unix()})
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(input)))
}

// rawEnrol enrols the key spelled jwk for principal.
func (e *env) rawEnrol(priv ed25519.PrivateKey, jwk map[string]string, principal string) error {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"principal": principal, "name": "odd spelling"})
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/devices", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", rawProof(e.t, priv, jwk, "POST", e.srv.URL+"/v1/devices", e.clk.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	p := &client.Problem{Status: resp.StatusCode}
	json.NewDecoder(resp.Body).Decode(p)
	return p
}

// TestHardeningDeviceIsItsKey (issue 13 point 3): a device is its public
// key, not the bytes that spell it. Coordinates are decoded strictly (a
// flipped unused bit, padding, a line break or the standard alphabet are
// refused), the thumbprint is over the canonical encoding, and a key that is
// a device, of anyone, ever (revoked included), never enrols again:
// device-key-known. On the old code the flipped bit and the line break
// enrolled the same key as a second device, and the second principal got
// already-exists.
func TestHardeningDeviceIsItsKey(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "carol", "roles": []string{"member"}}, nil))
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key, err := dpop.NewKey(priv)
	must(t, err)
	x := key.JWK().X
	jwk := func(x string) map[string]string { return map[string]string{"kty": "OKP", "crv": "Ed25519", "x": x} }

	// Positive control: the key, canonically spelled, enrols for carol.
	carol := client.New(w.srv.URL, key)
	carol.Now = w.clk.Now
	d, err := carol.Enrol(ctx, "carol", "carol's laptop")
	must(t, err)
	if d.ID != key.Thumbprint() {
		t.Fatalf("device id %s, want the key's thumbprint %s", d.ID, key.Thumbprint())
	}
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil))
	must(t, carol.JSON(ctx, "GET", "/v1/whoami", "", nil, nil))

	// 43 characters carry 258 bits: the last character's two low bits are
	// unused, and a lenient decoder reads the same key with them set.
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alpha, x[len(x)-1])
	flipped := x[:len(x)-1] + string(alpha[last^1])
	std := strings.NewReplacer("-", "+", "_", "/").Replace(x)
	for _, c := range []struct{ name, x string }{
		{"flipped unused bit", flipped},
		{"line break", x[:20] + "\n" + x[20:]},
		{"padding", x + "="},
		{"standard alphabet", std},
		{"space", " " + x},
	} {
		if c.x == x {
			continue // the key happened to have no '-' or '_'
		}
		for _, who := range []string{"carol", "bob"} {
			if err := w.rawEnrol(priv, jwk(c.x), who); client.ProblemType(err) != "dpop-proof-invalid" {
				t.Fatalf("%s for %s: %v, want dpop-proof-invalid", c.name, who, err)
			}
		}
	}
	// The canonical spelling, under carol again or a second principal of
	// another org: the key is a device already.
	refused(t, w.rawEnrol(priv, jwk(x), "carol"), "device-key-known")
	refused(t, w.rawEnrol(priv, jwk(x), "sam"), "device-key-known")
	// Revoked, the key never comes back, under anyone.
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/revoke", "", nil, nil))
	for _, who := range []string{"carol", "bob", "sam"} {
		refused(t, w.rawEnrol(priv, jwk(x), who), "device-key-known")
	}
	// Positive control: a fresh key enrols for carol.
	fresh := w.client(w.srv)
	_, err = fresh.Enrol(ctx, "carol", "carol's new laptop")
	must(t, err)
}

// TestHardeningProofUsedOnceAcrossNodes (issue 13 point 4): a DPoP proof is
// used once across nodes and restarts: the replay state is in the store.
// A request captured off the wire, sent again to a second node over the
// same store, or to a node started after it (a restart: a fresh process),
// is refused with dpop-proof-replayed. On the old code the jti cache was
// per process and both replays were served.
func TestHardeningProofUsedOnceAcrossNodes(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	srvB, _ := w.node()
	host := strings.TrimPrefix(w.srv.URL, "http://")
	send := func(base string, req *http.Request) int {
		t.Helper()
		r2, _ := http.NewRequest(req.Method, base+req.URL.Path, nil)
		r2.Header = req.Header.Clone()
		r2.Host = host // every node is behind the same public URL
		resp, err := http.DefaultClient.Do(r2)
		must(t, err)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var p client.Problem
			json.NewDecoder(resp.Body).Decode(&p)
			if !strings.HasSuffix(p.Type, "/dpop-proof-replayed") {
				t.Fatalf("status %d problem %s, want dpop-proof-replayed", resp.StatusCode, p.Type)
			}
		}
		return resp.StatusCode
	}
	// Positive control: a fresh proof is served by either node.
	for _, base := range []string{w.srv.URL, srvB.URL} {
		req, err := w.bob.NewRequest(ctx, "GET", "/v1/whoami", nil)
		must(t, err)
		if code := send(base, req); code != http.StatusOK {
			t.Fatalf("fresh proof to %s: %d", base, code)
		}
	}
	// The captured request, replayed on the same node, on the other node,
	// and on a node started afterwards (a restart).
	req, err := w.bob.NewRequest(ctx, "GET", "/v1/whoami", nil)
	must(t, err)
	if code := send(w.srv.URL, req); code != http.StatusOK {
		t.Fatalf("first use: %d", code)
	}
	for _, base := range []string{w.srv.URL, srvB.URL} {
		if code := send(base, req); code == http.StatusOK {
			t.Fatalf("replay to %s was served", base)
		}
	}
	srvC, _ := w.node()
	if code := send(srvC.URL, req); code == http.StatusOK {
		t.Fatal("replay to a restarted node was served")
	}
	// The other order: first used on node B, replayed on A.
	req, err = w.bob.NewRequest(ctx, "GET", "/v1/whoami", nil)
	must(t, err)
	if code := send(srvB.URL, req); code != http.StatusOK {
		t.Fatalf("first use on B: %d", code)
	}
	if code := send(w.srv.URL, req); code == http.StatusOK {
		t.Fatal("replay of B's proof to A was served")
	}
}

// TestHardeningDuplicateKeysRefused (issue 13 point 9): every request body
// with a key twice in one object (exactly, or differing only in case, which
// encoding/json would merge keeping the last) is refused with invalid-json
// and changes nothing; the same body with each key once is served.
func TestHardeningDuplicateKeysRefused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	exp := w.clk.Now().Add(time.Hour).Format(time.RFC3339)
	grant := `{"grantee_org":"affiliate","collections":["users"],"fields":["email"],"regions":["jp"],"purposes":["support"],"actions":["read"],"expires":"` + exp + `"`
	schema := `{"collection":"diaries","fields":[{"name":"entry","type":"string","classification":"other"`
	cases := []struct {
		name, method, path, purpose string
		dup, good                   string
	}{
		{"create: top level", "POST", "/v1/collections/users/records", "support",
			`{"region":"th","region":"jp","fields":{"country":"JP"}}`, `{"region":"jp","fields":{"country":"JP"}}`},
		{"create: case", "POST", "/v1/collections/users/records", "support",
			`{"region":"jp","REGION":"th","fields":{"country":"JP"}}`, `{"region":"jp","fields":{"country":"JP"}}`},
		{"create: nested field", "POST", "/v1/collections/users/records", "support",
			`{"region":"jp","fields":{"country":"JP","country":"TH"}}`, `{"region":"jp","fields":{"country":"TH"}}`},
		{"patch", "PATCH", "/v1/collections/users/records/" + w.recJP, "support",
			`{"fields":{"email":"a@example.jp"},"fields":{"email":"b@example.jp"}}`, `{"fields":{"email":"b@example.jp"}}`},
		{"lookup", "POST", "/v1/collections/users/lookup", "support",
			`{"field":"email","value":"x@example.jp","value":"hanako@example.jp"}`, `{"field":"email","value":"hanako@example.jp"}`},
		{"batchGet", "POST", "/v1/collections/users/records:batchGet", "support",
			`{"ids":["` + w.recTH + `"],"ids":["` + w.recJP + `"]}`, `{"ids":["` + w.recJP + `"]}`},
		{"grant", "POST", "/v1/grants", "", grant + `,"regions":["th"]}`, grant + `}`},
		{"policy", "PUT", "/v1/policies/dup-test", "",
			`{"cedar":"forbid (principal, action, resource) when { context.purpose == \"legal\" };","Cedar":"permit (principal, action, resource);"}`,
			`{"cedar":"forbid (principal, action, resource) when { context.purpose == \"legal\" };"}`},
		{"schema", "POST", "/v1/collections", "", schema + `,"classification":"sensitive"}]}`, schema + `}]}`},
		{"incident", "POST", "/v1/incidents", "",
			`{"principals":["eve"],"principals":["bob"],"since":"2020-01-01T00:00:00Z","until":"2020-01-02T00:00:00Z"}`,
			`{"principals":["eve"],"since":"2020-01-01T00:00:00Z","until":"2020-01-02T00:00:00Z"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {"application/json"}}
			if c.purpose != "" {
				h.Set("Sekisho-Purpose", c.purpose)
			}
			resp, err := w.admin.Do(ctx, c.method, c.path, []byte(c.dup), h)
			must(t, err)
			var p client.Problem
			json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if resp.StatusCode != 400 || p.Type != httpapi.ProblemBase+"invalid-json" {
				t.Fatalf("duplicate key: %d %s %s, want 400 invalid-json", resp.StatusCode, p.Type, p.Detail)
			}
			resp, err = w.admin.Do(ctx, c.method, c.path, []byte(c.good), h)
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("control: %d", resp.StatusCode)
			}
		})
	}
	// Nothing of the refused patch was written: the record holds the
	// control's value.
	f, err := w.read(w.admin, w.recJP, "support", "email")
	must(t, err)
	if f["email"] != "b@example.jp" {
		t.Fatalf("email %v", f["email"])
	}
}

// TestHardeningStolenTokenAttributed (issue 13 point 13): a request whose
// token's MAC checks out but whose proof is signed by another key is
// refused and recorded under the token's principal and device, so that an
// incident's scope of that principal counts it as a denied attempt. On the
// old code the event named nobody and the scope did not count it.
func TestHardeningStolenTokenAttributed(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	since := w.clk.Now().Add(-time.Minute)
	// Control: bob's own request.
	var who struct{ Device string }
	must(t, w.bob.JSON(ctx, "GET", "/v1/whoami", "", nil, &who))
	tok, exp := w.bob.CurrentToken()
	thief := w.client(w.srv)
	thief.SetToken(tok, exp)
	for range 3 {
		_, err := w.read(thief, w.recJP, "support", "phone")
		refused(t, err, "token-key-mismatch")
	}
	var evs struct {
		Events []httpapi.EventItem `json:"events"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/audit/events?principal=bob&decision=deny", "", nil, &evs))
	n := 0
	for _, it := range evs.Events {
		if it.Event.Action == "authenticate" && it.Event.Device == who.Device && it.Event.Org == "affiliate" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d denied authentications recorded under bob's principal and device, want 3: %+v", n, evs.Events)
	}
	var inc struct{ ID string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/incidents", "", map[string]any{"principals": []string{"bob"}, "since": since.Format(time.RFC3339),
		"until": w.clk.Now().Add(time.Minute).Format(time.RFC3339), "cause": "unauthorized-access"}, &inc))
	var sc struct {
		DeniedAttempts int `json:"denied_attempts"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/incidents/"+inc.ID+"/scope", "", nil, &sc))
	if sc.DeniedAttempts < 3 {
		t.Fatalf("scope counts %d denied attempts of bob, want at least the 3 stolen-token requests", sc.DeniedAttempts)
	}
}

// TestHardeningRegionsClosedList (issue 13 point 11): a record's region is
// one of the configured regions (default jp, th, tw, id); anything else,
// well-formed or not, is region-unknown, for records, lookups, orgs' home
// regions and grants. On the old code any two-to-eight-letter code was a
// region.
func TestHardeningRegionsClosedList(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, r := range []string{"kr", "us", "zz", "Japan", "jp ", ""} {
		err := w.admin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": r,
			"fields": map[string]any{"country": "JP"}}, nil)
		refused(t, err, "region-unknown")
	}
	err := w.admin.JSON(ctx, "POST", "/v1/collections/users/lookup", "support", map[string]any{"field": "email", "value": "hanako@example.jp", "region": "kr"}, nil)
	refused(t, err, "region-unknown")
	refused(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "korea-co", "home_region": "kr"}, nil), "region-unknown")
	_, err = w.grant(w.admin, w.grantToAffiliate("kr"))
	refused(t, err, "grant-invalid")
	// Controls: every configured region.
	for _, r := range sekisho.DefaultRegions {
		must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": r,
			"fields": map[string]any{"country": strings.ToUpper(r)}}, nil))
	}
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "thai-co", "home_region": "th"}, nil))
}

// TestHardeningTamperedRecordRecorded (issue 13 point 6): a read of a row
// whose ciphertext or wrapped data key was swapped with another record's
// (someone with the database) answers record-integrity with nothing of the
// record, is audited (deny, the reason naming the record and field) and
// raises a tamper alert. On the old code it answered 500 with no event.
func TestHardeningTamperedRecordRecorded(t *testing.T) {
	w := newGuardWorld(t, 4)
	ctx := context.Background()
	recs, err := w.store.GetRecords(ctx, "users", w.ids[:3])
	must(t, err)
	a, b, c := recs[0], recs[1], recs[2]
	// Control: a untouched reads.
	if _, err := w.read(w.agent, a.ID); err != nil {
		t.Fatal(err)
	}
	// b's phone replaced by a's (a valid ciphertext, of another record);
	// c's wrapped data key replaced by a's.
	b.Fields["phone"] = a.Fields["phone"]
	b.Version++
	must(t, w.store.UpdateRecord(ctx, b))
	c.WrappedDEK = a.WrappedDEK
	c.Version++
	must(t, w.store.UpdateRecord(ctx, c))
	for _, tc := range []struct{ id, what string }{{b.ID, "field phone"}, {c.ID, "the data key"}} {
		resp, err := w.agent.Do(ctx, "GET", "/v1/collections/users/records/"+tc.id+"?fields=display_name,phone", nil, http.Header{"Sekisho-Purpose": {"support"}})
		must(t, err)
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if body["type"] != httpapi.ProblemBase+"record-integrity" || body["fields"] != nil {
			t.Fatalf("tampered %s: %d %v", tc.id, resp.StatusCode, body)
		}
		if d, _ := body["detail"].(string); !strings.Contains(d, tc.id) || !strings.Contains(d, tc.what) {
			t.Fatalf("detail %q does not name the record and %s", d, tc.what)
		}
	}
	var evs struct {
		Events []httpapi.EventItem `json:"events"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/audit/events?decision=deny&limit=1000", "", nil, &evs))
	seen := map[string]bool{}
	for _, it := range evs.Events {
		e := it.Event
		if e.Policy == "integrity" && e.Principal == "sam" && len(e.Records) == 1 && strings.Contains(e.Reason, "does not authenticate") {
			seen[e.Records[0]] = true
		}
	}
	if !seen[b.ID] || !seen[c.ID] {
		t.Fatalf("integrity denials recorded for %v, want %s and %s", seen, b.ID, c.ID)
	}
	n := 0
	for _, r := range w.waitAlerts(2) {
		if r == "tamper" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("alerts %v, want two tamper alerts", w.hooks.rules())
	}
	// The untouched record still reads.
	if _, err := w.read(w.agent, a.ID); err != nil {
		t.Fatal(err)
	}
}

// TestHardeningEnrolmentRevealsNothing (issue 13 point 10): enrolment
// answers the same for a principal that exists, one that does not and one
// that is revoked (status pending, no org); the difference is audited,
// not told. On the old code an unknown principal was 404 and a known one's
// answer named its org.
func TestHardeningEnrolmentRevealsNothing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "carol", "roles": []string{"member"}}, nil))
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "dave", "roles": []string{"member"}}, nil))
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/principals/dave/revoke", "", nil, nil))
	answer := func(principal string) (map[string]any, string) {
		c := w.client(w.srv)
		body, _ := json.Marshal(map[string]string{"principal": principal, "name": "laptop"})
		req, _ := http.NewRequest("POST", w.srv.URL+"/v1/devices", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		p, err := c.Key.Proof("POST", w.srv.URL+"/v1/devices", "", w.clk.Now())
		must(t, err)
		req.Header.Set("DPoP", p)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("enrol for %s: %d %v", principal, resp.StatusCode, m)
		}
		id := m["id"].(string)
		if id != c.Key.Thumbprint() || m["principal"] != principal {
			t.Fatalf("enrol for %s: %v", principal, m)
		}
		delete(m, "id")
		delete(m, "principal")
		delete(m, "enrolled_at")
		return m, id
	}
	known, knownID := answer("carol")
	for _, p := range []string{"nobody", "dave"} {
		got, id := answer(p)
		if fmt.Sprint(got) != fmt.Sprint(known) {
			t.Fatalf("enrol for %s answers %v, for an existing principal %v", p, got, known)
		}
		// Nothing was stored: there is no such device to approve.
		refused(t, w.admin.JSON(ctx, "POST", "/v1/devices/"+id+"/approve", "", nil, nil), "not-found")
	}
	if _, ok := known["org"]; ok {
		t.Fatalf("the answer names the org: %v", known)
	}
	// Positive control: carol's enrolment is real and its admin approves it.
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/devices/"+knownID+"/approve", "", nil, nil))
	// The refusals are audited.
	var evs struct {
		Events []httpapi.EventItem `json:"events"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/audit/events?decision=deny&limit=1000", "", nil, &evs))
	seen := 0
	for _, it := range evs.Events {
		if it.Event.Action == "device.enrol" && (strings.Contains(it.Event.Detail, " for nobody") || strings.Contains(it.Event.Detail, " for dave")) {
			seen++
		}
	}
	if seen != 2 {
		t.Fatalf("%d audited refused enrolments, want 2", seen)
	}
}

// TestHardeningAnonymousRateLimited (issue 13 point 10): anonymous requests
// (enrolment, token, bootstrap) are limited per source address: past the
// configured rate, 429 rate-limited with Retry-After; a minute later the
// same request is served. On the old code there was no limit.
func TestHardeningAnonymousRateLimited(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Vault: w.vaultOf(t), AuditLog: w.log, Auth: w.acc, Access: w.acc,
		KnownPurpose: w.acc.KnownPurpose, Now: w.clk.Now, AnonymousRate: 5}))
	t.Cleanup(srv.Close)
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "carol", "roles": []string{"member"}}, nil))
	for i := range 5 {
		if _, err := w.client(srv).Enrol(ctx, "carol", "laptop"); err != nil {
			t.Fatalf("enrolment %d: %v", i+1, err)
		}
	}
	c := w.client(srv)
	_, err := c.Enrol(ctx, "carol", "laptop")
	refused(t, err, "rate-limited")
	// The raw answer: 429 and Retry-After.
	p, _ := c.Key.Proof("POST", srv.URL+"/v1/token", "", w.clk.Now())
	req, _ := http.NewRequest("POST", srv.URL+"/v1/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", p)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || ra < 1 || ra > 60 {
		t.Fatalf("token past the limit: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Authenticated requests are not limited by it.
	must(t, w.admin.JSON(ctx, "GET", "/v1/whoami", "", nil, nil))
	// A minute later the bucket has refilled.
	w.clk.Advance(time.Minute)
	if _, err := c.Enrol(ctx, "carol", "laptop"); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
}

// vaultOf is a vault over the env's store, authorised by its access
// service (for another httpapi.Server over the same state).
func (e *env) vaultOf(t *testing.T) *vault.Vault {
	v := vault.New(e.store, e.kp, e.log, vault.Options{Now: e.clk.Now, Authorizer: e.acc.Authorizer()})
	defs, err := schemas.Defaults()
	must(t, err)
	must(t, v.EnsureSchemas(context.Background(), defs))
	return v
}

// TestHardeningEnumerationOnNormalisedValue (issue 13 point 5): the guard
// sees a lookup's value after normalisation, so full-width or Arabic-Indic
// digits, spaces and dashes do not hide a sequence; a run with any stride
// (1, 17, 100) raises the enumeration rule, and so do many distinct values
// a minute that match nothing. Each attacker is a fresh support agent;
// the control is an agent looking up a few real, unrelated numbers.
func TestHardeningEnumerationOnNormalisedValue(t *testing.T) {
	w := newGuardWorld(t, 20)
	ctx := context.Background()
	fullWidth := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r - '0' + '０'
			}
			return r
		}, s)
	}
	arabicIndic := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r - '0' + '٠'
			}
			return r
		}, s)
	}
	spaced := func(s string) string { return s[:3] + " " + s[3:5] + "-" + s[5:9] + " " + s[9:] }
	cases := []struct {
		name   string
		stride int
		spell  func(string) string
	}{
		{"stride 1, full-width digits", 1, fullWidth},
		{"stride 17, Arabic-Indic digits", 17, arabicIndic},
		{"stride 100, spaces and dashes", 100, spaced},
		{"stride 1000, plain", 1000, func(s string) string { return s }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			agent := w.principal(w.admin, w.admin, fmt.Sprintf("enum%d", i), "operator", "support", "member")
			w.clk.Advance(2 * time.Minute)
			var last error
			for k := range 8 {
				v := c.spell(fmt.Sprintf("+8190%08d", 20000000+k*c.stride))
				last = agent.JSON(ctx, "POST", "/v1/collections/users/lookup", "support", map[string]any{"field": "phone", "value": v}, nil)
				if last != nil {
					break
				}
				w.clk.Advance(20 * time.Second)
			}
			refused(t, last, guard.ProblemQuarantined)
		})
	}
	t.Run("many distinct values a minute", func(t *testing.T) {
		agent := w.principal(w.admin, w.admin, "enum-many", "operator", "support", "member")
		w.clk.Advance(2 * time.Minute)
		var last error
		for k := range 40 {
			// Unrelated random-looking numbers, no progression, no match.
			v := fmt.Sprintf("+8180%08d", (k*7919*104729)%100000000)
			last = agent.JSON(ctx, "POST", "/v1/collections/users/lookup", "support", map[string]any{"field": "phone", "value": v}, nil)
			if last != nil {
				break
			}
			w.clk.Advance(time.Second)
		}
		refused(t, last, guard.ProblemQuarantined)
	})
	// Control: a few real, unrelated lookups spread over minutes.
	agent := w.principal(w.admin, w.admin, "enum-control", "operator", "support", "member")
	for k := range 6 {
		w.clk.Advance(3 * time.Minute)
		must(t, agent.JSON(ctx, "POST", "/v1/collections/users/lookup", "support", map[string]any{"field": "phone", "value": w.phones[k*3]}, nil))
	}
}

// TestHardeningDecoyIDNotTold (issue 13 point 7): a grantee's principal
// quarantined for touching the grantor's decoy is told, and its org's
// admins read, "a decoy record of org X", never the decoy's id: not in the
// quarantine, not in the audit events (the vault's deny event of the read
// is shown without its records and leaf, and is not found by the id), not
// in the incident scope or reports of that principal. Controls: the
// grantor's admin reads the id in the event and its scope; a decoy of the
// principal's own org is named as before.
func TestHardeningDecoyIDNotTold(t *testing.T) {
	w := newGuardWorld(t, 5)
	ctx := context.Background()
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	bob := w.principal(affAdmin, affAdmin, "bob", "affiliate", "member")
	var made struct{ Honeytokens []guard.Honeytoken }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/honeytokens", "", map[string]any{"region": "jp", "count": 2}, &made))
	must(t, w.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": "affiliate", "collections": []string{"users"},
		"fields": []string{"display_name"}, "regions": []string{"jp"}, "purposes": []string{"support"}, "actions": []string{"read"},
		"expires": w.clk.Now().Add(time.Hour).Format(time.RFC3339)}, nil))
	decoy := made.Honeytokens[0].ID
	err := bob.JSON(ctx, "GET", "/v1/collections/users/records/"+decoy+"?fields=display_name", "support", nil, nil)
	refused(t, err, guard.ProblemQuarantined)
	var l struct {
		Quarantines []guard.Quarantine `json:"quarantines"`
	}
	must(t, affAdmin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &l))
	if len(l.Quarantines) == 0 {
		t.Fatal("the affiliate's admin sees no quarantine")
	}
	for _, q := range l.Quarantines {
		if strings.Contains(q.Reason, decoy) || !strings.Contains(q.Reason, "a decoy record of org operator") {
			t.Fatalf("quarantine reason %q: names the decoy or not the org", q.Reason)
		}
	}
	// The vault's deny event of that read names the decoy: the grantee's
	// admin reads it without the id (records and leaf empty, redacted
	// says why), cannot find it by asking for the id, and the incident
	// scope of bob counts the attempt without naming the record.
	opAdmin := w.principal(w.admin, w.admin, "op-admin", "operator", "admin") // the grantor's admin, not an auditor
	type events struct {
		Events []struct {
			Leaf     string
			Redacted string
			Event    struct {
				Action, Policy, Decision string
				Records                  []string
			}
		}
	}
	// decoyEvents returns how many decoy decisions c reads, whether one
	// names the decoy (in records or with its leaf, which spells them).
	decoyEvents := func(c *client.Client, query string) (n int, named bool, raw string) {
		t.Helper()
		resp, err := c.Do(ctx, "GET", "/v1/audit/events?"+query, nil, nil)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("audit events %s: %d %s", query, resp.StatusCode, b)
		}
		var evs events
		must(t, json.Unmarshal(b, &evs))
		for _, e := range evs.Events {
			if e.Event.Policy == "guard:honeytoken" {
				n++
				named = named || slices.Contains(e.Event.Records, decoy)
				if leaf, _ := base64.StdEncoding.DecodeString(e.Leaf); strings.Contains(string(leaf), decoy) {
					named = true
				} else if e.Leaf != "" || e.Redacted == "" {
					t.Fatalf("a decoy event with a leaf without the id, or hidden without saying so: %+v", e)
				}
			}
		}
		return n, named, string(b)
	}
	n, named, raw := decoyEvents(affAdmin, "principal=bob")
	if n != 1 || named || strings.Contains(raw, decoy) || !strings.Contains(raw, "a decoy record of org operator") {
		t.Fatalf("the grantee's admin reads %d decoy events (named %v): %s", n, named, raw)
	}
	if n, _, raw := decoyEvents(affAdmin, "record="+decoy); n != 0 || strings.Contains(raw, decoy) {
		t.Fatalf("asked by the decoy's id, the grantee's admin reads %s", raw)
	}
	// Control: the grantor's admin (no auditor role) reads the id.
	if n, named, raw := decoyEvents(opAdmin, "principal=bob"); n != 1 || !named {
		t.Fatalf("the grantor's admin does not read the decoy's id: %s", raw)
	}
	if n, named, _ := decoyEvents(opAdmin, "record="+decoy); n != 1 || !named {
		t.Fatal("the grantor's admin does not find the event by the decoy's id")
	}
	scope := func(c *client.Client) string {
		t.Helper()
		var inc struct{ ID string }
		must(t, c.JSON(ctx, "POST", "/v1/incidents", "", map[string]any{"principals": []string{"bob"},
			"since": w.clk.Now().Add(-time.Hour).Format(time.RFC3339), "until": w.clk.Now().Add(time.Minute).Format(time.RFC3339)}, &inc))
		var out strings.Builder
		for _, f := range []string{"denied", "json", "csv", "table"} {
			resp, err := c.Do(ctx, "GET", "/v1/incidents/"+inc.ID+"/scope?format="+f, nil, nil)
			must(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("scope %s: %d %s", f, resp.StatusCode, b)
			}
			out.Write(b)
		}
		for _, kind := range []string{"appi", "gdpr"} {
			resp, err := c.Do(ctx, "GET", "/v1/incidents/"+inc.ID+"/report/"+kind+"?format=json", nil, nil)
			must(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out.Write(b)
		}
		return out.String()
	}
	if sc := scope(affAdmin); strings.Contains(sc, decoy) || !strings.Contains(sc, "a decoy record of org operator") {
		t.Fatalf("the grantee's admin's scope of bob names the decoy or not the attempt:\n%s", sc)
	}
	if sc := scope(opAdmin); !strings.Contains(sc, decoy) {
		t.Fatalf("the grantor's scope of bob does not name its decoy:\n%s", sc)
	}

	// Control: the operator's own agent and its own decoy: named.
	err = w.agent.JSON(ctx, "GET", "/v1/collections/users/records/"+made.Honeytokens[1].ID+"?fields=display_name", "support", nil, nil)
	refused(t, err, guard.ProblemQuarantined)
	must(t, w.admin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &l))
	named = false
	for _, q := range l.Quarantines {
		named = named || (q.Principal == "sam" && strings.Contains(q.Reason, made.Honeytokens[1].ID))
	}
	if !named {
		t.Fatalf("own-org decoy not named: %+v", l.Quarantines)
	}
}

// liftAnswer lifts quarantine id as c over HTTP and returns the status
// code and the quarantine answered (zero on a refusal, with its error).
func liftAnswer(t *testing.T, c *client.Client, id string) (int, guard.Quarantine, error) {
	t.Helper()
	resp, err := c.Do(context.Background(), "POST", "/v1/quarantines/"+id+"/lift", []byte(`{"reason":"reviewed in the test"}`), nil)
	if err != nil {
		return 0, guard.Quarantine{}, err
	}
	defer resp.Body.Close()
	var q guard.Quarantine
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		p := &client.Problem{Status: resp.StatusCode}
		json.Unmarshal(b, p)
		return resp.StatusCode, q, p
	}
	must(t, json.Unmarshal(b, &q))
	return resp.StatusCode, q, nil
}

// TestHardeningQuarantineTwoSided (issue 13 point 7): a grantee's principal
// quarantined for touching the grantor's decoy, or for going over the
// grant's budget on the grantor's records, is lifted only when an admin of
// the grantor and an admin of its own org have both lifted it (principal
// and device alike, in either order). One lift alone leaves it refused and
// says which org must still lift it; a third org's admin cannot; the same
// org cannot lift twice; every lift is audited. Positive controls: both
// lifts -> the principal reads again; an own-org quarantine is lifted by
// its own org's admin alone.
func TestHardeningQuarantineTwoSided(t *testing.T) {
	w := newGuardWorld(t, 30)
	ctx := context.Background()
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "subcontractor", "home_region": "jp"}, nil))
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	subAdmin := w.principal(w.admin, w.admin, "sub-admin", "subcontractor", "admin")
	bob := w.principal(affAdmin, affAdmin, "bob", "affiliate", "member")
	carol := w.principal(affAdmin, affAdmin, "carol", "affiliate", "member")
	var made struct{ Honeytokens []guard.Honeytoken }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/honeytokens", "", map[string]any{"region": "jp", "count": 2}, &made))
	must(t, w.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": "affiliate", "collections": []string{"users"},
		"fields": []string{"display_name"}, "regions": []string{"jp"}, "purposes": []string{"support"}, "actions": []string{"read"},
		"expires": w.clk.Now().Add(24 * time.Hour).Format(time.RFC3339)}, nil))
	recs, err := w.store.GetRecords(ctx, "users", w.ids)
	must(t, err)
	var jp []string
	for _, r := range recs {
		if r.Region == "jp" {
			jp = append(jp, r.ID)
		}
	}
	if len(jp) < 5 {
		t.Fatalf("only %d of the generated records are in jp", len(jp))
	}
	read := func(c *client.Client, id string) error {
		return c.JSON(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", "support", nil, nil)
	}
	// Positive control before: bob reads a grantor's record under the grant.
	must(t, read(bob, jp[0]))
	// bob touches the grantor's decoy: quarantined, two-sided.
	refused(t, read(bob, made.Honeytokens[0].ID), guard.ProblemQuarantined)
	bobDevice := "device:" + bob.Key.Thumbprint()
	var l struct{ Quarantines []guard.Quarantine }
	must(t, affAdmin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &l))
	if len(l.Quarantines) != 2 {
		t.Fatalf("the affiliate's admin sees %d quarantines, want bob's principal and device: %+v", len(l.Quarantines), l.Quarantines)
	}
	for _, q := range l.Quarantines {
		if !slices.Equal(q.DataOrgs, []string{"operator"}) || !slices.Equal(q.LiftsNeeded, []string{"affiliate", "operator"}) || q.Status != guard.StatusActive {
			t.Fatalf("quarantine %s: data_orgs %v, lifts_needed %v, status %s", q.ID, q.DataOrgs, q.LiftsNeeded, q.Status)
		}
	}
	// A third org's admin neither sees nor lifts it.
	must(t, subAdmin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &l))
	if len(l.Quarantines) != 0 {
		t.Fatalf("the subcontractor's admin sees %+v", l.Quarantines)
	}
	_, _, err = liftAnswer(t, subAdmin, "principal:bob")
	refused(t, err, "admin-required")
	// The grantee's own admin alone: recorded (202), still quarantined, and
	// the answer and the refusal name the org that must still lift it.
	code, q, err := liftAnswer(t, affAdmin, "principal:bob")
	must(t, err)
	if code != http.StatusAccepted || q.Status != guard.StatusActive || !slices.Equal(q.LiftsNeeded, []string{"operator"}) ||
		len(q.Lifts) != 1 || q.Lifts[0].Org != "affiliate" || q.Lifts[0].By != "aff-admin" {
		t.Fatalf("one lift by the grantee's admin answered %d %+v", code, q)
	}
	_, _, err = liftAnswer(t, affAdmin, "principal:bob")
	refused(t, err, guard.ProblemLiftPending)
	// The device: the grantor's admin first this time.
	code, q, err = liftAnswer(t, w.admin, bobDevice)
	must(t, err)
	if code != http.StatusAccepted || q.Status != guard.StatusActive || !slices.Equal(q.LiftsNeeded, []string{"affiliate"}) {
		t.Fatalf("one lift by the grantor's admin answered %d %+v", code, q)
	}
	w.clk.Advance(2 * time.Second)
	_, err = bob.Refresh(ctx)
	refused(t, err, guard.ProblemQuarantined)
	if !strings.Contains(err.Error(), "an admin of its org") {
		t.Fatalf("the device's refusal does not say its own org must still lift it: %v", err)
	}
	err = read(bob, jp[1])
	refused(t, err, guard.ProblemQuarantined)
	if !strings.Contains(err.Error(), "an admin of org operator must still") {
		t.Fatalf("the principal's refusal does not say the grantor must still lift it: %v", err)
	}
	// Both sides of both: lifted.
	code, q, err = liftAnswer(t, w.admin, "principal:bob")
	must(t, err)
	if code != http.StatusOK || q.Status != guard.StatusLifted || len(q.LiftsNeeded) != 0 || len(q.Lifts) != 2 {
		t.Fatalf("the second lift answered %d %+v", code, q)
	}
	code, q, err = liftAnswer(t, affAdmin, bobDevice)
	must(t, err)
	if code != http.StatusOK || q.Status != guard.StatusLifted {
		t.Fatalf("the device's second lift answered %d %+v", code, q)
	}
	_, _, err = liftAnswer(t, affAdmin, bobDevice)
	refused(t, err, "quarantine-not-active")
	// Positive control: bob works again (with a new token).
	w.clk.Advance(2 * time.Second)
	_, err = bob.Refresh(ctx)
	must(t, err)
	must(t, read(bob, jp[1]))
	// Every lift is audited under the admin who made it, the first ones
	// saying what was still needed; the third org's refusal too.
	lifts := map[string][]string{}
	for _, who := range []string{"aff-admin", "admin", "sub-admin"} {
		entries, err := w.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: who})
		must(t, err)
		for _, e := range entries {
			ev, _ := sekisho.UnmarshalEvent(e.Leaf)
			if ev.Action == "guard.quarantine.lift" {
				lifts[who] = append(lifts[who], ev.Decision+" "+ev.Detail)
			}
		}
	}
	if len(lifts["aff-admin"]) != 2 || len(lifts["admin"]) != 2 || len(lifts["sub-admin"]) != 1 ||
		!strings.Contains(lifts["aff-admin"][0], "still needs an admin of org operator") ||
		!strings.Contains(lifts["admin"][0], "still needs an admin of org affiliate") ||
		!strings.HasPrefix(lifts["sub-admin"][0], sekisho.Deny) {
		t.Fatalf("lifts audited: %q", lifts)
	}

	// The volume budget (a member's: 60 records a minute) spent on the
	// grantor's records: the volume-budget rule quarantines carol, and
	// that too is two-sided.
	var last error
	for i := range 100 {
		if last = read(carol, jp[i%len(jp)]); last != nil {
			break
		}
	}
	refused(t, last, guard.ProblemQuarantined)
	code, q, err = liftAnswer(t, affAdmin, "principal:carol")
	must(t, err)
	if code != http.StatusAccepted || q.Rule != guard.RuleBudget || !slices.Equal(q.DataOrgs, []string{"operator"}) {
		t.Fatalf("carol's budget quarantine after her org's lift: %d %+v", code, q)
	}
	code, q, err = liftAnswer(t, w.admin, "principal:carol")
	must(t, err)
	if code != http.StatusOK || q.Status != guard.StatusLifted {
		t.Fatalf("carol's budget quarantine after both lifts: %d %+v", code, q)
	}

	// Control: an own-org quarantine (the operator's agent, the operator's
	// decoy) is lifted by its own org's admin alone, at once.
	refused(t, read(w.agent, made.Honeytokens[1].ID), guard.ProblemQuarantined)
	code, q, err = liftAnswer(t, w.admin, "principal:sam")
	must(t, err)
	if code != http.StatusOK || q.Status != guard.StatusLifted || len(q.DataOrgs) != 0 {
		t.Fatalf("own-org quarantine after its admin's lift: %d %+v", code, q)
	}
	_, _, err = liftAnswer(t, affAdmin, "device:"+w.agent.Key.Thumbprint())
	refused(t, err, "admin-required")
}
