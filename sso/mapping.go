// Package sso is single sign-on for people through the company's OpenID
// Connect identity provider: the server side redeems the IdP's grants and
// renews sessions (Provider, an access.IdentityProvider), the mapping
// turns the IdP's subject, email and groups into a principal, an org and
// roles (Mapping), and the client side runs the authorization-code flow
// with PKCE through a loopback redirect, or the device flow (Login).
//
// ID tokens are verified with github.com/coreos/go-oidc (signature by the
// issuer's published keys, iss, aud = the client id, exp) and the nonce of
// the authorization request; the OAuth exchanges use golang.org/x/oauth2.
// No token is ever logged or put into an error.
package sso

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sekisho/sekisho/access"
)

// Mapping says who a person signed in through the IdP is in sekisho
// (serve --oidc-mapping FILE, YAML or JSON):
//
//	org: operator            # the org of people not listed under users
//	email_domains: [example.jp]  # people not listed need a verified email there
//	principal_claim: email   # a person not listed is the local part of this claim
//	groups_claim: groups     # the ID token / userinfo claim that lists the groups
//	groups:                  # IdP group -> sekisho roles
//	  sekisho-admins: [admin]
//	  support-desk: [support]
//	  staff: [member]
//	users:                   # explicit people: subject or email -> principal
//	  - subject: 248289761001
//	    principal: alice
//	  - email: bob@example.jp
//	    principal: bob
//	    org: subcontractor-a
//	    roles: [support]     # besides their groups' roles
type Mapping struct {
	Org string `yaml:"org" json:"org"`
	// PrincipalClaim names the principal of a person not listed under
	// users: email (the verified address's local part, "alice.smith" ->
	// alice-smith), preferred_username, or sub. Default email.
	PrincipalClaim string `yaml:"principal_claim" json:"principal_claim"`
	// GroupsClaim is the claim with the person's groups (default groups).
	GroupsClaim string `yaml:"groups_claim" json:"groups_claim"`
	// EmailDomains, when set, admits a person not listed under users only
	// with a verified email in one of these domains. The principal derived
	// from an email is its local part alone, so without it a guest of the
	// IdP (alice@other.example) would be principal alice like
	// alice@example.jp.
	EmailDomains []string `yaml:"email_domains" json:"email_domains"`
	// Groups gives each IdP group its roles.
	Groups map[string][]string `yaml:"groups" json:"groups"`
	Users  []User              `yaml:"users" json:"users"`
	// Scopes are asked of the IdP (default openid profile email
	// offline_access groups; offline_access brings the refresh token
	// that every token refresh renews).
	Scopes []string `yaml:"scopes" json:"scopes"`
}

// User maps one person (by subject, or by verified email) to a principal.
type User struct {
	Subject   string   `yaml:"subject" json:"subject"`
	Email     string   `yaml:"email" json:"email"`
	Principal string   `yaml:"principal" json:"principal"`
	Org       string   `yaml:"org" json:"org"`
	Roles     []string `yaml:"roles" json:"roles"`
}

// DefaultScopes are the scopes asked of the IdP when the mapping names none.
var DefaultScopes = []string{"openid", "profile", "email", "offline_access", "groups"}

// LoadMapping reads a mapping file.
func LoadMapping(path string) (*Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the sign-in mapping: %w", err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return nil, fmt.Errorf("sign-in mapping %s: %w", path, err)
	}
	return m, nil
}

// ParseMapping parses and checks a mapping (YAML or JSON; unknown keys
// are refused).
func ParseMapping(b []byte) (*Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if m.PrincipalClaim == "" {
		m.PrincipalClaim = "email"
	}
	if m.GroupsClaim == "" {
		m.GroupsClaim = "groups"
	}
	if len(m.Scopes) == 0 {
		m.Scopes = DefaultScopes
	}
	if !slices.Contains(m.Scopes, "openid") {
		return nil, fmt.Errorf("scopes must include openid")
	}
	switch m.PrincipalClaim {
	case "email", "preferred_username", "sub":
	default:
		return nil, fmt.Errorf("principal_claim %q: want email, preferred_username or sub", m.PrincipalClaim)
	}
	for i, d := range m.EmailDomains {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if d == "" || strings.ContainsAny(d, "@ /") {
			return nil, fmt.Errorf("email_domains[%d] %q: want a domain (example.jp)", i, m.EmailDomains[i])
		}
		m.EmailDomains[i] = d
	}
	if m.Org != "" && !access.ValidID(m.Org) {
		return nil, fmt.Errorf("org %q is not a valid org id", m.Org)
	}
	checkRoles := func(where string, roles []string) error {
		for _, r := range roles {
			if !slices.Contains(access.Roles, r) {
				return fmt.Errorf("%s: unknown role %q (known: %s)", where, r, strings.Join(access.Roles, ", "))
			}
		}
		return nil
	}
	for g, roles := range m.Groups {
		if err := checkRoles("group "+g, roles); err != nil {
			return nil, err
		}
	}
	for i, u := range m.Users {
		where := fmt.Sprintf("users[%d]", i)
		if (u.Subject == "") == (u.Email == "") {
			return nil, fmt.Errorf("%s: give subject or email (one of them)", where)
		}
		if !access.ValidID(u.Principal) {
			return nil, fmt.Errorf("%s: principal %q is not a valid principal id", where, u.Principal)
		}
		if u.Org == "" && m.Org == "" {
			return nil, fmt.Errorf("%s: no org (give org here or at the top)", where)
		}
		if u.Org != "" && !access.ValidID(u.Org) {
			return nil, fmt.Errorf("%s: org %q is not a valid org id", where, u.Org)
		}
		if err := checkRoles(where, u.Roles); err != nil {
			return nil, err
		}
		m.Users[i].Email = strings.ToLower(u.Email)
	}
	return &m, nil
}

// Claims are what the IdP says of a person (the verified ID token, and
// the userinfo endpoint's answer for what it lacks).
type Claims struct {
	Subject           string
	Email             string
	EmailVerified     bool
	PreferredUsername string
	Name              string
	Groups            []string
}

// ErrUnmapped is the reason a person has no principal.
type ErrUnmapped struct{ Why string }

func (e *ErrUnmapped) Error() string { return e.Why }

var notID = regexp.MustCompile(`[^a-z0-9_-]+`)

// Map returns the principal, org and roles of a person, and whether the
// mapping names them explicitly (users), which may bind an existing
// principal to them. No roles is not an error here (access refuses it).
func (m *Mapping) Map(c Claims) (principal, org string, roles []string, explicit bool, err error) {
	email := strings.ToLower(c.Email)
	for _, u := range m.Users {
		if (u.Subject != "" && u.Subject == c.Subject) || (u.Email != "" && c.EmailVerified && u.Email == email) {
			principal, org, explicit = u.Principal, u.Org, true
			roles = append(roles, u.Roles...)
			break
		}
	}
	if !explicit && len(m.EmailDomains) > 0 {
		_, domain, _ := strings.Cut(email, "@")
		if !c.EmailVerified || !slices.Contains(m.EmailDomains, domain) {
			return "", "", nil, false, &ErrUnmapped{"subject " + c.Subject + " has no verified email in the mapping's email_domains (list the person under users)"}
		}
	}
	if !explicit {
		var from string
		switch m.PrincipalClaim {
		case "email":
			if email == "" || !c.EmailVerified {
				return "", "", nil, false, &ErrUnmapped{"the IdP gave no verified email for subject " + c.Subject}
			}
			from, _, _ = strings.Cut(email, "@")
		case "preferred_username":
			from = strings.ToLower(c.PreferredUsername)
			from, _, _ = strings.Cut(from, "@")
		case "sub":
			from = strings.ToLower(c.Subject)
		}
		principal = strings.Trim(notID.ReplaceAllString(from, "-"), "-")
		if !access.ValidID(principal) {
			return "", "", nil, false, &ErrUnmapped{fmt.Sprintf("the %s of subject %s gives no valid principal id (list the person under users)", m.PrincipalClaim, c.Subject)}
		}
	}
	if org == "" {
		org = m.Org
	}
	if org == "" {
		return "", "", nil, false, &ErrUnmapped{"the mapping gives subject " + c.Subject + " no org"}
	}
	for _, g := range c.Groups {
		roles = append(roles, m.Groups[g]...)
	}
	slices.Sort(roles)
	return principal, org, slices.Compact(roles), explicit, nil
}
