package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/guard"
)

// TestQuarantineLiftAttacks: POST /v1/quarantines/{id}/lift by whoever
// may not lift, or without what a lift needs, over HTTP: a member of the
// org, another org's admin, the quarantined principal itself, an admin
// lifting the quarantine of their own device from another device (the
// two-person rule), a body with no reason, a blank one, one over 1,000
// bytes, an unknown field beside a reason, a form body. Each is refused
// with its problem and the quarantine stays active. Control: an admin of
// the org lifts it with a reason, and the principal reads again.
func TestQuarantineLiftAttacks(t *testing.T) {
	w := newGuardWorld(t, 30)
	ctx := context.Background()
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	member := w.principal(w.admin, w.admin, "mem", "operator", "member")
	admin2 := w.principal(w.admin, w.admin, "admin2", "operator", "admin", "support")
	admin2b := w.client(w.srv)
	d, err := admin2b.Enrol(ctx, "admin2", "admin2's second laptop")
	must(t, err)
	must(t, w.admin.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil))

	var made struct{ Honeytokens []guard.Honeytoken }
	must(t, w.admin.JSON(ctx, "POST", "/v1/collections/users/honeytokens", "", map[string]any{"region": "jp", "count": 2}, &made))
	_, err = w.read(w.agent, made.Honeytokens[0].ID)
	refused(t, err, guard.ProblemQuarantined)
	// admin2's first device touches the other decoy: admin2 and that
	// device are quarantined.
	_, err = w.read(admin2, made.Honeytokens[1].ID)
	refused(t, err, guard.ProblemQuarantined)

	lift := func(c *client.Client, id, contentType, body string) (int, string) {
		h := http.Header{}
		if contentType != "" {
			h.Set("Content-Type", contentType)
		}
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		resp, err := c.Do(ctx, "POST", "/v1/quarantines/"+id+"/lift", b, h)
		must(t, err)
		defer resp.Body.Close()
		var p client.Problem
		if resp.StatusCode >= 300 {
			json.NewDecoder(resp.Body).Decode(&p)
		}
		return resp.StatusCode, strings.TrimPrefix(p.Type, "https://sekisho.dev/problems/")
	}
	const ok = `{"reason":"reviewed: a drill"}`
	sam := "principal:sam"
	if st, typ := lift(w.admin, "principal:admin2", "application/json", ok); st != http.StatusOK {
		t.Fatalf("lift of admin2's principal quarantine: %d %s", st, typ)
	}
	w.clk.Advance(2 * time.Second) // tokens issued after the quarantine
	for _, tc := range []struct {
		name, id, ct, body string
		c                  *client.Client
		status             int
		want               string
	}{
		{"a member of the org", sam, "application/json", ok, member, 403, "admin-required"},
		{"another org's admin", sam, "application/json", ok, affAdmin, 403, "admin-required"},
		{"the quarantined principal", sam, "application/json", ok, w.agent, 401, guard.ProblemQuarantined},
		{"an admin, their own device's quarantine from another device", "device:" + admin2.Key.Thumbprint(), "application/json", ok, admin2b, 403, "two-person-rule"},
		{"no body", sam, "application/json", "", w.admin, 400, "invalid"},
		{"no reason", sam, "application/json", `{}`, w.admin, 400, "invalid"},
		{"a blank reason", sam, "application/json", `{"reason":" \n\t "}`, w.admin, 400, "invalid"},
		{"a reason over 1,000 bytes", sam, "application/json", `{"reason":"` + strings.Repeat("x", 1001) + `"}`, w.admin, 400, "invalid"},
		{"an unknown field beside a reason", sam, "application/json", `{"reason":"r","force":true}`, w.admin, 400, "invalid"},
		{"a form body", sam, "application/x-www-form-urlencoded", "reason=r", w.admin, 400, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, typ := lift(tc.c, tc.id, tc.ct, tc.body)
			if st != tc.status || (tc.want != "" && typ != tc.want) {
				t.Fatalf("got %d %q, want %d %s", st, typ, tc.status, tc.want)
			}
		})
	}
	var qs struct{ Quarantines []guard.Quarantine }
	must(t, w.admin.JSON(ctx, "GET", "/v1/quarantines", "", nil, &qs))
	for _, q := range qs.Quarantines {
		if q.ID == "principal:admin2" {
			continue
		}
		if q.Status != guard.StatusActive || len(q.Lifts) != 0 {
			t.Fatalf("a refused lift changed %s: %+v", q.ID, q)
		}
	}
	// Control: the org's admin lifts sam's quarantines with a reason; sam
	// reads again (a record, not a decoy).
	if st, typ := lift(w.admin, sam, "application/json", ok); st != http.StatusOK {
		t.Fatalf("the admin's lift: %d %s", st, typ)
	}
	if st, typ := lift(w.admin, "device:"+w.agent.Key.Thumbprint(), "application/json", ok); st != http.StatusOK {
		t.Fatalf("the admin's lift of sam's device: %d %s", st, typ)
	}
	w.clk.Advance(2 * time.Second)
	w.agent.SetToken("", time.Time{})
	if _, err := w.read(w.agent, w.ids[0]); err != nil {
		t.Fatalf("sam after the lift: %v", err)
	}
}

// TestGrantUsageOrgIsolation: GET /v1/grants/usage answers each admin the
// grants of its own org only (as grantor or grantee): another org's
// admin asking for the operator's or a third org's grants is refused
// org-scope-forbidden, sees none of the third org's grants and none of
// their reads; a member is refused. Control: the root admin sees both
// grants, each org's admin its own with its reads counted.
func TestGrantUsageOrgIsolation(t *testing.T) {
	w := newGuardWorld(t, 30)
	ctx := context.Background()
	for _, o := range []string{"affiliate", "subcontractor"} {
		must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": o, "home_region": "jp"}, nil))
	}
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	subAdmin := w.principal(w.admin, w.admin, "sub-admin", "subcontractor", "admin")
	bob := w.principal(affAdmin, affAdmin, "bob", "affiliate", "member")
	eve := w.principal(subAdmin, subAdmin, "eve", "subcontractor", "member")
	grant := func(org string) string {
		var g struct{ ID string }
		must(t, w.admin.JSON(ctx, "POST", "/v1/grants", "", map[string]any{"grantee_org": org, "collections": []string{"users"},
			"fields": []string{"display_name"}, "regions": []string{"jp"}, "purposes": []string{"support"}, "actions": []string{"read"},
			"expires": w.clk.Now().Add(24 * time.Hour).Format(time.RFC3339)}, &g))
		return g.ID
	}
	gAff, gSub := grant("affiliate"), grant("subcontractor")
	recs, err := w.store.GetRecords(ctx, "users", w.ids)
	must(t, err)
	jp := ""
	for _, r := range recs {
		if r.Region == "jp" {
			jp = r.ID
		}
	}
	for _, c := range []*client.Client{bob, eve} {
		must(t, c.JSON(ctx, "GET", "/v1/collections/users/records/"+jp+"?fields=display_name", "support", nil, nil))
	}
	usage := func(c *client.Client, query string) (map[string]int64, error) {
		var rep struct {
			Grants []struct {
				ID    string `json:"id"`
				Reads int64  `json:"reads"`
			} `json:"grants"`
		}
		err := c.JSON(ctx, "GET", "/v1/grants/usage"+query, "", nil, &rep)
		m := map[string]int64{}
		for _, g := range rep.Grants {
			m[g.ID] = g.Reads
		}
		return m, err
	}
	for _, tc := range []struct {
		name    string
		c       *client.Client
		query   string
		want    map[string]int64 // nil: refused with refusal
		refusal string
	}{
		{"control: the root admin", w.admin, "", map[string]int64{gAff: 1, gSub: 1}, ""},
		{"control: the affiliate's admin", affAdmin, "", map[string]int64{gAff: 1}, ""},
		{"control: the subcontractor's admin", subAdmin, "", map[string]int64{gSub: 1}, ""},
		{"the affiliate's admin asks for the subcontractor's", affAdmin, "?org=subcontractor", nil, "org-scope-forbidden"},
		{"the affiliate's admin asks for the operator's", affAdmin, "?org=operator", nil, "org-scope-forbidden"},
		{"a member", bob, "", nil, "admin-required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := usage(tc.c, tc.query)
			if tc.want == nil {
				refused(t, err, tc.refusal)
				return
			}
			must(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("grants %v, want %v", got, tc.want)
			}
			for id, n := range tc.want {
				if r, ok := got[id]; !ok || r != n {
					t.Fatalf("grants %v, want %v", got, tc.want)
				}
			}
		})
	}
}
