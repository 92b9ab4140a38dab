package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
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
		Event audit.Event `json:"event"`
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
