package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

// jsonList writes what json.Marshal writes, and parseJSONList reads back
// what json.Unmarshal reads, for plain ids (the direct path) and for
// anything that needs escaping or is not ASCII (encoding/json's path).
func TestJSONListAsEncodingJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []string
	}{
		{"nil", nil},
		{"empty", []string{}},
		{"one", []string{"u0123456789abcdef"}},
		{"several", []string{"operator", "jp-tenant", "id.with.dots", "x y"}},
		{"empty string", []string{""}},
		{"empty strings", []string{"", "", "a"}},
		{"comma inside", []string{"a,b", "c"}},
		{"brackets inside", []string{"[a]", "]", "["}},
		{"quote", []string{`a"quoted\id`}},
		{"backslash", []string{`a\b`}},
		{"html", []string{"<script>", "a&b"}},
		{"control", []string{"a\nb", "tab\t"}},
		{"unicode", []string{"東京", "é"}},
		{"invalid utf-8", []string{"a\xffb"}},
		{"mixed", []string{"plain", `q"q`, "plain2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := c.in
			if want == nil {
				want = []string{}
			}
			wb, _ := json.Marshal(want)
			got := jsonList(c.in)
			if got != string(wb) {
				t.Fatalf("jsonList(%q) = %s, json.Marshal writes %s", c.in, got, wb)
			}
			var wantBack []string
			if err := json.Unmarshal(wb, &wantBack); err != nil {
				t.Fatal(err)
			}
			back, err := parseJSONList(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, wantBack) {
				t.Fatalf("parseJSONList(%s) = %#v, json.Unmarshal reads %#v", got, back, wantBack)
			}
		})
	}
}

// Text that is not the plain form is read by encoding/json, errors included.
func TestParseJSONListFallsBack(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{`null`, nil, false},
		{`[ "a" , "b" ]`, []string{"a", "b"}, false},
		{`["a",]`, nil, true},
		{`["a""b"]`, nil, true},
		{`["a`, nil, true},
		{`[1]`, nil, true},
		{`["\u0041"]`, []string{"A"}, false},
		{``, nil, true},
	} {
		got, err := parseJSONList(c.in)
		if (err != nil) != c.wantErr || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseJSONList(%q) = %#v, %v; want %#v, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

// parseJSONList reads any text as json.Unmarshal does (the same list, or an
// error where it errs), and jsonList writes any list as json.Marshal does.
func FuzzParseJSONList(f *testing.F) {
	for _, s := range []string{`[]`, `["a","b"]`, `[""]`, `["a",]`, `["a""b"]`, `null`, `[ "a" ]`, `["\u0041"]`, `["<"]`, `["a\"b"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want []string
		wantErr := json.Unmarshal([]byte(s), &want)
		got, err := parseJSONList(s)
		if (err != nil) != (wantErr != nil) || (err == nil && !reflect.DeepEqual(got, want)) {
			t.Fatalf("parseJSONList(%q) = %#v, %v; json.Unmarshal: %#v, %v", s, got, err, want, wantErr)
		}
		if wantErr == nil && want != nil {
			wb, _ := json.Marshal(want)
			if jl := jsonList(want); jl != string(wb) {
				t.Fatalf("jsonList(%#v) = %s, json.Marshal writes %s", want, jl, wb)
			}
		}
	})
}
