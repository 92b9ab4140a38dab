package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
)

// The token endpoint's sign-in grants.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// Config configures a Provider.
type Config struct {
	// Issuer is the IdP's issuer URL (serve --oidc-issuer); its discovery
	// document is at Issuer + /.well-known/openid-configuration.
	Issuer string
	// ClientID is sekisho's client at the IdP (serve --oidc-client-id): a
	// public client (no secret; PKCE) allowed the authorization code,
	// refresh token and device code grants, with loopback redirect URIs
	// (http://127.0.0.1/callback, any port, RFC 8252). ID tokens must be
	// issued to it (aud).
	ClientID string
	Mapping  *Mapping
	// HTTPClient talks to the IdP (default: a client with a 15 s timeout).
	HTTPClient *http.Client
}

// Provider is the server side: it redeems sign-in grants at the IdP and
// renews sessions there. Discovery is done on first use (and retried
// until it succeeds), so a server starts while its IdP is down.
type Provider struct {
	cfg Config

	mu sync.Mutex
	d  *discovered
}

type discovered struct {
	p        *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	userinfo bool
}

// New returns a Provider.
func New(cfg Config) (*Provider, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--oidc-issuer %q: want the IdP's issuer URL (https://idp.example.jp/realms/staff)", cfg.Issuer)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		// Discovery, keys and tokens over plain HTTP: anyone on the path
		// could answer ID tokens signed by keys of their own.
		return nil, fmt.Errorf("--oidc-issuer %q: an http issuer is accepted on a loopback address only (a test IdP); use https", cfg.Issuer)
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("--oidc-client-id is required with --oidc-issuer")
	}
	if cfg.Mapping == nil {
		return nil, fmt.Errorf("the sign-in mapping is required with --oidc-issuer (--oidc-mapping FILE)")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	return &Provider{cfg: cfg}, nil
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Issuer implements access.IdentityProvider.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// ClientID implements access.IdentityProvider.
func (p *Provider) ClientID() string { return p.cfg.ClientID }

// Scopes are the scopes clients ask the IdP for.
func (p *Provider) Scopes() []string { return p.cfg.Mapping.Scopes }

func (p *Provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.cfg.HTTPClient)
}

func unavailable(what string, err error) error {
	return &sekisho.Error{Code: sekisho.EUnavailable, Type: "identity-provider-unavailable",
		Message: "the identity provider cannot be reached (" + what + "); retry shortly", Err: err}
}

func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.d != nil {
		return p.d, nil
	}
	op, err := oidc.NewProvider(p.ctx(ctx), p.cfg.Issuer)
	if err != nil {
		return nil, unavailable("discovery", err)
	}
	d := &discovered{p: op, verifier: op.Verifier(&oidc.Config{ClientID: p.cfg.ClientID}),
		oauth: oauth2.Config{ClientID: p.cfg.ClientID, Endpoint: op.Endpoint(), Scopes: p.cfg.Mapping.Scopes}, userinfo: op.UserInfoEndpoint() != ""}
	d.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client: client_id in the form, no secret
	p.d = d
	return d, nil
}

func refused(format string, args ...any) error {
	return sekisho.TypedErrorf(sekisho.EUnauthorized, access.ProblemSignInRefused, format, args...)
}

// oauthError turns an error of the IdP's token endpoint into sekisho's:
// the IdP's refusal (its OAuth error code, never the token) or, for a
// transport failure, unavailable.
func oauthError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			code = fmt.Sprintf("HTTP %d", re.Response.StatusCode)
			if re.Response.StatusCode >= 500 {
				return unavailable(what, errors.New(code))
			}
		}
		msg := "the identity provider refused the " + what + ": " + code
		if re.ErrorDescription != "" {
			msg += " (" + truncate(re.ErrorDescription, 200) + ")"
		}
		return refused("%s", msg)
	}
	return unavailable(what, err)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// SignIn implements access.IdentityProvider: it redeems an authorization
// code (with the PKCE verifier, the redirect URI and the nonce of the
// authorization request) or a device code at the IdP, verifies the ID
// token and maps the person.
func (p *Provider) SignIn(ctx context.Context, grant url.Values) (*access.Identity, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	var tok *oauth2.Token
	nonce := ""
	switch gt := grant.Get("grant_type"); gt {
	case GrantAuthorizationCode:
		code, verifier, redirect := grant.Get("code"), grant.Get("code_verifier"), grant.Get("redirect_uri")
		nonce = grant.Get("nonce")
		switch {
		case code == "":
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "code", "give the authorization code (code)")
		case len(verifier) < 43 || len(verifier) > 128:
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "code_verifier", "give the PKCE code_verifier of the authorization request (43 to 128 characters, RFC 7636)")
		case redirect == "":
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "redirect_uri", "give the redirect_uri of the authorization request")
		case nonce == "":
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "nonce", "give the nonce of the authorization request")
		}
		conf := d.oauth
		conf.RedirectURL = redirect
		tok, err = conf.Exchange(p.ctx(ctx), code, oauth2.VerifierOption(verifier))
		if err != nil {
			return nil, oauthError("authorization code", err)
		}
	case GrantDeviceCode:
		dc := grant.Get("device_code")
		if dc == "" {
			return nil, sekisho.FieldErrorf(sekisho.EInvalid, "device_code", "give the device_code of the device authorization")
		}
		if tok, err = p.deviceToken(ctx, d, dc); err != nil {
			return nil, err
		}
	default:
		return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: "unsupported-grant-type", Field: "grant_type",
			Message: "grant_type " + truncate(gt, 64) + " is not a sign-in grant"}
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.verify(ctx, d, raw, grant.Get("grant_type") == GrantAuthorizationCode, nonce)
	if err != nil {
		return nil, err
	}
	return p.identity(ctx, d, idt, tok)
}

// verify checks a sign-in's ID token: signed by the issuer's published
// keys, iss the configured issuer, aud this client, not expired (go-oidc),
// and, for the authorization code flow, the nonce of the request.
func (p *Provider) verify(ctx context.Context, d *discovered, raw string, checkNonce bool, nonce string) (*oidc.IDToken, error) {
	if raw == "" {
		return nil, refused("the identity provider returned no ID token (is openid among the scopes?)")
	}
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, refused("the ID token does not verify: %v", err)
	}
	if checkNonce && (nonce == "" || idt.Nonce != nonce) {
		return nil, refused("the ID token's nonce is not the one of the authorization request")
	}
	return idt, nil
}

// Refresh implements access.IdentityProvider: it redeems the refresh
// token at the IdP, which refuses a person it disabled.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*access.Identity, error) {
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := d.oauth.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, oauthError("refresh", err)
	}
	var idt *oidc.IDToken
	if raw, _ := tok.Extra("id_token").(string); raw != "" {
		if idt, err = d.verifier.Verify(ctx, raw); err != nil {
			return nil, refused("the refreshed ID token does not verify: %v", err)
		}
	}
	if idt == nil && !d.userinfo {
		return nil, refused("the identity provider's refresh gave no ID token and it has no userinfo endpoint")
	}
	id, err := p.identity(ctx, d, idt, tok)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken != refreshToken {
		id.RefreshToken = tok.RefreshToken // rotated
	}
	return id, nil
}

type idClaims struct {
	Subject           string `json:"sub"`
	Email             string `json:"email"`
	EmailVerified     any    `json:"email_verified"`
	PreferredUsername string `json:"preferred_username"`
	Name              string `json:"name"`
}

func (c *idClaims) fill(o idClaims) {
	if c.Email == "" {
		c.Email, c.EmailVerified = o.Email, o.EmailVerified
	}
	if c.PreferredUsername == "" {
		c.PreferredUsername = o.PreferredUsername
	}
	if c.Name == "" {
		c.Name = o.Name
	}
}

// verified reads email_verified, a boolean (or "true" from some IdPs).
func verified(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// groups reads a groups claim: a list of strings (or one string).
func groups(raw map[string]json.RawMessage, claim string) []string {
	b, ok := raw[claim]
	if !ok {
		return nil
	}
	var list []string
	if json.Unmarshal(b, &list) == nil {
		return list
	}
	var one string
	if json.Unmarshal(b, &one) == nil && one != "" {
		return []string{one}
	}
	return nil
}

// identity maps the person of a verified ID token (idt, nil after a
// refresh without one) and the userinfo endpoint's answer.
func (p *Provider) identity(ctx context.Context, d *discovered, idt *oidc.IDToken, tok *oauth2.Token) (*access.Identity, error) {
	var c idClaims
	raw := map[string]json.RawMessage{}
	issuer := p.cfg.Issuer
	if idt != nil {
		if err := idt.Claims(&c); err != nil {
			return nil, refused("the ID token's claims do not decode: %v", err)
		}
		idt.Claims(&raw)
		issuer = idt.Issuer
	}
	if d.userinfo && tok.AccessToken != "" {
		ui, err := d.p.UserInfo(p.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			if strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "403") {
				return nil, refused("the identity provider's userinfo endpoint refused the session")
			}
			return nil, unavailable("userinfo", err)
		}
		var uc idClaims
		uraw := map[string]json.RawMessage{}
		if err := ui.Claims(&uc); err != nil {
			return nil, refused("the userinfo answer does not decode: %v", err)
		}
		ui.Claims(&uraw)
		if c.Subject == "" {
			c = uc
		} else if uc.Subject != c.Subject {
			return nil, refused("the userinfo answer is for another subject than the ID token")
		}
		c.fill(uc)
		if _, ok := raw[p.cfg.Mapping.GroupsClaim]; !ok {
			raw[p.cfg.Mapping.GroupsClaim] = uraw[p.cfg.Mapping.GroupsClaim]
		}
	}
	if c.Subject == "" {
		return nil, refused("the identity provider named no subject")
	}
	cl := Claims{Subject: c.Subject, Email: c.Email, EmailVerified: verified(c.EmailVerified), PreferredUsername: c.PreferredUsername,
		Name: c.Name, Groups: groups(raw, p.cfg.Mapping.GroupsClaim)}
	principal, org, roles, explicit, err := p.cfg.Mapping.Map(cl)
	if err != nil {
		return nil, sekisho.TypedErrorf(sekisho.EForbidden, access.ProblemSignInUnmapped, "%v", err)
	}
	return &access.Identity{Issuer: issuer, Subject: c.Subject, Principal: principal, Org: org, Name: c.Name, Roles: roles,
		Bind: explicit, RefreshToken: tok.RefreshToken}, nil
}

// deviceToken asks the IdP's token endpoint once for the tokens of a
// device authorization (RFC 8628 §3.4); the client polls through
// sekisho's token endpoint, and RFC 8628's answers are relayed.
func (p *Provider) deviceToken(ctx context.Context, d *discovered, deviceCode string) (*oauth2.Token, error) {
	form := url.Values{"grant_type": {GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {p.cfg.ClientID}}
	req, err := http.NewRequestWithContext(ctx, "POST", d.oauth.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, unavailable("device token", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, unavailable("device token", err)
	}
	var body struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
		ExpiresIn    int64  `json:"expires_in"`
		Error        string `json:"error"`
		Description  string `json:"error_description"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		if resp.StatusCode >= 500 {
			return nil, unavailable("device token", fmt.Errorf("HTTP %d", resp.StatusCode))
		}
		return nil, refused("the identity provider's device token answer does not decode (HTTP %d)", resp.StatusCode)
	}
	switch body.Error {
	case "":
	case "authorization_pending":
		return nil, sekisho.TypedErrorf(sekisho.EInvalid, access.ProblemAuthorizationPending, "the person has not yet approved the sign-in at the identity provider; poll again after the interval")
	case "slow_down":
		return nil, sekisho.TypedErrorf(sekisho.EInvalid, access.ProblemSlowDown, "polling too fast: wait 5 seconds longer between polls")
	case "expired_token":
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, access.ProblemExpiredToken, "the device code expired; start the sign-in again")
	case "access_denied":
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, access.ProblemAccessDenied, "the person denied the sign-in at the identity provider")
	default:
		msg := "the identity provider refused the device code: " + truncate(body.Error, 64)
		if body.Description != "" {
			msg += " (" + truncate(body.Description, 200) + ")"
		}
		return nil, refused("%s", msg)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return nil, refused("the identity provider's device token answer has no token (HTTP %d)", resp.StatusCode)
	}
	tok := &oauth2.Token{AccessToken: body.AccessToken, TokenType: body.TokenType, RefreshToken: body.RefreshToken}
	if body.ExpiresIn > 0 {
		tok.Expiry = time.Now().Add(time.Duration(body.ExpiresIn) * time.Second)
	}
	return tok.WithExtra(map[string]any{"id_token": body.IDToken}), nil
}
