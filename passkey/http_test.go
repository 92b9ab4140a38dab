package passkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/passkey"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

// The passkey ceremonies over HTTP against a real server (httpapi on real
// SQLite, the real access service and audit log), attacked from outside:
// a stranger's or another org's admin's ways to a passkey of someone
// else, and the life of a passkey sign-in's session.

type httpWorld struct {
	t     *testing.T
	srv   *httptest.Server
	off   *atomic.Int64 // the clock's offset, in nanoseconds
	admin *client.Client
}

func (w *httpWorld) now() time.Time { return time.Now().Add(time.Duration(w.off.Load())) }

func newHTTPWorld(t *testing.T) *httpWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, dir+"/sekisho.db")
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	rand.Read(master)
	kp, err := keys.OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, "sekisho.test/audit")
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(ctx, store, signer, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(); store.Close() })
	w := &httpWorld{t: t, off: new(atomic.Int64)}
	v := vault.New(store, kp, log, vault.Options{Now: w.now})
	defs, err := schemas.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.EnsureSchemas(ctx, defs); err != nil {
		t.Fatal(err)
	}
	acc, err := access.New(access.Config{Store: store, Schema: func(ctx context.Context, c string) (*sekisho.Schema, error) { return v.Schema(ctx, c) },
		Audit: log, TokenKey: bytes.Repeat([]byte{7}, 32), BootstrapToken: "boot", RootOrg: "operator", RootRegion: "jp", Now: w.now,
		DeviceDefault: access.DeviceAny})
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.EnsurePolicies(ctx); err != nil {
		t.Fatal(err)
	}
	pks, err := passkey.New(passkey.Config{Origins: []string{origin}, Store: store, Audit: log, Access: acc, Now: w.now})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(httpapi.New(httpapi.Config{Vault: v, AuditLog: log, Auth: acc, Access: acc, KnownPurpose: acc.KnownPurpose,
		Passkeys: pks, AnonymousRate: -1, Now: w.now}))
	t.Cleanup(w.srv.Close)
	w.admin = w.client()
	if _, err := w.admin.Bootstrap(ctx, "boot", "admin", "admin's laptop"); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *httpWorld) client() *client.Client {
	w.t.Helper()
	k, err := dpop.GenerateKey("p256")
	if err != nil {
		w.t.Fatal(err)
	}
	c := client.New(w.srv.URL, k)
	c.Now = w.now
	return c
}

// principal creates a person principal with a device (a client) approved
// by approver.
func (w *httpWorld) principal(creator, approver *client.Client, id, org string, roles ...string) *client.Client {
	w.t.Helper()
	ctx := context.Background()
	if err := creator.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": id, "org": org, "roles": roles}, nil); err != nil {
		w.t.Fatal(err)
	}
	c := w.client()
	d, err := c.Enrol(ctx, id, id+"'s laptop")
	if err != nil {
		w.t.Fatal(err)
	}
	if err := approver.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil); err != nil {
		w.t.Fatal(err)
	}
	return c
}

// ceremony POSTs body to a ceremony route with a DPoP proof of key alone
// (as the console does) and decodes the answer into out; a refusal is
// returned as its problem type.
func (w *httpWorld) ceremony(key *dpop.Key, path string, body any, out any) (int, string) {
	w.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", w.srv.URL+path, bytes.NewReader(b))
	proof, err := key.Proof("POST", w.srv.URL+path, "", w.now())
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("DPoP", proof)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var p client.Problem
		json.Unmarshal(raw, &p)
		return resp.StatusCode, strings.TrimPrefix(p.Type, "https://sekisho.dev/problems/")
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			w.t.Fatalf("%s: %v: %s", path, err, raw)
		}
	}
	return resp.StatusCode, ""
}

type optionsAnswer struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
}

// register registers a passkey of a for principal over HTTP, the browser's
// key being key; it returns the problem type of a refusal ("" when it was
// answered 201).
func (w *httpWorld) register(a *softAuthenticator, principal string, key *dpop.Key) string {
	w.t.Helper()
	var o optionsAnswer
	if _, typ := w.ceremony(key, "/v1/webauthn/registration/options", map[string]any{"principal": principal}, &o); typ != "" {
		w.t.Fatalf("registration options: %s", typ)
	}
	var cc protocol.CredentialCreation
	if err := json.Unmarshal(o.Options, &cc); err != nil {
		w.t.Fatal(err)
	}
	// The user handle arrives as base64url text (the browser decodes it).
	if s, ok := cc.Response.User.ID.(string); ok {
		id, err := b64.DecodeString(s)
		if err != nil {
			w.t.Fatal(err)
		}
		cc.Response.User.ID = protocol.URLEncodedBase64(id)
	}
	_, typ := w.ceremony(key, "/v1/webauthn/registration", map[string]any{"ceremony": o.Ceremony,
		"credential": json.RawMessage(a.create(w.t, &cc, origin)), "name": "key", "device_name": "console"}, nil)
	return typ
}

// login signs in with a over HTTP, the session key being key; it returns
// the session device, or the problem type of a refusal.
func (w *httpWorld) login(a *softAuthenticator, key *dpop.Key) (*httpapi.PasskeyLoginAnswer, string) {
	w.t.Helper()
	var o optionsAnswer
	if _, typ := w.ceremony(key, "/v1/webauthn/login/options", nil, &o); typ != "" {
		w.t.Fatalf("login options: %s", typ)
	}
	var ca protocol.CredentialAssertion
	if err := json.Unmarshal(o.Options, &ca); err != nil {
		w.t.Fatal(err)
	}
	var ans httpapi.PasskeyLoginAnswer
	_, typ := w.ceremony(key, "/v1/webauthn/login", map[string]any{"ceremony": o.Ceremony,
		"credential": json.RawMessage(a.get(w.t, &ca, origin)), "device_name": "console session"}, &ans)
	return &ans, typ
}

// whoami is a read with c's credential: "" or the problem type.
func whoami(c *client.Client) string {
	c.SetToken("", time.Time{})
	if err := c.JSON(context.Background(), "GET", "/v1/whoami", "", nil, nil); err != nil {
		if typ := client.ProblemType(err); typ != "" {
			return typ
		}
		return err.Error()
	}
	return ""
}

// TestPasskeyNotApprovedByAnotherPrincipalsDevice: a passkey registered
// for a victim (registration is anonymous) waits for an admin of the
// victim's org to approve the device enrolled with it. The attacker's key
// of that enrolment expires unapproved after an hour and may then enrol
// under another principal, the attacker's own in an org he administers:
// his approval of it must not approve the victim's passkey. It did
// (DeviceEverApproved looked at the device id alone): an admin of any org,
// or anyone with a passkey of their own, signed in as any principal,
// the root admin included. Control: the attacker's passkey for himself,
// approved by himself, signs in as himself.
func TestPasskeyNotApprovedByAnotherPrincipalsDevice(t *testing.T) {
	ctx := context.Background()
	w := newHTTPWorld(t)
	if err := w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil); err != nil {
		t.Fatal(err)
	}
	mallory := w.principal(w.admin, w.admin, "mallory", "affiliate", "admin")

	// Mallory registers a passkey for the root admin, with his key K.
	k, _ := dpop.GenerateKey("p256")
	evil := newSoftAuthenticator(t, "none", nil)
	if typ := w.register(evil, "admin", k); typ != "" {
		t.Fatalf("registration: %s", typ)
	}
	if _, typ := w.login(evil, must(dpop.GenerateKey("p256"))); typ != passkey.ProblemNotApproved {
		t.Fatalf("before any approval: %q, want %s", typ, passkey.ProblemNotApproved)
	}
	// An hour later the enrolment of K for admin expired unapproved; K
	// enrols under mallory, and mallory (admin of affiliate) approves it.
	w.off.Add(int64(access.PendingDeviceTTL + time.Minute))
	kc := client.New(w.srv.URL, k)
	kc.Now = w.now
	d, err := kc.Enrol(ctx, "mallory", "K again")
	if err != nil {
		t.Fatal(err)
	}
	if err := mallory.JSON(ctx, "POST", "/v1/devices/"+d.ID+"/approve", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if typ := whoami(kc); typ != "" {
		t.Fatalf("K as mallory's device: %s", typ)
	}
	// The passkey registered for admin is still not approved.
	session := must(dpop.GenerateKey("p256"))
	if ans, typ := w.login(evil, session); typ != passkey.ProblemNotApproved {
		t.Fatalf("admin's passkey after mallory approved K for himself: %q (%+v), want %s", typ, ans.Device, passkey.ProblemNotApproved)
	}
	sc := client.New(w.srv.URL, session)
	sc.Now = w.now
	if typ := whoami(sc); typ != "device-unknown" {
		t.Fatalf("the refused sign-in's key: %q, want device-unknown", typ)
	}

	// Control: mallory's passkey for himself, with a key he approves.
	k2 := must(dpop.GenerateKey("p256"))
	own := newSoftAuthenticator(t, "none", nil)
	if typ := w.register(own, "mallory", k2); typ != "" {
		t.Fatalf("registration: %s", typ)
	}
	if err := mallory.JSON(ctx, "POST", "/v1/devices/"+k2.Thumbprint()+"/approve", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	ans, typ := w.login(own, must(dpop.GenerateKey("p256")))
	if typ != "" || ans.Device.Principal != "mallory" {
		t.Fatalf("mallory's own passkey: %q %+v", typ, ans.Device)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestPasskeySessionExpiresAndEndsWithItsPasskey: the device a passkey
// sign-in enrols is a session: it gets tokens until its expiry
// (passkey.DefaultSessionTTL), its tokens end with it, and after it both
// a token request and a request with a token minted before are refused
// device-expired; a new sign-in works (control). Revoking the passkey
// revokes the sessions it signed in (they stayed before: a stolen
// authenticator's sessions outlived its revocation), not the browser's
// device it was registered with (control).
func TestPasskeySessionExpiresAndEndsWithItsPasskey(t *testing.T) {
	ctx := context.Background()
	w := newHTTPWorld(t)
	w.principal(w.admin, w.admin, "bob", "operator", "member")
	browser := w.client()
	a := newSoftAuthenticator(t, "none", nil)
	if typ := w.register(a, "bob", browser.Key); typ != "" {
		t.Fatalf("registration: %s", typ)
	}
	if err := w.admin.JSON(ctx, "POST", "/v1/devices/"+browser.Key.Thumbprint()+"/approve", "", nil, nil); err != nil {
		t.Fatal(err)
	}

	s1 := w.client()
	ans, typ := w.login(a, s1.Key)
	if typ != "" {
		t.Fatalf("sign-in: %s", typ)
	}
	want := w.now().Add(passkey.DefaultSessionTTL)
	if ans.Device.ExpiresAt == nil || ans.Device.ExpiresAt.Sub(want).Abs() > time.Minute {
		t.Fatalf("session device expires at %v, want about %v", ans.Device.ExpiresAt, want)
	}
	if typ := whoami(s1); typ != "" {
		t.Fatalf("session read: %s", typ)
	}
	// A token minted a minute before the end ends with the session.
	w.off.Add(int64(passkey.DefaultSessionTTL - time.Minute))
	tok, err := s1.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.Equal(ans.Device.ExpiresAt.Truncate(time.Second)) || tok.ExpiresIn > 60 {
		t.Fatalf("token near the end expires at %v (in %d s), want the session's end %v", tok.ExpiresAt, tok.ExpiresIn, ans.Device.ExpiresAt)
	}
	if err := s1.JSON(ctx, "GET", "/v1/whoami", "", nil, nil); err != nil {
		t.Fatalf("read before the end: %v", err)
	}
	w.off.Add(int64(time.Minute + time.Second))
	if err := s1.JSON(ctx, "GET", "/v1/whoami", "", nil, nil); client.ProblemType(err) == "" {
		t.Fatalf("the token after the session's end: %v", err)
	}
	if _, err := s1.Refresh(ctx); client.ProblemType(err) != access.ProblemDeviceExpired {
		t.Fatalf("token request after the session's end: %v, want %s", err, access.ProblemDeviceExpired)
	}

	// Control: sign in again.
	s2 := w.client()
	ans2, typ := w.login(a, s2.Key)
	if typ != "" {
		t.Fatalf("sign-in again: %s", typ)
	}
	if typ := whoami(s2); typ != "" {
		t.Fatalf("new session: %s", typ)
	}
	s3 := w.client()
	if _, typ := w.login(a, s3.Key); typ != "" {
		t.Fatalf("a second session: %s", typ)
	}

	// bob revokes his passkey from the browser's device: both sessions end,
	// the browser's device stays.
	if err := browser.JSON(ctx, "POST", "/v1/passkeys/"+ans2.Passkey+"/revoke", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*client.Client{s2, s3} {
		if typ := whoami(s); typ != "device-revoked" {
			t.Fatalf("session after its passkey was revoked: %q, want device-revoked", typ)
		}
	}
	if typ := whoami(browser); typ != "" {
		t.Fatalf("the browser's device after the passkey's revocation: %s", typ)
	}
	if _, typ := w.login(a, w.client().Key); typ != passkey.ProblemRevoked {
		t.Fatalf("revoked passkey: %q", typ)
	}
}

// loginOptions begins a sign-in over HTTP with key and returns the
// ceremony and its options.
func (w *httpWorld) loginOptions(key *dpop.Key) (string, *protocol.CredentialAssertion) {
	w.t.Helper()
	var o optionsAnswer
	if _, typ := w.ceremony(key, "/v1/webauthn/login/options", nil, &o); typ != "" {
		w.t.Fatalf("login options: %s", typ)
	}
	var ca protocol.CredentialAssertion
	if err := json.Unmarshal(o.Options, &ca); err != nil {
		w.t.Fatal(err)
	}
	return o.Ceremony, &ca
}

// TestPasskeyCeremonyAttacksOverHTTP: the sign-in ceremony attacked over
// HTTP, each row beside the control that the same steps done right sign
// in: a captured answer replayed (new proof, same key), answered with
// another key than the one that began, a registration ceremony answered
// as a sign-in, another origin (a phishing page relaying the challenge),
// another RP id (an assertion made for another site), an assertion
// without user verification (presence alone), bob's passkey
// presenting another principal's user handle, bob's browser key (an
// existing device) as the session key. And the passkey API across orgs:
// another org's admin neither sees nor revokes bob's passkey, a member
// may not revoke another person's.
func TestPasskeyCeremonyAttacksOverHTTP(t *testing.T) {
	ctx := context.Background()
	w := newHTTPWorld(t)
	if err := w.admin.JSON(ctx, "POST", "/v1/orgs", "", map[string]any{"id": "affiliate", "home_region": "jp"}, nil); err != nil {
		t.Fatal(err)
	}
	affAdmin := w.principal(w.admin, w.admin, "aff-admin", "affiliate", "admin")
	carol := w.principal(w.admin, w.admin, "carol", "operator", "member")
	w.principal(w.admin, w.admin, "bob", "operator", "member")
	browser := w.client()
	a := newSoftAuthenticator(t, "none", nil)
	if typ := w.register(a, "bob", browser.Key); typ != "" {
		t.Fatalf("registration: %s", typ)
	}
	if err := w.admin.JSON(ctx, "POST", "/v1/devices/"+browser.Key.Thumbprint()+"/approve", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	answer := func(cer string, ca *protocol.CredentialAssertion, origin string) map[string]any {
		return map[string]any{"ceremony": cer, "credential": json.RawMessage(a.get(t, ca, origin)), "device_name": "s"}
	}

	// Control: a sign-in; its body is then replayed.
	k := must(dpop.GenerateKey("p256"))
	cer, ca := w.loginOptions(k)
	body := answer(cer, ca, origin)
	var ans httpapi.PasskeyLoginAnswer
	if st, typ := w.ceremony(k, "/v1/webauthn/login", body, &ans); st != http.StatusOK || ans.Device.Principal != "bob" {
		t.Fatalf("control sign-in: %d %s", st, typ)
	}
	for _, tc := range []struct {
		name string
		do   func() string
		want string
	}{
		{"the captured answer replayed with the same key", func() string {
			_, typ := w.ceremony(k, "/v1/webauthn/login", body, nil)
			return typ
		}, passkey.ProblemChallenge},
		{"answered with another key than the one that began", func() string {
			k1, k2 := must(dpop.GenerateKey("p256")), must(dpop.GenerateKey("p256"))
			cer, ca := w.loginOptions(k1)
			_, typ := w.ceremony(k2, "/v1/webauthn/login", answer(cer, ca, origin), nil)
			return typ
		}, passkey.ProblemKeyMismatch},
		{"a registration ceremony answered as a sign-in", func() string {
			k1 := must(dpop.GenerateKey("p256"))
			var o optionsAnswer
			w.ceremony(k1, "/v1/webauthn/registration/options", map[string]any{"principal": "bob"}, &o)
			_, ca := w.loginOptions(k1)
			_, typ := w.ceremony(k1, "/v1/webauthn/login", answer(o.Ceremony, ca, origin), nil)
			return typ
		}, passkey.ProblemChallenge},
		{"another origin", func() string {
			k1 := must(dpop.GenerateKey("p256"))
			cer, ca := w.loginOptions(k1)
			_, typ := w.ceremony(k1, "/v1/webauthn/login", answer(cer, ca, "https://vault.example.jp.evil.test"), nil)
			return typ
		}, passkey.ProblemInvalid},
		{"another RP id", func() string {
			k1 := must(dpop.GenerateKey("p256"))
			cer, ca := w.loginOptions(k1)
			ca.Response.RelyingPartyID = "evil.test"
			_, typ := w.ceremony(k1, "/v1/webauthn/login", answer(cer, ca, origin), nil)
			return typ
		}, passkey.ProblemInvalid},
		{"bob's passkey with the root admin's user handle", func() string {
			k1 := must(dpop.GenerateKey("p256"))
			cer, ca := w.loginOptions(k1)
			real := a.user
			a.user = []byte("admin")
			defer func() { a.user = real }()
			_, typ := w.ceremony(k1, "/v1/webauthn/login", answer(cer, ca, origin), nil)
			return typ
		}, passkey.ProblemUnknownCredential},
		{"user presence without user verification", func() string {
			k1 := must(dpop.GenerateKey("p256"))
			cer, ca := w.loginOptions(k1)
			a.noUV = true
			defer func() { a.noUV = false }()
			_, typ := w.ceremony(k1, "/v1/webauthn/login", answer(cer, ca, origin), nil)
			return typ
		}, passkey.ProblemInvalid},
		{"an existing device's key as the session key", func() string {
			cer, ca := w.loginOptions(carol.Key)
			_, typ := w.ceremony(carol.Key, "/v1/webauthn/login", answer(cer, ca, origin), nil)
			return typ
		}, "device-key-known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.do(); got != tc.want {
				t.Fatalf("got %q, want %s", got, tc.want)
			}
		})
	}
	// Control after the refusals: bob signs in.
	if _, typ := w.login(a, must(dpop.GenerateKey("p256"))); typ != "" {
		t.Fatalf("sign-in after the refusals: %s", typ)
	}
	// carol's device is still carol's.
	if typ := whoami(carol); typ != "" {
		t.Fatalf("carol's device: %s", typ)
	}

	// The passkey API across orgs and persons.
	var l struct{ Passkeys []passkey.Passkey }
	if err := affAdmin.JSON(ctx, "GET", "/v1/passkeys", "", nil, &l); err != nil || len(l.Passkeys) != 0 {
		t.Fatalf("another org's admin lists %+v %v", l.Passkeys, err)
	}
	if err := affAdmin.JSON(ctx, "GET", "/v1/passkeys?principal=bob", "", nil, &l); err != nil || len(l.Passkeys) != 0 {
		t.Fatalf("another org's admin lists bob's: %+v %v", l.Passkeys, err)
	}
	if err := w.admin.JSON(ctx, "GET", "/v1/passkeys?principal=bob", "", nil, &l); err != nil || len(l.Passkeys) != 1 {
		t.Fatalf("the root admin lists bob's: %+v %v", l.Passkeys, err)
	}
	id := l.Passkeys[0].ID
	if err := carol.JSON(ctx, "GET", "/v1/passkeys", "", nil, &l); err != nil || len(l.Passkeys) != 0 {
		t.Fatalf("a member lists others' passkeys: %+v %v", l.Passkeys, err)
	}
	if err := affAdmin.JSON(ctx, "POST", "/v1/passkeys/"+id+"/revoke", "", nil, nil); client.ProblemType(err) != "not-found" {
		t.Fatalf("another org's admin revokes bob's passkey: %v", err)
	}
	if err := carol.JSON(ctx, "POST", "/v1/passkeys/"+id+"/revoke", "", nil, nil); client.ProblemType(err) != "admin-required" {
		t.Fatalf("a member revokes bob's passkey: %v", err)
	}
	if _, typ := w.login(a, must(dpop.GenerateKey("p256"))); typ != "" {
		t.Fatalf("bob's passkey after the refused revocations: %s", typ)
	}
}

// TestPasskeyNotStoredWithoutItsDevice: when the principal has
// access.MaxPendingDevices enrolments waiting already (an outsider can
// make them: enrolment is anonymous), a registration is answered like one
// (a pending device) but its device is not stored; its passkey was
// stored all the same, waiting on a device id that anyone could then
// enrol under another principal. Now neither is stored. Control: a
// registration for a principal without waiting enrolments stores both.
func TestPasskeyNotStoredWithoutItsDevice(t *testing.T) {
	ctx := context.Background()
	w := newHTTPWorld(t)
	w.principal(w.admin, w.admin, "bob", "operator", "member")
	for i := range access.MaxPendingDevices {
		if _, err := w.client().Enrol(ctx, "admin", fmt.Sprint("flood ", i)); err != nil {
			t.Fatal(err)
		}
	}
	k := must(dpop.GenerateKey("p256"))
	if typ := w.register(newSoftAuthenticator(t, "none", nil), "admin", k); typ != "" {
		t.Fatalf("registration: %s", typ)
	}
	var l struct{ Passkeys []passkey.Passkey }
	if err := w.admin.JSON(ctx, "GET", "/v1/passkeys?principal=admin", "", nil, &l); err != nil || len(l.Passkeys) != 0 {
		t.Fatalf("passkeys of admin after a registration whose device was not stored: %+v %v", l.Passkeys, err)
	}
	// Control.
	if typ := w.register(newSoftAuthenticator(t, "none", nil), "bob", must(dpop.GenerateKey("p256"))); typ != "" {
		t.Fatalf("registration: %s", typ)
	}
	if err := w.admin.JSON(ctx, "GET", "/v1/passkeys?principal=bob", "", nil, &l); err != nil || len(l.Passkeys) != 1 {
		t.Fatalf("bob's passkeys: %+v %v", l.Passkeys, err)
	}
}
