package httpapi_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/httpapi"
)

// TestGrantUsage: GET /v1/grants/usage computes on the server, from the
// audit log and the guard's counters, which grants are expiring, unused
// and over budget: a grant used twice then refused for its total budget is
// over budget and used; a grant never used is unused; only the one
// expiring within the window is expiring. Members are refused.
func TestGrantUsage(t *testing.T) {
	w := newGuardWorld(t, 30)
	ctx := context.Background()
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	bob := w.principal(affAdmin, affAdmin, "bob", "affiliate", "member")
	grant := func(field string, expires time.Duration, total int) string {
		var g struct{ ID, Status string }
		must(t, w.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": "affiliate", "collections": []string{"users"},
			"fields": []string{field}, "regions": []string{"jp"}, "purposes": []string{"support"}, "actions": []string{"read"},
			"budget_total": total, "expires": w.clk.Now().Add(expires).Format(time.RFC3339)}, &g))
		if g.Status != "active" {
			t.Fatalf("grant %s is %s", g.ID, g.Status)
		}
		return g.ID
	}
	used := grant("display_name", 24*time.Hour, 2)
	unused := grant("email", 30*24*time.Hour, 0)
	recs, err := w.store.GetRecords(ctx, "users", w.ids)
	must(t, err)
	var jp []string
	for _, r := range recs {
		if r.Region == "jp" {
			jp = append(jp, r.ID)
		}
	}
	if len(jp) < 3 {
		t.Fatalf("only %d records in jp", len(jp))
	}
	read := func(id string) error {
		return bob.JSON(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", "support", nil, nil)
	}
	must(t, read(jp[0]))
	must(t, read(jp[1]))
	// The third read is over the grant's total (the type is the grant's or
	// the guard's budget problem, wherever the budget is enforced).
	if err := read(jp[2]); !strings.Contains(client.ProblemType(err), "budget-exceeded") {
		t.Fatalf("the read past the grant's budget: %v", err)
	}

	refused(t, bob.JSON(ctx, "GET", "/v1/grants/usage", "", nil, nil), "admin-required")
	refused(t, w.admin.JSON(ctx, "GET", "/v1/grants/usage?expiring_within=soon", "", nil, nil), "invalid")
	var rep httpapi.GrantUsageReport
	must(t, w.admin.JSON(ctx, "GET", "/v1/grants/usage", "", nil, &rep))
	if !slices.Equal(rep.Expiring, []string{used}) || !slices.Equal(rep.Unused, []string{unused}) || !slices.Equal(rep.OverBudget, []string{used}) {
		t.Fatalf("expiring %v unused %v over budget %v; want [%s] [%s] [%s]", rep.Expiring, rep.Unused, rep.OverBudget, used, unused, used)
	}
	for _, u := range rep.Grants {
		switch u.ID {
		case used:
			if u.Reads != 2 || u.RecordsRead != 2 || u.BudgetRefusals != 1 || u.LastUsed == nil || u.RecordsCounted != 2 || u.Unused {
				t.Fatalf("the used grant: %+v", u)
			}
		case unused:
			if u.Reads != 0 || u.OverBudget || u.Expiring || u.State != "active" {
				t.Fatalf("the unused grant: %+v", u)
			}
		}
	}
	if rep.EventsScanned == nil || *rep.EventsScanned == 0 {
		t.Fatal("no audit event scanned")
	}
	// A wider window makes the 30-day grant expiring too.
	must(t, w.admin.JSON(ctx, "GET", "/v1/grants/usage?expiring_within=720h1m", "", nil, &rep))
	if len(rep.Expiring) != 2 {
		t.Fatalf("expiring within 30 days: %v", rep.Expiring)
	}
}
