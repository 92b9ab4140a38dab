package httpapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestIncidentScopeAndReports(t *testing.T) {
	ts := newServer(t)
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	var ids []string
	for i, region := range []string{"jp", "jp", "th"} {
		r := do(t, ts, "POST", "/v1/collections/users/records", fmt.Sprintf(`{"region":%q,"fields":{"display_name":"User %d","email":"u%d@example.com"}}`, region, i, i))
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		ids = append(ids, r.body["id"].(string))
	}
	// Two records read with values, one only touched by an ids-only lookup.
	for _, id := range ids[:2] {
		if r := do(t, ts, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", ""); r.status != 200 {
			t.Fatalf("read: %d %s", r.status, r.raw)
		}
	}
	if r := do(t, ts, "POST", "/v1/collections/users/lookup", `{"field":"email","value":"u2@example.com"}`); r.status != 200 {
		t.Fatalf("lookup: %d %s", r.status, r.raw)
	}
	until := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)

	for _, bad := range []string{`{}`, `{"principals":["admin"],"since":"` + until + `","until":"` + since + `"}`, `{"principals":["admin"],"since":"x"}`, `{"principals":["admin"],"since":"` + since + `","until":"` + until + `","extra":1}`} {
		if r := do(t, ts, "POST", "/v1/incidents", bad); r.status != 400 {
			t.Errorf("POST /v1/incidents %s: %d, want 400", bad, r.status)
		}
	}
	r := do(t, ts, "POST", "/v1/incidents", `{"principals":["admin"],"since":"`+since+`","until":"`+until+`","cause":"unauthorized-access"}`)
	if r.status != 201 {
		t.Fatalf("POST /v1/incidents: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	sc := do(t, ts, "GET", "/v1/incidents/"+id+"/scope", "")
	if sc.status != 200 || sc.body["subjects_exposed"] != float64(2) || sc.body["subjects_possible"] != float64(1) || sc.body["fields_exposed"] != float64(2) {
		t.Fatalf("scope: %d %s", sc.status, sc.raw)
	}
	if jp := sc.body["by_region"].(map[string]any)["jp"].(map[string]any); jp["subjects_exposed"] != float64(2) || jp["country"] != "JP" {
		t.Errorf("by_region jp: %v", jp)
	}
	csv := do(t, ts, "GET", "/v1/incidents/"+id+"/scope?format=subjects&region=th", "")
	if csv.status != 200 || !strings.Contains(csv.raw, ids[2]) || strings.Contains(csv.raw, ids[0]) || !strings.Contains(csv.raw, ",possible,") {
		t.Errorf("subjects csv for th: %d %s", csv.status, csv.raw)
	}
	if r := do(t, ts, "GET", "/v1/incidents/"+id+"/scope?format=xml", ""); r.status != 400 {
		t.Errorf("format xml: %d", r.status)
	}
	md := do(t, ts, "GET", "/v1/incidents/"+id+"/report/appi?lang=en", "")
	if md.status != 200 || !strings.Contains(md.raw, "the cause is unauthorized access") || !strings.HasPrefix(md.header.Get("Content-Type"), "text/markdown") {
		t.Errorf("appi md: %d %s", md.status, md.raw)
	}
	pdf := do(t, ts, "GET", "/v1/incidents/"+id+"/report/gdpr?format=pdf", "")
	if pdf.status != 200 || !strings.HasPrefix(pdf.raw, "%PDF") {
		t.Errorf("gdpr pdf: %d %.20q", pdf.status, pdf.raw)
	}
	if r := do(t, ts, "GET", "/v1/incidents/"+id+"/report/progress?format=json", ""); r.status != 200 || r.body["kind"] != "progress" {
		t.Errorf("progress: %d %s", r.status, r.raw)
	}
	if r := do(t, ts, "GET", "/v1/incidents/"+id+"/report/nope", ""); r.status != 400 {
		t.Errorf("unknown kind: %d", r.status)
	}
	if r := do(t, ts, "GET", "/v1/incidents/inc-0000/scope", ""); r.status != 404 {
		t.Errorf("unknown incident: %d", r.status)
	}
}
