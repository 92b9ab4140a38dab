package access

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

// fuzzService is a Service over a fresh SQLite store with the default
// collections, a bootstrapped admin and a second org "acme".
func fuzzService(f *testing.F) (*Service, sekisho.Caller) {
	f.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, f.TempDir()+"/s.db")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	defs, err := schemas.Defaults()
	if err != nil {
		f.Fatal(err)
	}
	byName := map[string]*sekisho.Schema{}
	for _, s := range defs {
		byName[s.Collection] = s
	}
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	s, err := New(Config{Store: store, TokenKey: bytes.Repeat([]byte{7}, 32), BootstrapToken: "boot",
		Now: func() time.Time { return now },
		Schema: func(_ context.Context, c string) (*sekisho.Schema, error) {
			if sch := byName[c]; sch != nil {
				return sch, nil
			}
			return nil, sekisho.Errorf(sekisho.ENotFound, "collection %s not found", c)
		}})
	if err != nil {
		f.Fatal(err)
	}
	key, err := dpop.GenerateKey("ed25519")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.SpendBootstrap(ctx, sekisho.Caller{}, "boot", Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		f.Fatal(err)
	}
	admin := sekisho.Caller{Principal: "admin", Org: s.RootOrg(), Roles: []string{RoleAdmin}, Purpose: "support"}
	if _, err := s.CreateOrg(ctx, admin, &Org{ID: "acme", HomeRegion: "jp"}); err != nil {
		f.Fatal(err)
	}
	return s, admin
}

// typed fails unless err is a sekisho error with a code (a problem the API
// maps to a status), never a bare error or a panic.
func typed(t *testing.T, what string, err error) {
	t.Helper()
	var se *sekisho.Error
	if !errors.As(err, &se) || sekisho.Code(err) == "" {
		t.Fatalf("%s: error without a problem code: %v", what, err)
	}
}

// errType is the problem type of err ("" when it has none).
func errType(err error) string {
	var se *sekisho.Error
	if errors.As(err, &se) {
		return se.Type
	}
	return ""
}

// FuzzParseToken: any string offered as an access token is refused as
// token-invalid (or accepted only if this service MACed it), and any claims
// payload under a valid MAC decodes or is refused, without a panic.
func FuzzParseToken(f *testing.F) {
	s, _ := fuzzService(f)
	good, _ := s.mintToken(&Device{ID: "dev-1", Principal: "admin", Org: "operator"}, time.Now())
	f.Add(good, []byte(`{"sub":"admin","exp":99999999999}`))
	f.Add("", []byte(``))
	f.Add(tokenHeaderB64+".e30.", []byte(`{"cnf":{"jkt":1}}`))
	f.Add(strings.Repeat("a.", 1100), []byte(`[`))
	f.Fuzz(func(t *testing.T, tok string, claims []byte) {
		e, err := s.parseToken(tok)
		if err != nil {
			if errType(err) != "token-invalid" {
				t.Fatalf("token %q: %v (type %q)", tok, err, errType(err))
			}
		} else if e.ath != dpop.TokenHash(tok) {
			t.Fatalf("token %q parsed with a wrong ath", tok)
		}
		// A payload of our own MAC: the claims decoding itself.
		input := tokenHeaderB64 + "." + b64.EncodeToString(claims)
		signed := input + "." + b64.EncodeToString(s.mac(input))
		if _, err := s.parseToken(signed); err != nil && errType(err) != "token-invalid" {
			t.Fatalf("claims %q: %v", claims, err)
		}
		if _, _, err := s.readToken(signed, time.Unix(1, 0)); err != nil {
			typed(t, "readToken", err)
		}
	})
}

// FuzzParsePolicy: any policy text compiles or is refused as
// policy-invalid; what compiles prints back to Cedar that compiles again.
func FuzzParsePolicy(f *testing.F) {
	s, _ := fuzzService(f)
	for _, p := range DefaultPolicies {
		f.Add(p.Cedar)
	}
	f.Add(`forbid (principal, action, resource) when { context.purpose == "support" };`)
	f.Add(`permit (principal, action, resource); permit (principal, action, resource);`)
	f.Add(`permit (principal == User::"a\"b", action, resource) when { "x" like "*\*" };`)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := s.compile("fuzz", text, ProblemPolicyInvalid)
		if err != nil {
			if errType(err) != ProblemPolicyInvalid || sekisho.Code(err) != sekisho.EInvalid {
				t.Fatalf("policy %q: %v", text, err)
			}
			return
		}
		again := string(p.MarshalCedar())
		if _, err := s.compile("fuzz", again, ProblemPolicyInvalid); err != nil {
			t.Fatalf("policy %q compiled, its printed form %q does not: %v", text, again, err)
		}
	})
}

// FuzzGrantBody: a grant body as the API decodes it (strict JSON) is
// either refused with a typed problem or validated; a validated grant's
// Cedar always compiles, and names nothing but what the grant holds (one
// policy: no text of a body escapes its string literal).
func FuzzGrantBody(f *testing.F) {
	s, _ := fuzzService(f)
	ctx := context.Background()
	f.Add([]byte(`{"grantee_org":"acme","collections":["users"],"fields":["display_name"],"regions":["jp"],"purposes":["support"],"actions":["read"],"expires":"2026-12-10T00:00:00Z","budget_per_hour":30}`))
	f.Add([]byte(`{"grantee_org":"acme","collections":["users"],"regions":["jp"],"purposes":["support\" };permit(principal,action,resource);//"],"actions":["read"],"expires":"2026-12-10T00:00:00Z"}`))
	f.Add([]byte(`{"grantee_org":"acme","grantee_principal":"bob","collections":["users","partners"],"masked_fields":["*"],"regions":["jp","th"],"purposes":["support"],"actions":["read","lookup"],"expires":"2027-12-10T00:00:00Z","budget_total":5}`))
	f.Add([]byte(`{"grantee_org":"operator"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var g Grant
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&g) != nil {
			return // the API refuses it as invalid JSON before access sees it
		}
		g.GrantorOrg = s.RootOrg()
		if err := s.validateGrant(ctx, &g); err != nil {
			typed(t, "validateGrant", err)
			return
		}
		g.ID = "g-fuzz"
		text := grantCedar(&g)
		p, err := s.compile("grant:"+g.ID, text, ProblemGrantInvalid)
		if err != nil {
			// Refused at write, never stored: the property that matters. It
			// must still be the typed problem.
			if errType(err) != ProblemGrantInvalid {
				t.Fatalf("grant %s: %v", body, err)
			}
			return
		}
		if p == nil {
			t.Fatalf("grant %s: compiled to nothing", body)
		}
	})
}
