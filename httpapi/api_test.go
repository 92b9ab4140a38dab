package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

const token = "test-bootstrap-token"

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	return newServerAs(t, sekisho.Caller{Principal: "admin", Org: "operator", Device: "bootstrap", Roles: []string{"admin", "auditor"}})
}

func newServerAs(t *testing.T, caller sekisho.Caller) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	master, _ := keys.NewKey()
	kr, err := keys.OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, audit.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(ctx, store, signer, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(store, kr, log, vault.Options{})
	defs, _ := schemas.Defaults()
	if err := v.EnsureSchemas(ctx, defs); err != nil {
		t.Fatal(err)
	}
	srv := httpapi.New(httpapi.Config{Vault: v, AuditLog: log,
		Auth: httpapi.NewTokenAuth(token, caller)})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); log.Close(); store.Close() })
	return ts
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, ts *httptest.Server, method, path, body string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Sekisho-Purpose", "support")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	json.Unmarshal(b, &r.body)
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	return r
}

func TestRecordLifecycleOverHTTP(t *testing.T) {
	ts := newServer(t)
	r := do(t, ts, "POST", "/v1/collections/users/records", `{"region":"jp","fields":{"display_name":"Sakura Tanaka","phone":"090-1234-5678","email":"sakura@example.jp"}}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id := r.body["id"].(string)
	r = do(t, ts, "GET", "/v1/collections/users/records/"+id+"?fields=phone,email", "")
	if r.status != 200 || r.body["fields"].(map[string]any)["phone"] != "+819012345678" {
		t.Fatalf("read: %d %s", r.status, r.raw)
	}
	r = do(t, ts, "POST", "/v1/collections/users/lookup", `{"field":"email","value":"Sakura@Example.jp"}`)
	if recs := r.body["records"].([]any); r.status != 200 || len(recs) != 1 {
		t.Fatalf("lookup: %d %s", r.status, r.raw)
	}
	r = do(t, ts, "POST", "/v1/collections/users/records:batchGet", `{"ids":["`+id+`"],"fields":["display_name"]}`)
	if recs := r.body["records"].([]any); r.status != 200 || len(recs) != 1 {
		t.Fatalf("batchGet: %d %s", r.status, r.raw)
	}
	r = do(t, ts, "PATCH", "/v1/collections/users/records/"+id, `{"fields":{"display_name":"Sakura Sato"}}`)
	if r.status != 200 || r.body["version"].(float64) != 2 {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	if r = do(t, ts, "DELETE", "/v1/collections/users/records/"+id, ""); r.status != 204 {
		t.Fatalf("erase: %d %s", r.status, r.raw)
	}
	if r = do(t, ts, "GET", "/v1/collections/users/records/"+id, ""); r.status != 410 {
		t.Fatalf("read after erase: %d %s", r.status, r.raw)
	}
	// Every one of those decisions is in the audit log, found by request id.
	r = do(t, ts, "GET", "/v1/audit/events?limit=1000", "")
	if evs := r.body["events"].([]any); len(evs) < 7 {
		t.Fatalf("audit has %d events, want at least 7", len(evs))
	}
}

func TestProblems(t *testing.T) {
	ts := newServer(t)
	tests := []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		typ                      string
	}{
		{"no credential", "GET", "/v1/collections", "", []string{"Authorization", ""}, 401, "credential-missing"},
		{"wrong credential", "GET", "/v1/collections", "", []string{"Authorization", "Bearer nope"}, 401, "credential-invalid"},
		{"no purpose", "POST", "/v1/collections/users/records", `{"region":"jp","fields":{"country":"JP"}}`, []string{"Sekisho-Purpose", ""}, 400, "purpose-required"},
		{"bad purpose", "POST", "/v1/collections/users/records", `{"region":"jp","fields":{"country":"JP"}}`, []string{"Sekisho-Purpose", "Bad Purpose!"}, 400, "purpose-unknown"},
		{"unknown collection", "POST", "/v1/collections/nope/records", `{"region":"jp","fields":{"a":"b"}}`, nil, 404, "not-found"},
		{"invalid phone", "POST", "/v1/collections/users/records", `{"region":"jp","fields":{"phone":"12"}}`, nil, 400, "invalid"},
		{"unknown field", "POST", "/v1/collections/users/records", `{"region":"jp","fields":{"shoe_size":"12"}}`, nil, 400, "invalid"},
		{"bad region", "POST", "/v1/collections/users/records", `{"region":"Japan","fields":{"country":"JP"}}`, nil, 400, "region-unknown"},
		{"not json", "POST", "/v1/collections/users/records", `region=jp`, nil, 400, "invalid"},
		{"form content type", "POST", "/v1/collections/users/records", `{}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported"},
		{"too large", "POST", "/v1/collections/users/records", `{"region":"jp","fields":{"display_name":"` + strings.Repeat("a", 2<<20) + `"}}`, nil, 413, "too-large"},
		{"bad id", "GET", "/v1/collections/users/records/1", "", nil, 400, "invalid"},
		{"missing record", "GET", "/v1/collections/users/records/aaaaaaaaaaaaaaaaaaaaaaaaaa", "", nil, 404, "not-found"},
		{"batch too large", "POST", "/v1/collections/users/records:batchGet", `{"ids":[` + strings.Repeat(`"aaaaaaaaaaaaaaaaaaaaaaaaaa",`, 1000) + `"aaaaaaaaaaaaaaaaaaaaaaaaaa"]}`, nil, 413, "too-large"},
		{"lookup non-lookup field", "POST", "/v1/collections/users/lookup", `{"field":"gender","value":"x"}`, nil, 400, "invalid"},
		{"no route", "GET", "/v2/anything", "", nil, 404, "route-not-found"},
		{"wrong method", "PUT", "/v1/collections/users/lookup", "", nil, 405, "method-not-allowed"},
		{"bad proof params", "GET", "/v1/audit/proof/inclusion?index=x&size=1", "", nil, 400, "invalid"},
		{"bad event time", "GET", "/v1/audit/events?since=yesterday", "", nil, 400, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, ts, tc.method, tc.path, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			if got := r.body["type"]; got != httpapi.ProblemBase+tc.typ {
				t.Fatalf("type %v, want %s", got, httpapi.ProblemBase+tc.typ)
			}
			if r.body["request_id"] != r.header.Get("X-Request-Id") {
				t.Fatalf("problem request_id %v != header %s", r.body["request_id"], r.header.Get("X-Request-Id"))
			}
		})
	}
}

// The OpenAPI document and the routes the server really serves are the
// same set of (method, path): a route missing from either side fails.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	ts := newServer(t)
	r := do(t, ts, "GET", "/openapi.json", "")
	if r.status != 200 || r.body["openapi"] != "3.1.0" {
		t.Fatalf("openapi.json: %d", r.status)
	}
	var documented []string
	for path, item := range r.body["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	// The document names path parameters for generated clients ({collection});
	// the mux's names ({c}) are its own: compare the shapes.
	params := regexp.MustCompile(`\{[^}]*\}`)
	for i := range documented {
		documented[i] = params.ReplaceAllString(documented[i], "{}")
	}
	sort.Strings(documented)
	served := httpapi.Routes()
	for i := range served {
		served[i] = params.ReplaceAllString(served[i], "{}")
	}
	sort.Strings(served)
	if strings.Join(documented, "\n") != strings.Join(served, "\n") {
		t.Fatalf("openapi.json and the routes differ:\ndocumented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
	// Every documented operation is answered by its route, not by the
	// not-found or method-not-allowed fallback.
	for _, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.Replace(path, "{}", "users", 1)
		path = strings.ReplaceAll(path, "{}", "aaaaaaaaaaaaaaaaaaaaaaaaaa")
		got := do(t, ts, method, path, "{}")
		if typ, _ := got.body["type"].(string); strings.HasSuffix(typ, "route-not-found") || strings.HasSuffix(typ, "method-not-allowed") {
			t.Errorf("%s is documented but not served: %s", op, got.raw)
		}
	}
	// Path parameters and the request schemas the document refers to exist.
	comps := r.body["components"].(map[string]any)["schemas"].(map[string]any)
	for _, name := range []string{"Problem", "Schema", "RecordInput", "Record", "AuditEvent"} {
		if comps[name] == nil {
			t.Errorf("components.schemas.%s missing", name)
		}
	}
}

// Collections are defined by admins only, and every change is audited.
func TestSchemaChangesAreAdminOnlyAndAudited(t *testing.T) {
	schema := `{"collection":"vendors","fields":[{"name":"contact","type":"email","classification":"contact","lookup":true}]}`
	ts := newServer(t)
	if r := do(t, ts, "POST", "/v1/collections", schema); r.status != 201 {
		t.Fatalf("admin create: %d %s", r.status, r.raw)
	}
	changed := strings.Replace(schema, `"contact","lookup"`, `"contact","mask":"email-domain","lookup"`, 1)
	if r := do(t, ts, "PUT", "/v1/collections/vendors", changed); r.status != 200 || r.body["version"].(float64) != 2 {
		t.Fatalf("admin change: %d %s", r.status, r.raw)
	}
	r := do(t, ts, "GET", "/v1/audit/events?limit=100", "")
	n := 0
	for _, e := range r.body["events"].([]any) {
		if ev := e.(map[string]any)["event"].(map[string]any); ev["action"] == "schema.put" && ev["decision"] == "allow" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d allowed schema.put events, want 2", n)
	}

	member := newServerAs(t, sekisho.Caller{Principal: "sam", Org: "operator", Device: "d", Roles: []string{"support"}})
	if r := do(t, member, "PUT", "/v1/collections/users", schema); r.status != 403 || r.body["type"] != httpapi.ProblemBase+"admin-required" {
		t.Fatalf("support changing a schema: %d %s", r.status, r.raw)
	}
}

// Unauthenticated failures are audited, but at most a bounded number per
// source a minute: anyone can send them, and the signed log must not be
// flooded by them. Path values chosen by the sender are not recorded.
func TestUnauthenticatedFailuresCannotFloodTheLog(t *testing.T) {
	ts := newServer(t)
	for i := 0; i < 200; i++ {
		do(t, ts, "GET", "/v1/collections/users/records/aaaaaaaaaaaaaaaaaaaaaaaaaa", "", "Authorization", "")
	}
	r := do(t, ts, "GET", "/v1/audit/events?limit=1000", "")
	n := 0
	for _, e := range r.body["events"].([]any) {
		ev := e.(map[string]any)["event"].(map[string]any)
		if ev["action"] != "authenticate" {
			continue
		}
		n++
		if recs := ev["records"].([]any); len(recs) != 0 || ev["collection"] != "" {
			t.Fatalf("an unauthenticated failure recorded sender-chosen path values: %v", ev)
		}
	}
	// 20 a minute; a minute boundary during the loop allows 20 more.
	if n < 1 || n > 40 {
		t.Fatalf("%d authentication failures recorded for 200 requests, want 1..40", n)
	}
}
