package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/regions"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

// newRegionalServer serves a vault over a default store and a store each
// for jp and th, each with its own audit log.
func newRegionalServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	open := func(name string) sekisho.Store {
		s, err := sqlite.Open(ctx, filepath.Join(dir, name+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	def, jp, th := open("default"), open("jp"), open("th")
	master, _ := keys.NewKey()
	kr, err := keys.OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, audit.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	newLog := func(s sekisho.Store, origin string) *audit.Log {
		l, err := audit.New(ctx, s, signer, audit.Options{Origin: origin})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	logs, err := audit.NewLogs(newLog(def, "example.test/sekisho"), map[string]*audit.Log{
		"jp": newLog(jp, "example.test/sekisho/jp"), "th": newLog(th, "example.test/sekisho/th")})
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(regions.NewRouter(def, map[string]sekisho.Store{"jp": jp, "th": th}), kr, logs, vault.Options{})
	defs, _ := schemas.Defaults()
	if err := v.EnsureSchemas(ctx, defs); err != nil {
		t.Fatal(err)
	}
	srv := httpapi.New(httpapi.Config{Vault: v, AuditLogs: logs,
		Auth: httpapi.NewTokenAuth(token, sekisho.Caller{Principal: "admin", Org: "operator", Device: "bootstrap", Roles: []string{"admin", "auditor"}})})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

// GET /v1/audit/*?region= answers from that region's log; region=all pages
// over every log; an unknown region is 404, not another log's answer.
func TestAuditAPIPerRegion(t *testing.T) {
	ts := newRegionalServer(t)
	for _, reg := range []string{"jp", "jp", "th"} {
		if r := do(t, ts, "POST", "/v1/collections/users/records", `{"region":"`+reg+`","fields":{"display_name":"x"}}`); r.status != 201 {
			t.Fatalf("create in %s: %d %s", reg, r.status, r.raw)
		}
	}
	for reg, want := range map[string]string{"jp": "example.test/sekisho/jp\n2\n", "th": "example.test/sekisho/th\n1\n", "default": "example.test/sekisho\n0\n", "": "example.test/sekisho\n0\n"} {
		r := do(t, ts, "GET", "/v1/audit/checkpoint?region="+reg, "")
		if r.status != 200 || len(r.raw) < len(want) || r.raw[:len(want)] != want {
			t.Errorf("checkpoint of %q: %d %q, want it to start %q", reg, r.status, r.raw, want)
		}
	}
	if r := do(t, ts, "GET", "/v1/audit/checkpoint?region=tw", ""); r.status != 404 {
		t.Errorf("checkpoint of a region without a log: %d %s, want 404", r.status, r.raw)
	}
	if r := do(t, ts, "GET", "/v1/audit/proof/inclusion?region=jp&index=1&size=2", ""); r.status != 200 {
		t.Errorf("inclusion proof in jp: %d %s", r.status, r.raw)
	}
	if r := do(t, ts, "GET", "/v1/audit/proof/inclusion?region=th&index=1&size=2", ""); r.status == 200 {
		t.Errorf("inclusion proof of index 1 in th (size 1) answered: %s", r.raw)
	}
	if r := do(t, ts, "GET", "/v1/audit/events?region=jp", ""); r.status != 200 || len(r.body["events"].([]any)) != 2 {
		t.Errorf("events of jp: %d %s", r.status, r.raw)
	}
	// region=all, two a page: default has none; jp 0,1; th 0.
	var got []string
	path := "/v1/audit/events?region=all&limit=2"
	for range 5 {
		r := do(t, ts, "GET", path, "")
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
		for _, e := range r.body["events"].([]any) {
			m := e.(map[string]any)
			got = append(got, fmt.Sprintf("%s:%v", m["region"], m["index"]))
		}
		next, ok := r.body["next"]
		if !ok {
			break
		}
		path = fmt.Sprintf("/v1/audit/events?region=all&limit=2&from=%v&from_region=%v", next, r.body["next_region"])
	}
	if fmt.Sprint(got) != "[jp:0 jp:1 th:0]" {
		t.Errorf("region=all pages = %v, want [jp:0 jp:1 th:0]", got)
	}
}

// A create with an idempotency key makes one record: the same key again is
// 409 (the record is there), in whichever region; another key is a new one.
func TestCreateWithKey(t *testing.T) {
	ts := newRegionalServer(t)
	first := do(t, ts, "POST", "/v1/collections/users/records", `{"region":"th","key":"customer-7","fields":{"display_name":"Somchai"}}`)
	if first.status != 201 {
		t.Fatalf("create with a key: %d %s", first.status, first.raw)
	}
	for _, reg := range []string{"th", "jp"} {
		if r := do(t, ts, "POST", "/v1/collections/users/records", `{"region":"`+reg+`","key":"customer-7","fields":{"display_name":"Somchai"}}`); r.status != 409 {
			t.Errorf("the same key again (in %s): %d %s, want 409", reg, r.status, r.raw)
		}
	}
	other := do(t, ts, "POST", "/v1/collections/users/records", `{"region":"th","key":"customer-8","fields":{"display_name":"Somchai"}}`)
	if other.status != 201 || other.body["id"] == first.body["id"] {
		t.Errorf("another key: %d %s (first id %v)", other.status, other.raw, first.body["id"])
	}
}
