package access

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
)

// quotingCases are strings a name could hold if validation ever let it
// through: every C0 and C1 control character, DEL, quotes, backslashes,
// Cedar's own escapes spelled literally, and non-ASCII text.
func quotingCases() []string {
	var out []string
	for r := rune(0); r < 0x20; r++ {
		out = append(out, string(r), "a"+string(r)+"b")
	}
	for r := rune(0x7f); r <= 0x9f; r++ {
		out = append(out, string(r))
	}
	return append(out, `"`, `\`, `\"`, `"\`, `'`, `\u{41}`, `\x41`, `\n`, `*`, `")};permit(principal,action,resource);//`,
		"日本語", "ภาษาไทย", "emoji 😀", "e\u0301", "\u0301", "\u200b", "\u2028\u2029", "\ufeff", "\u202e", "\U0010ffff", "\xff\xfe", "")
}

// TestCedarStringQuoting (issue 13 point 1b): cedarString yields a literal
// that cedar-go parses back to exactly the value, for every control
// character, quotes, backslashes and non-ASCII text, both in a condition
// and in an annotation. Go's %q does not (the old quoting; the control
// shows it fails on a bell).
func TestCedarStringQuoting(t *testing.T) {
	for _, v := range quotingCases() {
		text := fmt.Sprintf("@masked(%s)\npermit (principal, action, resource) when { context.purpose == %s };", cedarString(v), cedarString(v))
		p, err := parsePolicy(text)
		if err != nil {
			t.Fatalf("%+q: %v\n%s", v, err, text)
		}
		want := string([]rune(v)) // invalid UTF-8 reads as U+FFFD (JSON input never holds it)
		if got := string(p.Annotations()["masked"]); got != want {
			t.Fatalf("%+q: annotation reads back as %+q", v, got)
		}
		ps := cedar.NewPolicySet()
		ps.Add("p", p)
		for _, c := range []struct {
			purpose string
			allow   bool
		}{{want, true}, {want + "x", false}} {
			req := cedar.Request{Principal: cedar.NewEntityUID("Principal", "a"), Action: cedar.NewEntityUID("Action", "read"),
				Resource: cedar.NewEntityUID("Collection", "users"), Context: cedar.NewRecord(cedar.RecordMap{"purpose": cedar.String(c.purpose)})}
			if d, _ := cedar.Authorize(ps, cedar.EntityMap{}, req); (d == cedar.Allow) != c.allow {
				t.Fatalf("%+q: purpose %+q decides %v", v, c.purpose, d)
			}
		}
	}
	// Control: the old quoting produced escapes Cedar refuses.
	if _, err := parsePolicy(fmt.Sprintf("permit (principal, action, resource) when { context.purpose == %q };", "a\ab")); err == nil {
		t.Fatal("the bell quoted by Go parsed; the control no longer shows the bug")
	}
}

// TestGrantCedarCompiles: a grant's policy compiles and validates for
// every quoting case in every name (validation refuses such names first;
// this is the second layer).
func TestGrantCedarCompiles(t *testing.T) {
	s, err := New(Config{TokenKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, v := range quotingCases() {
		g := &Grant{ID: "g-" + v, GrantorOrg: "op" + v, GranteeOrg: v, GranteePrincipal: v, Collections: []string{v, "users"},
			Fields: []string{v}, MaskedFields: []string{v}, Regions: []string{v}, Purposes: []string{v}, Actions: []string{"read"},
			NotBefore: now, Expires: now.Add(time.Hour)}
		if _, err := s.compile("grant:"+g.ID, grantCedar(g), ProblemGrantInvalid); err != nil {
			t.Fatalf("%+q: %v\n%s", v, err, grantCedar(g))
		}
	}
	// An action the schema does not know is refused (grant-invalid).
	g := &Grant{ID: "g1", GrantorOrg: "a", GranteeOrg: "b", Collections: []string{"users"}, Regions: []string{"jp"},
		Purposes: []string{"support"}, Actions: []string{"read", "exfiltrate"}, NotBefore: now, Expires: now.Add(time.Hour)}
	if _, err := s.compile("grant:g1", grantCedar(g), ProblemGrantInvalid); err == nil || !strings.Contains(err.Error(), "exfiltrate") {
		t.Fatalf("an unknown action compiled: %v", err)
	}
}

// TestCedarSchemaShipped: the shipped schema file is the embedded one, it
// names exactly the actions grants and policies may use, and the default
// policies validate against it.
func TestCedarSchemaShipped(t *testing.T) {
	b, err := os.ReadFile("sekisho.cedarschema")
	if err != nil || string(b) != string(CedarSchema) {
		t.Fatalf("access/sekisho.cedarschema is not the embedded schema (%v)", err)
	}
	var sc schema.Schema
	if err := sc.UnmarshalCedar(b); err != nil {
		t.Fatal(err)
	}
	r, err := sc.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for uid := range r.Actions {
		acts = append(acts, string(uid.ID))
	}
	slices.Sort(acts)
	want := slices.Sorted(slices.Values(Actions))
	if !slices.Equal(acts, want) {
		t.Fatalf("schema actions %v, Actions %v: add the new action to access/sekisho.cedarschema", acts, want)
	}
	s, err := New(Config{TokenKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range DefaultPolicies {
		if _, err := s.compile(p.ID, p.Cedar, ProblemPolicyInvalid); err != nil {
			t.Fatalf("default policy %s: %v", p.ID, err)
		}
	}
}
