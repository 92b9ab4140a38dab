package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/sekisho/sekisho/access/dpop"
)

// TestConsolePasskey (issue 16 point 5) signs a person in to the console
// with a passkey, in headless Chromium with the DevTools protocol's
// virtual authenticator (CTAP2, internal transport, resident keys, user
// verification) against a real `sekisho serve`:
//
//   - alice registers a passkey in the console; her browser's key is a
//     pending device, key_storage webauthn; the first admin approves it
//     over the API and the console signs in;
//   - she signs out and signs in again with the passkey alone: the
//     session's new key (never stored in the browser) is an approved
//     webauthn device, and the console reads the audit checkpoints with it;
//   - the sign-in's answer replayed (the same challenge) is refused
//     webauthn-challenge-invalid, beside the sign-in it came from;
//   - a passkey the server does not know is refused
//     webauthn-credential-unknown, and alice's real passkey, put back in
//     the authenticator, signs in again (the control);
//   - signing out revokes the session's device;
//   - a passkey session ends (serve --webauthn-session-ttl 1m, the least
//     allowed: the test waits for it) while the Guard page is open: the
//     console shows that the session expired and the sign-in, with no
//     one signed in in the header, and sends no more requests that are
//     refused; the passkey signs in again (the control).
func TestConsolePasskey(t *testing.T) {
	chrome := chromium(t)
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir, masterKey(), "--webauthn-session-ttl", "1m")
	ctx := context.Background()
	admin := newClient(t, srv, enrol(t, srv).key)
	ok(t, "create alice", admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "alice", "org": "operator", "roles": []string{"admin"}}, nil))
	// WebAuthn needs a domain for its RP id, not an IP address: the
	// console is opened at localhost (serve's default origin on loopback).
	base := strings.Replace(srv.base, "127.0.0.1", "localhost", 1)

	actx, cancelA := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "en-US"))...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 4*time.Minute) // a session of 1 min waited for
	defer cancelT()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var problems []string
	var loginBodies [][]byte  // the bodies of POST /v1/webauthn/login
	var unauthorized []string // the responses 401, and 400 to POST /v1/token
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *network.EventRequestWillBeSent:
			if e.Request.Method == "POST" && strings.HasSuffix(e.Request.URL, "/v1/webauthn/login") {
				var b []byte
				for _, p := range e.Request.PostDataEntries {
					b = append(b, p.Bytes...)
				}
				loginBodies = append(loginBodies, b)
			}
		case *network.EventResponseReceived:
			if e.Response.Status == http.StatusUnauthorized || (e.Response.Status == http.StatusBadRequest && strings.HasSuffix(e.Response.URL, "/v1/token")) {
				unauthorized = append(unauthorized, e.Response.URL)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		second(chromedp.Call(bctx, runtime.Enable, cdp.Empty{})),
		second(chromedp.Call(bctx, network.Enable, network.EnableParams{})),
		second(chromedp.Call(bctx, webauthn.Enable, webauthn.EnableParams{})),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A platform authenticator with resident keys and user verification
	// that always succeeds (a person who touches it).
	auth, err := chromedp.Call(bctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		// (cdproto sends every credential's generateCmtgKeyOnNextOperation, which an
		// authenticator without CMTG support refuses in WebAuthn.addCredential.)
		HasCmtgKey: true}})
	if err != nil {
		t.Fatal(err)
	}
	authID := auth.AuthenticatorID

	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		actx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(actx, actions...); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v; the page says:\n%s", what, err, body)
		}
	}
	visible := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
	textOf := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[any](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v; the page says:\n%s", what, err, body)
		}
	}
	stored := func() string {
		return eval(`new Promise((res, rej) => { const r = indexedDB.open('sekisho-console'); r.onupgradeneeded = () => r.result.createObjectStore('device');
			r.onsuccess = () => { const g = r.result.transaction('device').objectStore('device').get('current'); g.onsuccess = () => res(g.result ? 'key of ' + g.result.principal : 'nothing') }; r.onerror = rej })`)
	}
	signOut := func() {
		t.Helper()
		eval(`(window.confirm = () => true, 'ok')`)
		do("sign out", click(`#forget`), visible(`#passkey-signin`))
	}
	type deviceRecord struct {
		ID         string `json:"id"`
		Principal  string `json:"principal"`
		Status     string `json:"status"`
		KeyStorage string `json:"key_storage"`
		ApprovedBy string `json:"approved_by"`
		Attested   bool   `json:"attested"`
	}
	device := func(id string) (d deviceRecord) {
		t.Helper()
		ok(t, "device "+id, admin.JSON(ctx, "GET", "/v1/devices/"+id, "", nil, &d))
		return d
	}

	// Register: the browser's key waits for approval as a webauthn device.
	do("open the console", chromedp.Navigate(base+"/console"), visible(`#passkey-signin`), visible(`#passkey-register`))
	do("register a passkey", chromedp.SendKeys(chromedp.CSS(`#principal`), "alice"), click(`#passkey-register`), visible(`#device-id`))
	regDevice := textOf(`#device-id`)
	if d := device(regDevice); d.Principal != "alice" || d.Status != "pending" || d.KeyStorage != "webauthn" || d.Attested {
		t.Fatalf("the registering browser's device: %+v (want alice's, pending, webauthn, not attested: no roots configured)", d)
	}
	var pks struct {
		Passkeys []struct {
			ID, Principal, Status, Device string
			AttestationFormat             string `json:"attestation_format"`
		}
	}
	ok(t, "list passkeys", admin.JSON(ctx, "GET", "/v1/passkeys?principal=alice", "", nil, &pks))
	if len(pks.Passkeys) != 1 || pks.Passkeys[0].Status != "pending" || pks.Passkeys[0].Device != regDevice {
		t.Fatalf("alice's passkeys: %+v", pks)
	}
	t.Logf("the virtual authenticator's attestation format: %s", pks.Passkeys[0].AttestationFormat)
	ok(t, "approve", admin.JSON(ctx, "POST", "/v1/devices/"+regDevice+"/approve", "", nil, nil))
	do("signed in after approval", visible(`#nav-incidents`))
	if who := textOf(`#whoami`); !strings.Contains(who, "alice (operator)") {
		t.Fatalf("header says %q", who)
	}

	// Sign out, and in again with the passkey alone.
	signOut()
	if s := stored(); s != "nothing" {
		t.Fatalf("after signing out the browser holds %s", s)
	}
	do("passkey sign-in", click(`#passkey-signin`), visible(`#nav-incidents`))
	if who := textOf(`#whoami`); !strings.Contains(who, "alice (operator)") {
		t.Fatalf("header says %q", who)
	}
	if s := stored(); s != "nothing" {
		t.Fatalf("the passkey session's key was stored: %s", s)
	}
	var devs struct {
		Devices []struct {
			ID, Status string
			KeyStorage string `json:"key_storage"`
			ApprovedBy string `json:"approved_by"`
		}
	}
	session := func() string {
		t.Helper()
		ok(t, "list devices", admin.JSON(ctx, "GET", "/v1/devices?principal=alice", "", nil, &devs))
		for _, d := range devs.Devices {
			if d.Status == "approved" && strings.HasPrefix(d.ApprovedBy, "passkey:") {
				return d.ID
			}
		}
		return ""
	}
	sess := session()
	if d := device(sess); sess == "" || d.KeyStorage != "webauthn" || d.ApprovedBy != "passkey:"+pks.Passkeys[0].ID {
		t.Fatalf("no approved webauthn session device of alice's passkey: %+v", devs)
	}
	// The session reads with its key: the audit page verifies checkpoints.
	eval(`(location.hash = '#/audit', 'ok')`)
	poll("audit checkpoints verified", `document.querySelectorAll('[data-verify=ok]').length > 0 && document.querySelectorAll('[data-verify=bad]').length === 0`)

	// The sign-in's answer replayed: refused, the challenge is spent.
	mu.Lock()
	if len(loginBodies) != 1 || len(loginBodies[0]) == 0 {
		mu.Unlock()
		t.Fatalf("captured %d sign-in bodies", len(loginBodies))
	}
	replayed := loginBodies[0]
	mu.Unlock()
	if status, typ := anonymousPost(t, srv, "/v1/webauthn/login", replayed); status != http.StatusUnauthorized || typ != "webauthn-challenge-invalid" {
		t.Fatalf("the sign-in replayed: %d %s, want 401 webauthn-challenge-invalid", status, typ)
	}

	// Signing out revokes the session's device.
	signOut()
	if d := device(sess); d.Status != "revoked" {
		t.Fatalf("the session device after signing out: %+v", d)
	}

	// A passkey the server never registered: refused. Then alice's own,
	// put back: signs in (the control).
	creds, err := chromedp.Call(bctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authID})
	if err != nil || len(creds.Credentials) != 1 {
		t.Fatalf("the authenticator's credentials: %v %d", err, len(creds.Credentials))
	}
	real := creds.Credentials[0]
	if string(real.UserHandle) != "alice" || real.RpID != "localhost" {
		t.Fatalf("the passkey: user handle %q, RP id %q", real.UserHandle, real.RpID)
	}
	foreignKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(foreignKey)
	foreignID := make([]byte, 16)
	rand.Read(foreignID)
	ok(t, "clear", second(chromedp.Call(bctx, webauthn.ClearCredentials, webauthn.ClearCredentialsParams{AuthenticatorID: authID})))
	ok(t, "add a foreign passkey", second(chromedp.Call(bctx, webauthn.AddCredential, webauthn.AddCredentialParams{AuthenticatorID: authID,
		Credential: &webauthn.Credential{CredentialID: foreignID, IsResidentCredential: true, RpID: "localhost", PrivateKey: pkcs8, UserHandle: []byte("alice"), SignCount: 1}})))
	do("unknown passkey", click(`#passkey-signin`))
	poll("unknown passkey refused", `(document.querySelector('#passkey-error')?.textContent || '').startsWith('webauthn-credential-unknown')`)
	ok(t, "clear", second(chromedp.Call(bctx, webauthn.ClearCredentials, webauthn.ClearCredentialsParams{AuthenticatorID: authID})))
	real.CmtgKeys, real.ActiveCmtgKeyIndex = nil, nil // (as read back, not as added)
	ok(t, "put alice's passkey back", second(chromedp.Call(bctx, webauthn.AddCredential, webauthn.AddCredentialParams{AuthenticatorID: authID, Credential: real})))
	do("alice's passkey again", click(`#passkey-signin`), visible(`#nav-incidents`))

	// The session ends (1 min after its sign-in) with the Guard page open
	// (its alert stream reconnects with new tokens): the console says the
	// session expired and offers the sign-in; nobody is signed in in the
	// header, and no request keeps being refused (401, or 400 to a token
	// request).
	sess = session()
	var sd struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	ok(t, "the session device", admin.JSON(ctx, "GET", "/v1/devices/"+sess, "", nil, &sd))
	if sd.ExpiresAt.IsZero() || time.Until(sd.ExpiresAt) > time.Minute {
		t.Fatalf("the passkey session %s ends at %v, want within a minute", sess, sd.ExpiresAt)
	}
	eval(`(location.hash = '#/guard', 'ok')`)
	do("the guard page", visible(`#alerts-live[data-state=open]`))
	mu.Lock()
	before := len(unauthorized)
	mu.Unlock()
	time.Sleep(time.Until(sd.ExpiresAt) + time.Second)
	eval(`(location.hash = '#/audit', 'ok')`)
	poll("the console says the session expired", `!!document.querySelector('#session-ended') && !!document.querySelector('#passkey-signin')`)
	if txt := textOf(`#session-ended`); !strings.Contains(txt, "expired") || !strings.Contains(txt, "Sign in again") || !strings.Contains(txt, "device-expired") {
		t.Fatalf("the session-ended notice says %q", txt)
	}
	if n := eval(`String(document.querySelectorAll('#whoami, #forget, nav').length)`); n != "0" {
		t.Fatalf("%s signed-in elements (whoami, sign out, nav) still shown after the session ended", n)
	}
	mu.Lock()
	seen := len(unauthorized)
	mu.Unlock()
	if seen == before {
		t.Fatal("no request was refused after the session ended")
	}
	time.Sleep(3 * time.Second) // a loop of retries would show here
	mu.Lock()
	if len(unauthorized) != seen {
		t.Errorf("refusals went on after the console showed the session's end: %v", unauthorized[seen:])
	}
	t.Logf("refusals once the session ended: %v", unauthorized[before:])
	mu.Unlock()
	// Control: the passkey signs in again, a new session reads.
	do("sign in again after the session ended", click(`#passkey-signin`), visible(`#nav-incidents`))
	if who := textOf(`#whoami`); !strings.Contains(who, "alice (operator)") {
		t.Fatalf("header says %q", who)
	}
	ok(t, "list devices", admin.JSON(ctx, "GET", "/v1/devices?principal=alice", "", nil, &devs))
	fresh := 0
	for _, d := range devs.Devices {
		if d.ID != sess && d.Status == "approved" && strings.HasPrefix(d.ApprovedBy, "passkey:") {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d new passkey sessions after the ended %s: %+v", fresh, sess, devs)
	}
	eval(`(location.hash = '#/audit', 'ok')`)
	poll("audit checkpoints verified in the new session", `document.querySelectorAll('[data-verify=ok]').length > 0 && document.querySelectorAll('[data-verify=bad]').length === 0`)
	if n := eval(`String(document.querySelectorAll('#session-ended').length)`); n != "0" {
		t.Fatal("the session-ended notice stayed after signing in again")
	}

	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the browser reported problems: %v", problems)
	}
}

// anonymousPost posts body with a DPoP proof of a new key and returns the
// status and problem type.
func anonymousPost(t *testing.T, srv *server, path string, body []byte) (int, string) {
	t.Helper()
	key, err := dpop.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	url := srv.base + path
	proof, err := key.Proof("POST", url, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("DPoP", proof)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p struct{ Type string }
	json.Unmarshal(b, &p)
	return resp.StatusCode, strings.TrimPrefix(p.Type, "https://sekisho.dev/problems/")
}
