package httpapi_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/client"
)

// putSchema changes the users schema with change applied to its current form.
func (w *world) putSchema(change func(s *sekisho.Schema)) {
	w.t.Helper()
	ctx := context.Background()
	var s sekisho.Schema
	must(w.t, w.admin.JSON(ctx, "GET", "/v1/collections/users", "", nil, &s))
	change(&s)
	s.Version = 0
	must(w.t, w.admin.JSON(ctx, "PUT", "/v1/collections/users", "", s, nil))
}

type auditEvents struct {
	Events []struct {
		Event sekisho.Event `json:"event"`
	} `json:"events"`
}

func (w *world) events(query string) auditEvents {
	w.t.Helper()
	var evs auditEvents
	must(w.t, w.admin.JSON(context.Background(), "GET", "/v1/audit/events?limit=1000&"+query, "", nil, &evs))
	return evs
}

// A read for a purpose the schema says needs consent is refused without
// consent, allowed once it is given, and refused again on the very next
// request after it is withdrawn; each refusal is audited; the consents and
// their history come back with the record.
func TestConsentPerPurpose(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.putSchema(func(s *sekisho.Schema) { s.ConsentRequired = []string{"marketing"} })
	id := w.recJP
	path := "/v1/collections/users/records/" + id

	// Positive control: a purpose that needs no consent reads as before.
	_, err := w.read(w.admin, id, "support", "email")
	must(t, err)
	// No consent recorded: refused, with its own problem type.
	_, err = w.read(w.admin, id, "marketing", "email")
	refused(t, err, "consent-missing")

	given := w.clk.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	must(t, w.admin.JSON(ctx, "PATCH", path, "support", map[string]any{
		"consents": map[string]any{"marketing": map[string]any{"given": given, "withdrawn": nil}}}, nil))
	var rec sekisho.Record
	must(t, w.admin.JSON(ctx, "GET", path+"?fields=email", "marketing", nil, &rec))
	if string(rec.Fields["email"]) != `"hanako@example.jp"` {
		t.Fatalf("read with consent: %s", rec.Fields["email"])
	}
	if c := rec.Consents["marketing"]; c.Given == nil || !c.Given.Equal(given) || c.Withdrawn != nil {
		t.Fatalf("consents returned: %+v", rec.Consents)
	}

	// Withdrawal is an update; the next request is refused.
	withdrawn := w.clk.Now().UTC().Truncate(time.Second)
	must(t, w.admin.JSON(ctx, "PATCH", path, "support", map[string]any{
		"consents": map[string]any{"marketing": map[string]any{"given": given, "withdrawn": withdrawn}}}, nil))
	_, err = w.read(w.admin, id, "marketing", "email")
	refused(t, err, "consent-missing")
	// A lookup and a batch read under the purpose are refused as well.
	err = w.admin.JSON(ctx, "POST", "/v1/collections/users/lookup", "marketing", map[string]any{"field": "email", "value": "hanako@example.jp", "fields": []string{"email"}}, nil)
	refused(t, err, "consent-missing")
	err = w.admin.JSON(ctx, "POST", "/v1/collections/users/records:batchGet", "marketing", map[string]any{"ids": []string{id}, "fields": []string{"email"}}, nil)
	refused(t, err, "consent-missing")
	_, err = w.read(w.admin, id, "support", "email")
	must(t, err)

	// The history keeps both changes, in order.
	must(t, w.admin.JSON(ctx, "GET", path+"?fields=email", "support", nil, &rec))
	if h := rec.ConsentHistory; len(h) != 2 || h[0].Withdrawn != nil || h[1].Withdrawn == nil || !h[1].Withdrawn.Equal(withdrawn) || h[1].By != "admin" {
		t.Fatalf("consent history: %+v", rec.ConsentHistory)
	}

	// Audited: the refusals (deny, purpose marketing, reason names consent)
	// and the two consent changes (updates listing "consents").
	var denials, changes int
	for _, item := range w.events("record=" + id).Events {
		ev := item.Event
		if ev.Decision == "deny" && ev.Purpose == "marketing" && strings.Contains(ev.Reason, "consent") {
			denials++
		}
		if ev.Action == "update" && ev.Decision == "allow" && strings.Join(ev.Fields, ",") == "consents" {
			changes++
		}
	}
	if denials != 4 || changes != 2 {
		t.Fatalf("audit: %d consent refusals (want 4), %d consent changes (want 2)", denials, changes)
	}

	// Bad input is refused and changes nothing.
	err = w.admin.JSON(ctx, "PATCH", path, "support", map[string]any{"consents": map[string]any{"Marketing!": map[string]any{"given": given}}}, nil)
	refused(t, err, "invalid")
	err = w.admin.JSON(ctx, "PATCH", path, "support", map[string]any{"consents": map[string]any{"marketing": map[string]any{"given": withdrawn, "withdrawn": given}}}, nil)
	refused(t, err, "invalid")
	_, err = w.read(w.admin, id, "marketing", "email")
	refused(t, err, "consent-missing")

	// The subject access report lists the consents and their history.
	st, _, body := get(t, w.admin, path+"/access-report?format=json")
	if st != 200 {
		t.Fatalf("access report: %d %s", st, body)
	}
	var rep struct {
		Subject struct {
			Consents       map[string]sekisho.Consent `json:"consents"`
			ConsentHistory []sekisho.ConsentChange    `json:"consent_history"`
		} `json:"subject"`
		Tables []struct {
			Title string     `json:"title"`
			Rows  [][]string `json:"rows"`
		} `json:"tables"`
	}
	must(t, json.Unmarshal(body, &rep))
	if c := rep.Subject.Consents["marketing"]; c.Withdrawn == nil || len(rep.Subject.ConsentHistory) != 2 {
		t.Fatalf("access report consents %+v, history %+v", rep.Subject.Consents, rep.Subject.ConsentHistory)
	}
	var historyRows int
	for _, tb := range rep.Tables {
		if strings.HasPrefix(tb.Title, "Consent history") {
			historyRows = len(tb.Rows)
		}
	}
	if historyRows != 2 {
		t.Fatalf("access report has %d consent history rows, want 2: %s", historyRows, body)
	}

	// Consent given at creation holds from the first read.
	var created struct{ ID string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": "jp",
		"fields":   map[string]any{"display_name": "Ken", "email": "ken@example.jp"},
		"consents": map[string]any{"marketing": map[string]any{"given": given, "withdrawn": nil}}}, &created))
	_, err = w.read(w.admin, created.ID, "marketing", "email")
	must(t, err)
	if client.ProblemType(err) != "" {
		t.Fatal(err)
	}
}

// The dry run and legal holds over HTTP: a record past its retain_until is
// listed; a hold moves it to held; only an admin of the record's org sets
// or lifts one; an org's admin sees only its own org's records in the plan.
func TestRetentionPlanAndHolds(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	past := w.clk.Now().Add(-time.Hour).UTC()
	var rec struct{ ID string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": "jp",
		"fields": map[string]any{"display_name": "Old", "email": "old@example.jp"}, "retain_until": past}, &rec))
	var affRec struct{ ID string }
	must(t, w.affAdmin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": "jp",
		"fields": map[string]any{"display_name": "Aff"}, "retain_until": past}, &affRec))

	type plan struct {
		Expired []struct{ ID, Org string }
		Held    []struct{ ID, Hold string }
	}
	var p plan
	must(t, w.affAdmin.JSON(ctx, "GET", "/v1/collections/users/retention/plan", "", nil, &p))
	if len(p.Expired) != 1 || p.Expired[0].ID != affRec.ID {
		t.Fatalf("affiliate admin's plan: %+v", p)
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/collections/users/retention/plan", "", nil, &p))
	if len(p.Expired) != 2 { // the root admin is also an auditor
		t.Fatalf("auditor's plan: %+v", p)
	}
	err := w.bob.JSON(ctx, "GET", "/v1/collections/users/retention/plan", "", nil, &p)
	refused(t, err, "admin-required")

	// Holds: refused to a member and to another org's admin; set by the
	// record's org's admin.
	err = w.bob.JSON(ctx, "PUT", "/v1/holds/"+rec.ID, "", map[string]any{"reason": "x"}, nil)
	refused(t, err, "admin-required")
	err = w.affAdmin.JSON(ctx, "PUT", "/v1/holds/"+rec.ID, "", map[string]any{"reason": "x"}, nil)
	refused(t, err, "admin-required")
	err = w.admin.JSON(ctx, "PUT", "/v1/holds/"+rec.ID, "", map[string]any{}, nil)
	refused(t, err, "invalid")
	must(t, w.admin.JSON(ctx, "PUT", "/v1/holds/"+rec.ID, "", map[string]any{"reason": "litigation 2026-17"}, nil))
	// A held record cannot be erased by hand either.
	err = w.admin.JSON(ctx, "DELETE", "/v1/collections/users/records/"+rec.ID, "support", nil, nil)
	refused(t, err, "legal-hold")
	p = plan{}
	must(t, w.admin.JSON(ctx, "GET", "/v1/collections/users/retention/plan", "", nil, &p))
	if len(p.Expired) != 1 || p.Expired[0].ID != affRec.ID || len(p.Held) != 1 || p.Held[0].ID != rec.ID || p.Held[0].Hold != "litigation 2026-17" {
		t.Fatalf("plan with a hold: %+v", p)
	}
	var holds struct {
		Holds []struct{ Record, Reason string }
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/holds", "", nil, &holds))
	if len(holds.Holds) != 1 || holds.Holds[0].Record != rec.ID {
		t.Fatalf("holds: %+v", holds)
	}
	must(t, w.affAdmin.JSON(ctx, "GET", "/v1/holds", "", nil, &holds))
	if len(holds.Holds) != 0 {
		t.Fatalf("another org's admin lists %+v", holds)
	}
	err = w.affAdmin.JSON(ctx, "DELETE", "/v1/holds/"+rec.ID, "", nil, nil)
	refused(t, err, "admin-required")
	must(t, w.admin.JSON(ctx, "DELETE", "/v1/holds/"+rec.ID, "", nil, nil))
	err = w.admin.JSON(ctx, "DELETE", "/v1/holds/"+rec.ID, "", nil, nil)
	refused(t, err, "not-found")
	var actions []string
	for _, item := range w.events("record=" + rec.ID).Events {
		if ev := item.Event; ev.Action == "hold.set" || ev.Action == "hold.lift" {
			actions = append(actions, ev.Action+":"+ev.Decision)
		}
	}
	if strings.Join(actions, ",") != "hold.set:deny,hold.set:deny,hold.set:allow,hold.lift:deny,hold.lift:allow" {
		t.Fatalf("hold events: %v", actions)
	}
}

// Tokens: the same value gives the same token within (org, collection,
// field) and different tokens across them; detokenize is refused without
// the grant action and allowed with it (positive control); every
// detokenization is in the incident scope.
func TestTokens(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	since := w.clk.Now().Add(-time.Minute).UTC()
	tokenize := func(c *client.Client, collection string, body map[string]any) string {
		t.Helper()
		var out struct{ Token string }
		must(t, c.JSON(ctx, "POST", "/v1/collections/"+collection+"/tokens", "support", body, &out))
		if !strings.HasPrefix(out.Token, "tok_") {
			t.Fatalf("token %q", out.Token)
		}
		return out.Token
	}
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections", "", map[string]any{"collection": "contacts", "fields": []map[string]any{
		{"name": "a", "type": "string", "classification": "identifier", "lookup": true},
		{"name": "b", "type": "string", "classification": "identifier", "lookup": true}}}, nil))

	// A record of its own: the world's two records share an email.
	var rec struct{ ID string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/records", "support", map[string]any{"region": "jp",
		"fields": map[string]any{"display_name": "Taro", "email": "taro@example.jp"}}, &rec))
	tok := tokenize(w.admin, "users", map[string]any{"field": "email", "value": "taro@example.jp"})
	distinct := map[string]string{"users.email": tok}
	for name, got := range map[string]string{
		"another spelling": tokenize(w.admin, "users", map[string]any{"field": "email", "value": " Taro@Example.JP"}),
		"the record's":     tokenize(w.admin, "users", map[string]any{"field": "email", "record": rec.ID}),
		"asked again":      tokenize(w.admin, "users", map[string]any{"field": "email", "value": "taro@example.jp"}),
	} {
		if got != tok {
			t.Errorf("%s token %s differs from %s", name, got, tok)
		}
	}
	for name, got := range map[string]string{
		"employees.email":       tokenize(w.admin, "employees", map[string]any{"field": "email", "value": "taro@example.jp"}),
		"affiliate users.email": tokenize(w.affAdmin, "users", map[string]any{"field": "email", "value": "taro@example.jp"}),
		"contacts.a":            tokenize(w.admin, "contacts", map[string]any{"field": "a", "value": "x1"}),
		"contacts.b":            tokenize(w.admin, "contacts", map[string]any{"field": "b", "value": "x1"}),
	} {
		for other, o := range distinct {
			if o == got {
				t.Errorf("%s and %s have the same token", name, other)
			}
		}
		distinct[name] = got
	}
	err := w.admin.JSON(ctx, "POST", "/v1/collections/users/tokens", "support", map[string]any{"field": "display_name", "value": "x"}, nil)
	refused(t, err, "invalid") // not a lookup field

	type values struct{ Values []any }
	detok := func(c *client.Client, body map[string]any) (values, error) {
		var v values
		err := c.JSON(ctx, "POST", "/v1/tokens:detokenize", "support", body, &v)
		return v, err
	}
	unknown := tokenize(w.admin, "users", map[string]any{"field": "email", "value": "nobody@example.jp"})
	v, err := detok(w.admin, map[string]any{"collection": "users", "field": "email", "tokens": []string{tok, unknown}})
	must(t, err)
	if len(v.Values) != 2 || v.Values[0] != "taro@example.jp" || v.Values[1] != nil {
		t.Fatalf("detokenize: %v", v.Values)
	}
	_, err = detok(w.admin, map[string]any{"collection": "users", "field": "email", "tokens": []string{"tok_nope"}})
	refused(t, err, "invalid")
	// A token of another field or org does not open here.
	v, err = detok(w.admin, map[string]any{"collection": "users", "field": "email", "tokens": []string{distinct["affiliate users.email"]}})
	must(t, err)
	if v.Values[0] != nil {
		t.Fatalf("another org's token detokenized to %v", v.Values[0])
	}
	// Support staff's policy does not list detokenize.
	_, err = detok(w.support, map[string]any{"collection": "users", "field": "email", "tokens": []string{tok}})
	refused(t, err, "role-not-permitted")

	// Across orgs: a grant without the action refuses; with it, allowed.
	grant := map[string]any{"grantee_org": "affiliate", "collections": []string{"users"}, "fields": []string{"email"},
		"regions": []string{"jp"}, "purposes": []string{"support"}, "actions": []string{"read", "lookup"},
		"expires": w.clk.Now().Add(time.Hour).Format(time.RFC3339)}
	_, err = w.grant(w.admin, grant)
	must(t, err)
	body := map[string]any{"collection": "users", "field": "email", "tokens": []string{tok}, "org": "operator"}
	_, err = detok(w.bob, body)
	refused(t, err, "grant-action-not-listed")
	grant["actions"] = []string{"read", "detokenize"}
	_, err = w.grant(w.admin, grant)
	must(t, err)
	v, err = detok(w.bob, body)
	must(t, err)
	if v.Values[0] != "taro@example.jp" {
		t.Fatalf("bob detokenizes %v", v.Values)
	}
	// A made-up org creates nothing and is refused.
	_, err = detok(w.bob, map[string]any{"collection": "users", "field": "email", "tokens": []string{tok}, "org": "nosuchorg"})
	refused(t, err, "invalid")

	// Every detokenization is in the incident scope: bob's names the record.
	var inc struct{ ID string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/incidents", "", map[string]any{"principals": []string{"bob"},
		"since": since.Format(time.RFC3339), "until": w.clk.Now().Add(time.Minute).UTC().Format(time.RFC3339)}, &inc))
	var scope struct {
		SubjectsExposed int `json:"subjects_exposed"`
		Subjects        []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"subjects"`
	}
	must(t, w.admin.JSON(ctx, "GET", "/v1/incidents/"+inc.ID+"/scope", "", nil, &scope))
	if scope.SubjectsExposed != 1 {
		t.Fatalf("scope of bob's detokenization: %+v", scope)
	}
	var evs int
	for _, item := range w.events("principal=bob").Events {
		if ev := item.Event; ev.Action == "detokenize" && ev.Decision == "allow" && slices.Equal(ev.Records, []string{rec.ID}) && slices.Equal(ev.Fields, []string{"email"}) {
			evs++
		}
	}
	if evs != 1 {
		t.Fatalf("%d allowed detokenize events of bob, want 1", evs)
	}

	// Erased: the token no longer resolves.
	must(t, w.admin.JSON(ctx, "DELETE", "/v1/collections/users/records/"+rec.ID, "support", nil, nil))
	v, err = detok(w.admin, map[string]any{"collection": "users", "field": "email", "tokens": []string{tok}})
	must(t, err)
	if v.Values[0] != nil {
		t.Fatalf("token of an erased record: %v", v.Values)
	}
}

// Detokenize is budgeted like a read: a grant's budget stops a bulk
// detokenization, and what was returned is what the audit log lists.
func TestGrantBudgetStopsDetokenize(t *testing.T) {
	w := newGuardWorld(t, 60)
	ctx := context.Background()
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	bob := w.principal(affAdmin, affAdmin, "bob", "affiliate", "member")
	admin2 := w.principal(w.admin, w.admin, "admin2", "operator", "admin")
	w.clk.Advance(access.MinApproverTenure + time.Hour)
	const budget = 12
	var g struct{ ID, Status string }
	must(t, w.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": "affiliate", "collections": []string{"users"},
		"fields": []string{"phone"}, "regions": []string{"jp", "th", "tw", "id"}, "purposes": []string{"support"}, "actions": []string{"detokenize"},
		"expires": w.clk.Now().Add(24 * time.Hour), "budget_per_hour": budget}, &g))
	if g.Status != "active" {
		must(t, admin2.JSON(ctx, "POST", "/v1/grants/"+g.ID+"/approve", "", nil, nil))
	}
	var tokens []string
	for _, p := range w.phones {
		var out struct{ Token string }
		must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/tokens", "support", map[string]any{"field": "phone", "value": p}, &out))
		tokens = append(tokens, out.Token)
	}
	returned := 0
	var stop error
	for i := 0; i+4 <= len(tokens); i += 4 {
		var out struct{ Values []any }
		err := bob.JSON(ctx, "POST", "/v1/tokens:detokenize", "support", map[string]any{"collection": "users", "field": "phone",
			"tokens": tokens[i : i+4], "org": "operator"}, &out)
		if err != nil {
			stop = err
			break
		}
		for _, v := range out.Values {
			if v != nil {
				returned++
			}
		}
		w.clk.Advance(time.Second)
	}
	if client.ProblemType(stop) != "grant-budget-exceeded" || returned > budget || returned == 0 {
		t.Fatalf("bulk detokenization not stopped by the budget of %d: %d values returned (%v)", budget, returned, stop)
	}
	entries, err := w.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: "bob"})
	must(t, err)
	audited := 0
	for _, e := range entries {
		ev, err := sekisho.UnmarshalEvent(e.Leaf)
		must(t, err)
		if ev.Decision == sekisho.Allow && ev.Action == sekisho.ActionDetokenize {
			audited += len(ev.Records)
		}
	}
	if audited != returned {
		t.Fatalf("values returned %d, records in allowed detokenize events %d", returned, audited)
	}
}
