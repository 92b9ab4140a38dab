// Package oidctest runs a real OpenID Connect provider in a test: the
// example OP of github.com/zitadel/oidc (pkg/op, with its login form and
// device flow pages), over real HTTP on a loopback port, with people who
// belong to groups and whom the test can disable. A disabled person can
// neither log in nor redeem a refresh token (invalid_grant), as at a real
// IdP. Only tests import it.
package oidctest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ClientID is the public client the OP knows (authorization code with
// PKCE, refresh token and device code grants; loopback redirects);
// OtherClientID is another application of the same IdP.
const (
	ClientID      = "sekisho"
	OtherClientID = "other-app"
)

// Person is a user of the OP. Their ID is also their user name.
type Person struct {
	ID, Password, Email string
	Groups              []string
}

// OP is a running provider.
type OP struct {
	// Issuer is its issuer URL (http://127.0.0.1:PORT).
	Issuer string
	users  *users
	st     *store
}

type users struct {
	mu       sync.Mutex
	people   map[string]*Person
	disabled map[string]bool
}

func (u *users) get(id string) (*Person, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.people[id]
	return p, ok && !u.disabled[id]
}

// GetUserByID implements storage.UserStore: a disabled person is unknown.
func (u *users) GetUserByID(id string) *storage.User {
	p, ok := u.get(id)
	if !ok {
		return nil
	}
	return &storage.User{ID: p.ID, Username: p.ID, Password: p.Password, FirstName: p.ID, LastName: "Test",
		Email: p.Email, EmailVerified: true}
}

// GetUserByUsername implements storage.UserStore.
func (u *users) GetUserByUsername(name string) *storage.User { return u.GetUserByID(name) }

// ExampleClientID implements storage.UserStore.
func (u *users) ExampleClientID() string { return "service" }

// store is the example storage with groups and disabled people.
type store struct {
	*storage.Storage
	users   *users
	clients map[string]op.Client

	mu        sync.Mutex
	refreshes int               // refresh tokens redeemed
	refused   int               // refresh tokens refused (used already, unknown)
	latest    map[string]string // subject -> the last refresh token issued
}

type client struct{ *storage.Client }

func (client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
}
func (client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (client) IsScopeAllowed(scope string) bool     { return scope == "groups" }

func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return s.Storage.GetClientByClientID(ctx, id)
}

func (s *store) TokenRequestByRefreshToken(ctx context.Context, rt string) (op.RefreshTokenRequest, error) {
	req, err := s.Storage.TokenRequestByRefreshToken(ctx, rt)
	if err != nil {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		return nil, err
	}
	if _, ok := s.users.get(req.GetSubject()); !ok {
		return nil, oidc.ErrInvalidGrant().WithDescription("the user is disabled")
	}
	return req, nil
}

// CreateAccessAndRefreshTokens gives the refresh token of a device flow
// its client (the example storage leaves it empty, so that such a refresh
// token would be refused to its own client).
func (s *store) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	if d, ok := req.(*op.DeviceAuthorizationState); ok && current == "" {
		req = &storage.AuthRequest{ApplicationID: d.ClientID, UserID: d.Subject, Scopes: d.Scopes}
	}
	at, rt, exp, err := s.Storage.CreateAccessAndRefreshTokens(ctx, req, current)
	if err == nil {
		s.mu.Lock()
		if current != "" {
			s.refreshes++
		}
		if s.latest == nil {
			s.latest = map[string]string{}
		}
		s.latest[req.GetSubject()] = rt
		s.mu.Unlock()
	}
	return at, rt, exp, err
}

// Refreshes returns how many refresh tokens the OP redeemed (each
// redemption rotates the token: the old one is refused afterwards).
func (o *OP) Refreshes() int {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	return o.st.refreshes
}

// RefusedRefreshes returns how many refresh tokens the OP refused as
// unknown: used already (rotated away) or never issued.
func (o *OP) RefusedRefreshes() int {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	return o.st.refused
}

// LatestRefreshToken returns the last refresh token the OP issued to
// subject (what a thief of the client's stored token would hold).
func (o *OP) LatestRefreshToken(subject string) string {
	o.st.mu.Lock()
	defer o.st.mu.Unlock()
	return o.st.latest[subject]
}

func (s *store) CheckUsernamePassword(username, password, id string) error {
	if _, ok := s.users.get(username); !ok {
		return fmt.Errorf("username or password wrong")
	}
	return s.Storage.CheckUsernamePassword(username, password, id)
}

func (s *store) CheckUsernamePasswordSimple(username, password string) error {
	if _, ok := s.users.get(username); !ok {
		return fmt.Errorf("username or password wrong")
	}
	return s.Storage.CheckUsernamePasswordSimple(username, password)
}

func (s *store) addGroups(ui *oidc.UserInfo, subject string) {
	if p, ok := s.users.get(subject); ok && len(p.Groups) > 0 {
		ui.AppendClaims("groups", slices.Clone(p.Groups))
	}
}

func (s *store) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	if slices.Contains(scopes, "groups") {
		s.addGroups(ui, req.GetSubject())
	}
	return nil
}

func (s *store) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(ui, ui.Subject)
	return nil
}

// Start runs an OP on a loopback port until the test ends.
func Start(t testing.TB, people ...Person) *OP {
	t.Helper()
	u := &users{people: map[string]*Person{}, disabled: map[string]bool{}}
	for i := range people {
		u.people[people[i].ID] = &people[i]
	}
	native := map[string]*storage.Client{
		ClientID:      storage.NativeClient(ClientID, "http://127.0.0.1/callback"),
		OtherClientID: storage.NativeClient(OtherClientID, "http://127.0.0.1/callback"),
	}
	st := &store{Storage: storage.NewStorageWithClients(u, native), users: u, clients: map[string]op.Client{}}
	for id, c := range native {
		st.clients[id] = client{c}
	}
	return serve(t, st)
}

func serve(t testing.TB, st *store) *OP {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return &OP{Issuer: issuer, users: st.users, st: st}
}

// Twin runs the same provider (people, clients, signing key) under
// another issuer URL: its ID tokens carry a valid signature of o's key
// and another iss.
func (o *OP) Twin(t testing.TB) *OP {
	t.Helper()
	return serve(t, o.st)
}

// Disable disables a person: no login, and their refresh tokens are
// refused with invalid_grant.
func (o *OP) Disable(id string) {
	o.users.mu.Lock()
	o.users.disabled[id] = true
	o.users.mu.Unlock()
}

// SetGroups changes a person's groups.
func (o *OP) SetGroups(id string, groups ...string) {
	o.users.mu.Lock()
	o.users.people[id].Groups = groups
	o.users.mu.Unlock()
}

// Browser is a person's browser: an HTTP client with cookies that follows
// redirects (to the loopback redirect URI too).
func Browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

var hiddenID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// LogIn opens authURL in browser b as the person id with password, fills
// the OP's login form and follows the redirects to the client's redirect
// URI; it returns the last response's status and body.
func (o *OP) LogIn(b *http.Client, authURL, id, password string) (int, string, error) {
	resp, err := b.Get(authURL)
	if err != nil {
		return 0, "", err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := hiddenID.FindSubmatch(page)
	if m == nil {
		return resp.StatusCode, string(page), fmt.Errorf("no login form at %s (HTTP %d): %.300s", resp.Request.URL, resp.StatusCode, page)
	}
	form := url.Values{"id": {string(m[1])}, "username": {id}, "password": {password}}
	resp, err = b.PostForm(o.Issuer+"/login/username", form)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// ApproveDevice enters userCode on the OP's device page in browser b as
// the person id, and allows the device.
func (o *OP) ApproveDevice(b *http.Client, userCode, id, password string) error {
	return o.answerDevice(b, userCode, id, password, "allowed")
}

// DenyDevice is ApproveDevice with the person denying the device.
func (o *OP) DenyDevice(b *http.Client, userCode, id, password string) error {
	return o.answerDevice(b, userCode, id, password, "denied")
}

func (o *OP) answerDevice(b *http.Client, userCode, id, password, action string) error {
	resp, err := b.PostForm(o.Issuer+"/device/login", url.Values{"user_code": {userCode}, "username": {id}, "password": {password}})
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "action") {
		return fmt.Errorf("device login: HTTP %d %.300s", resp.StatusCode, page)
	}
	resp, err = b.PostForm(o.Issuer+"/device/confirm", url.Values{"action": {action}})
	if err != nil {
		return err
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), action) {
		return fmt.Errorf("device confirm: HTTP %d %.300s", resp.StatusCode, page)
	}
	return nil
}
