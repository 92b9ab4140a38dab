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
