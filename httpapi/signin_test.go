package httpapi_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/client"
)

// stubIdP is an identity provider whose answers the test chooses: the
// grant's code names the identity it vouches for (the IdP's answer after
// the mapping; package sso's own tests run the real OIDC exchange). What
// is attacked here is what sekisho does with the answer.
type stubIdP struct {
	mu  sync.Mutex
	ids map[string]access.Identity
}

func (s *stubIdP) SignIn(_ context.Context, grant url.Values) (*access.Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.ids[grant.Get("code")]
	if !ok {
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, access.ProblemSignInRefused, "unknown code")
	}
	return &id, nil
}
func (s *stubIdP) Refresh(context.Context, string) (*access.Identity, error) {
	return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, access.ProblemSignInRefused, "no refresh here")
}
func (s *stubIdP) Issuer() string   { return stubIssuer }
func (s *stubIdP) ClientID() string { return "sekisho" }
func (s *stubIdP) Scopes() []string { return []string{"openid"} }

const stubIssuer = "https://idp.example.jp"

// TestSignInMappingAttacks: an identity the IdP vouches for, mapped to a
// principal, org and roles, may not take over a principal that is not
// its own or reach another org: the root admin by a derived name, an
// existing principal of another org named in users (bind), a principal
// bound to another subject or to the same subject at another issuer, a
// device key of another principal, an org that does not exist, an unknown
// role, no role, a principal id that is not one. Each refusal leaves the
// principal as it was. Control: a new person signs in with the mapped org
// and roles, and again with the same key.
func TestSignInMappingAttacks(t *testing.T) {
	e := newEnv(t)
	idp := &stubIdP{ids: map[string]access.Identity{}}
	e.srv, e.acc = e.nodeWith(func(c *access.Config) { c.IdentityProvider = idp })
	ctx := context.Background()
	w := &world{env: e}
	w.admin = e.client(e.srv)
	_, err := w.admin.Bootstrap(ctx, bootToken, "admin", "admin's laptop")
	must(t, err)
	must(t, w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil))
	w.affAdmin = e.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	w.bob = e.principal(w.affAdmin, w.affAdmin, "bob", "affiliate", "member")

	id := func(sub, principal, org string, bind bool, roles ...string) access.Identity {
		return access.Identity{Issuer: stubIssuer, Subject: sub, Principal: principal, Org: org, Roles: roles, Bind: bind}
	}
	otherIss := id("s-carol", "carol", "affiliate", true, "admin")
	otherIss.Issuer = "https://other-idp.example"
	idp.ids = map[string]access.Identity{
		"carol":            id("s-carol", "carol", "affiliate", false, "member"),
		"root-by-name":     id("s-x", "admin", "operator", false, "admin"),
		"bob-cross-org":    id("s-bob", "bob", "operator", true, "admin"),
		"carol-other-sub":  id("s-mallory", "carol", "affiliate", true, "admin"),
		"carol-other-iss":  otherIss,
		"ghost-org":        id("s-g", "ghost", "ghost-org", false, "member"),
		"unknown-role":     id("s-u", "ulrich", "affiliate", false, "superuser"),
		"no-role":          id("s-n", "nora", "affiliate", false),
		"bad-principal-id": id("s-b", "../admin", "affiliate", false, "member"),
	}
	signIn := func(c *client.Client, code string) (*client.Token, error) {
		return c.SignIn(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	}
	type principal struct {
		ID       string               `json:"id"`
		Org      string               `json:"org"`
		Roles    []string             `json:"roles"`
		Identity *access.IdentityLink `json:"identity"`
	}
	get := func(id string) principal {
		var p principal
		must(t, w.admin.JSON(ctx, "GET", "/v1/principals/"+id, "", nil, &p))
		return p
	}

	// Control: carol, new, signs in to affiliate as a member.
	carol := e.client(e.srv)
	tok, err := signIn(carol, "carol")
	must(t, err)
	if tok.Principal != "carol" || tok.Org != "affiliate" {
		t.Fatalf("carol: %+v", tok)
	}
	if p := get("carol"); p.Identity == nil || p.Identity.Subject != "s-carol" || len(p.Roles) != 1 || p.Roles[0] != "member" {
		t.Fatalf("carol's principal: %+v", p)
	}
	adminBefore, bobBefore := get("admin"), get("bob")

	for _, tc := range []struct {
		name, code string
		key        *client.Client // nil: a new key
		want       string
	}{
		{"the root admin by a derived name", "root-by-name", nil, access.ProblemSignInConflict},
		{"another org's principal named in users", "bob-cross-org", nil, access.ProblemSignInConflict},
		{"a principal bound to another subject", "carol-other-sub", nil, access.ProblemSignInConflict},
		{"the same subject at another issuer", "carol-other-iss", nil, access.ProblemSignInConflict},
		{"an org that does not exist", "ghost-org", nil, access.ProblemSignInUnmapped},
		{"an unknown role", "unknown-role", nil, access.ProblemSignInUnmapped},
		{"no role", "no-role", nil, access.ProblemSignInUnmapped},
		{"not a principal id", "bad-principal-id", nil, access.ProblemSignInUnmapped},
		{"bob's device key, signing in as carol", "carol", w.bob, "device-key-known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.key
			if c == nil {
				c = e.client(e.srv)
			}
			tok, err := signIn(c, tc.code)
			if got := client.ProblemType(err); got != tc.want {
				t.Fatalf("got %v (%q) %+v, want %s", err, got, tok, tc.want)
			}
		})
	}
	// Nothing changed on the principals refused.
	if p := get("bob"); p.Identity != nil || len(p.Roles) != len(bobBefore.Roles) || p.Roles[0] != "member" || p.Org != "affiliate" {
		t.Fatalf("bob after the refusals: %+v", p)
	}
	if p := get("carol"); p.Identity == nil || p.Identity.Subject != "s-carol" || p.Identity.Issuer != stubIssuer || len(p.Roles) != 1 || p.Roles[0] != "member" {
		t.Fatalf("carol after the refusals: %+v", p)
	}
	if p := get("admin"); p.Identity != nil || strings.Join(p.Roles, ",") != strings.Join(adminBefore.Roles, ",") {
		t.Fatalf("the root admin after the refusals: %+v (was %+v)", p, adminBefore)
	}
	for _, id := range []string{"ghost", "ulrich", "nora"} {
		var p principal
		if err := w.admin.JSON(ctx, "GET", "/v1/principals/"+id, "", nil, &p); client.ProblemType(err) != "not-found" {
			t.Fatalf("%s was created: %v %+v", id, err, p)
		}
	}
	// bob's device is still his and works (control for the key row).
	must(t, w.bob.JSON(ctx, "GET", "/v1/whoami", "", nil, nil))
	// carol signs in again with her key: the same device.
	tok2, err := signIn(carol, "carol")
	must(t, err)
	if tok2.Device != tok.Device {
		t.Fatalf("carol's device changed: %s, was %s", tok2.Device, tok.Device)
	}
}
