package sso

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/internal/oidctest"
)

var (
	alice = oidctest.Person{ID: "alice", Password: "alice-pw", Email: "alice.smith@example.jp", Groups: []string{"sekisho-admins", "staff"}}
	bob   = oidctest.Person{ID: "bob", Password: "bob-pw", Email: "bob@example.jp", Groups: []string{"staff"}}
)

const testMapping = `
org: operator
groups:
  sekisho-admins: [admin]
  staff: [member]
users:
  - email: bob@example.jp
    principal: robert
`

func mapping(t *testing.T) *Mapping {
	t.Helper()
	m, err := ParseMapping([]byte(testMapping))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// browserGrant runs Login.Browser against op as person, logging in
// through the OP's form the way a browser does, and returns the grant.
func browserGrant(t *testing.T, op *oidctest.OP, clientID string, person oidctest.Person) url.Values {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := &Login{Issuer: op.Issuer, ClientID: clientID}
	errc := make(chan error, 1)
	grant, err := l.Browser(ctx, func(u string) {
		go func() {
			status, body, err := op.LogIn(oidctest.Browser(), u, person.ID, person.Password)
			if err == nil && status != http.StatusOK {
				t.Errorf("login at the OP: HTTP %d %.200s", status, body)
			}
			errc <- err
		}()
	})
	if err != nil {
		t.Fatalf("browser sign-in: %v (%v)", err, <-errc)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return grant
}

// idToken redeems a grant directly (as the client clientID would) and
// returns the raw ID token and the nonce of its authorization request.
func idToken(t *testing.T, op *oidctest.OP, clientID string, person oidctest.Person) (string, string) {
	t.Helper()
	g := browserGrant(t, op, clientID, person)
	l := &Login{Issuer: op.Issuer, ClientID: clientID}
	conf, err := l.config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conf.RedirectURL = g.Get("redirect_uri")
	tok, err := conf.Exchange(context.Background(), g.Get("code"), oauth2.VerifierOption(g.Get("code_verifier")))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token")
	}
	return raw, g.Get("nonce")
}

func problem(err error) string {
	if e, ok := err.(*sekisho.Error); ok {
		return e.Type
	}
	return ""
}

// TestVerifyIDToken: real ID tokens of a real OP; a token of another
// client of the same IdP (aud), of another IdP (iss, keys), with another
// nonce or tampered is refused; the right one verifies (control).
func TestVerifyIDToken(t *testing.T) {
	op := oidctest.Start(t, alice)
	other := oidctest.Start(t, alice)
	ctx := context.Background()
	p, err := New(Config{Issuer: op.Issuer, ClientID: oidctest.ClientID, Mapping: mapping(t)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good, nonce := idToken(t, op, oidctest.ClientID, alice)
	otherAud, otherAudNonce := idToken(t, op, oidctest.OtherClientID, alice)
	otherIdP, otherIdPNonce := idToken(t, other, oidctest.ClientID, alice)
	otherIss, otherIssNonce := idToken(t, op.Twin(t), oidctest.ClientID, alice)
	tampered := good[:len(good)-4] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, good[len(good)-4:])
	for _, tc := range []struct {
		name, raw, nonce string
		want             string // "" verifies; else a part of the refusal
	}{
		{"control: this client's token with its nonce", good, nonce, ""},
		{"another nonce", good, nonce + "x", "nonce"},
		{"no nonce", good, "", "nonce"},
		{"another client's token (aud)", otherAud, otherAudNonce, "audience"},
		{"another IdP's token (its keys)", otherIdP, otherIdPNonce, "signature"},
		{"another issuer, the same keys (iss)", otherIss, otherIssNonce, "issued by a different provider"},
		{"tampered signature", tampered, nonce, "signature"},
		{"not a token", "e30.e30.e30", nonce, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idt, err := p.verify(ctx, d, tc.raw, true, tc.nonce)
			if tc.want == "" {
				if err != nil || idt.Subject != "alice" || idt.Issuer != op.Issuer {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || problem(err) != access.ProblemSignInRefused || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (%s), want a sign-in-refused naming %q", err, problem(err), tc.want)
			}
			if strings.Contains(err.Error(), tc.raw) {
				t.Fatal("the refusal carries the token")
			}
		})
	}
}

// TestSignInAndRefresh: the server side against the real OP. A code is
// redeemed only with its PKCE verifier (the OP checks S256); the person's
// groups give roles; a refresh renews; a person disabled at the IdP is
// refused at the next refresh while another one still refreshes.
func TestSignInAndRefresh(t *testing.T) {
	op := oidctest.Start(t, alice, bob)
	ctx := context.Background()
	p, err := New(Config{Issuer: op.Issuer, ClientID: oidctest.ClientID, Mapping: mapping(t)})
	if err != nil {
		t.Fatal(err)
	}

	g := browserGrant(t, op, oidctest.ClientID, alice)
	bad := url.Values{}
	for k, v := range g {
		bad[k] = v
	}
	bad.Set("code_verifier", oauth2.GenerateVerifier())
	if _, err := p.SignIn(ctx, bad); problem(err) != access.ProblemSignInRefused || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("a code with another PKCE verifier: %v", err)
	}
	g = browserGrant(t, op, oidctest.ClientID, alice)
	a, err := p.SignIn(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if a.Principal != "alice-smith" || a.Org != "operator" || !slices.Equal(a.Roles, []string{"admin", "member"}) || a.Subject != "alice" ||
		a.Issuer != op.Issuer || a.RefreshToken == "" || a.Bind {
		t.Fatalf("alice: %+v", a)
	}
	if _, err := p.SignIn(ctx, g); err == nil {
		t.Fatal("a code redeemed twice")
	}
	b, err := p.SignIn(ctx, browserGrant(t, op, oidctest.ClientID, bob))
	if err != nil {
		t.Fatal(err)
	}
	if b.Principal != "robert" || !b.Bind || !slices.Equal(b.Roles, []string{"member"}) {
		t.Fatalf("bob (listed by email): %+v", b)
	}

	// Refresh: the groups now at the IdP decide the roles.
	op.SetGroups("bob", "staff", "sekisho-admins")
	b2, err := p.Refresh(ctx, b.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if b2.Subject != "bob" || !slices.Equal(b2.Roles, []string{"admin", "member"}) || b2.RefreshToken == "" || b2.RefreshToken == b.RefreshToken {
		t.Fatalf("bob refreshed: %+v", b2)
	}
	op.Disable("bob")
	_, err = p.Refresh(ctx, b2.RefreshToken)
	if problem(err) != access.ProblemSignInRefused || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("disabled bob refreshed: %v", err)
	}
	if strings.Contains(err.Error(), b2.RefreshToken) {
		t.Fatal("the refusal carries the refresh token")
	}
	// Control: alice, not disabled, still refreshes.
	if a2, err := p.Refresh(ctx, a.RefreshToken); err != nil || a2.Subject != "alice" {
		t.Fatalf("alice refreshed: %v", err)
	}
}

// TestBrowserState: the loopback listener answers a redirect with another
// state 400 and goes on waiting; the real one is taken.
func TestBrowserState(t *testing.T) {
	op := oidctest.Start(t, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := &Login{Issuer: op.Issuer, ClientID: oidctest.ClientID}
	forged := make(chan int, 1)
	grant, err := l.Browser(ctx, func(u string) {
		au, _ := url.Parse(u)
		q := au.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Errorf("the authorization request lacks PKCE S256, nonce or state: %s", u)
		}
		go func() {
			resp, err := http.Get(q.Get("redirect_uri") + "?state=forged&code=attacker")
			if err != nil {
				t.Error(err)
				forged <- 0
				return
			}
			resp.Body.Close()
			forged <- resp.StatusCode
			if _, _, err := op.LogIn(oidctest.Browser(), u, alice.ID, alice.Password); err != nil {
				t.Error(err)
			}
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := <-forged; s != http.StatusBadRequest {
		t.Fatalf("forged state: HTTP %d", s)
	}
	if grant.Get("code") == "attacker" || grant.Get("code") == "" || len(grant.Get("code_verifier")) < 43 {
		t.Fatalf("grant: %v", grant)
	}
}

func TestMapping(t *testing.T) {
	m := mapping(t)
	for _, tc := range []struct {
		name      string
		c         Claims
		principal string
		roles     []string
		explicit  bool
		err       string
	}{
		{"email local part", Claims{Subject: "s1", Email: "Carol.Ng@Example.jp", EmailVerified: true, Groups: []string{"staff"}}, "carol-ng", []string{"member"}, false, ""},
		{"unverified email", Claims{Subject: "s1", Email: "carol@example.jp", Groups: []string{"staff"}}, "", nil, false, "no verified email"},
		{"listed by verified email", Claims{Subject: "s2", Email: "BOB@example.jp", EmailVerified: true}, "robert", nil, true, ""},
		{"listed email, unverified: not bob", Claims{Subject: "s2", Email: "bob@example.jp"}, "", nil, false, "no verified email"},
		{"unknown groups give no role", Claims{Subject: "s3", Email: "dan@example.jp", EmailVerified: true, Groups: []string{"finance"}}, "dan", nil, false, ""},
		{"no usable id", Claims{Subject: "s4", Email: "1234@example.jp", EmailVerified: true}, "", nil, false, "no valid principal id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, org, roles, explicit, err := m.Map(tc.c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || p != tc.principal || org != "operator" || !slices.Equal(roles, tc.roles) || explicit != tc.explicit {
				t.Fatalf("got %s %s %v %v %v", p, org, roles, explicit, err)
			}
		})
	}
	// email_domains: a derived principal needs a verified email in one of
	// them (a guest alice@other.example is not alice); users entries are
	// not concerned. Controls: the listed domain, any case.
	dm, err := ParseMapping([]byte(testMapping + "email_domains: ['@Example.JP']\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, email string
		verified    bool
		principal   string // "" refused
	}{
		{"control: the domain", "alice@example.jp", true, "alice"},
		{"control: the domain, upper case", "Alice@EXAMPLE.JP", true, "alice"},
		{"a guest of another domain", "alice@other.example", false, ""},
		{"a guest of another domain, verified", "alice@other.example", true, ""},
		{"a subdomain", "alice@evil.example.jp", true, ""},
		{"the domain, unverified", "alice@example.jp", false, ""},
		{"control: listed under users by email", "bob@example.jp", true, "robert"},
	} {
		p, _, _, _, err := dm.Map(Claims{Subject: "s-" + tc.email, Email: tc.email, EmailVerified: tc.verified, Groups: []string{"staff"}})
		if tc.principal == "" {
			if err == nil || !strings.Contains(err.Error(), "email_domains") {
				t.Errorf("%s: %s %v, want refused", tc.name, p, err)
			}
		} else if err != nil || p != tc.principal {
			t.Errorf("%s: %s %v, want %s", tc.name, p, err, tc.principal)
		}
	}
	for _, bad := range []string{
		"org: operator\nemail_domains: ['']",
		"org: operator\nemail_domains: ['a@b.jp']",
		"org: operator\ngroups: {x: [root]}",
		"org: operator\nusers: [{principal: a}]",
		"org: operator\nusers: [{subject: s, email: e, principal: a}]",
		"users: [{subject: s, principal: a}]",
		"org: operator\nprincipal_claim: phone",
		"org: operator\nscopes: [email]",
		"org: operator\nunknown_key: 1",
	} {
		if _, err := ParseMapping([]byte(bad)); err == nil {
			t.Errorf("mapping accepted: %q", bad)
		}
	}
}

// TestDeviceFlow: a device code polled before the person approved it is
// authorization-pending (relayed from the IdP); once approved at the OP's
// device pages it signs in; an unknown device code is refused, a denied
// one is access-denied.
func TestDeviceFlow(t *testing.T) {
	op := oidctest.Start(t, alice)
	ctx := context.Background()
	p, err := New(Config{Issuer: op.Issuer, ClientID: oidctest.ClientID, Mapping: mapping(t)})
	if err != nil {
		t.Fatal(err)
	}
	l := &Login{Issuer: op.Issuer, ClientID: oidctest.ClientID}
	da, grant, err := l.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if da.UserCode == "" || da.VerificationURI == "" || grant.Get("grant_type") != GrantDeviceCode || grant.Get("device_code") != da.DeviceCode {
		t.Fatalf("device authorization: %+v %v", da, grant)
	}
	if _, err := p.SignIn(ctx, grant); problem(err) != access.ProblemAuthorizationPending {
		t.Fatalf("before approval: %v", err)
	}
	unknown := url.Values{"grant_type": {GrantDeviceCode}, "device_code": {"not-a-device-code"}}
	if _, err := p.SignIn(ctx, unknown); err == nil || problem(err) == access.ProblemAuthorizationPending {
		t.Fatalf("unknown device code: %v", err)
	}
	if err := op.ApproveDevice(oidctest.Browser(), da.UserCode, alice.ID, alice.Password); err != nil {
		t.Fatal(err)
	}
	id, err := p.SignIn(ctx, grant)
	if err != nil || id.Subject != "alice" || id.RefreshToken == "" || !slices.Equal(id.Roles, []string{"admin", "member"}) {
		t.Fatalf("after approval: %+v %v", id, err)
	}
	// A code the person denies at the IdP is access-denied.
	da, grant, err = l.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := op.DenyDevice(oidctest.Browser(), da.UserCode, alice.ID, alice.Password); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SignIn(ctx, grant); problem(err) != access.ProblemAccessDenied {
		t.Fatalf("denied: %v", err)
	}
}
