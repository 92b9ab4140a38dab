package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/vault"
)

func vaultCaller(principal, org string) vault.Caller {
	return vault.Caller{Principal: principal, Org: org}
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
	w.acc.SetAlerter(func(ctx context.Context, rule, org, detail string) {
		w.g.Raise(ctx, vaultCaller("sekisho", org), rule, detail)
	})
	// Control: the agent reads before anything is broken.
	if _, err := w.read(w.agent, w.ids[0]); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []access.Policy{
		{ID: "typo", Cedar: `forbid (principal, action, resource) when { context.purpse == "support" };`, Version: 1},
		{ID: "unparsable", Cedar: "permit (principal, action, resource) when { context.purpose == \"\\a\" };", Version: 1},
	} {
		b, _ := json.Marshal(bad)
		must(t, w.store.PutObject(ctx, &sekisho.Object{Kind: access.KindPolicy, ID: bad.ID, Version: 1, Body: b, Updated: w.clk.Now()}))
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
