package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/internal/oidctest"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/internal/swtpmtest"
	"github.com/sekisho/sekisho/internal/testpki"
	"github.com/sekisho/sekisho/sso"
)

// startOIDCNode runs serve's node with an identity provider configured as
// serve --oidc-issuer/--oidc-client-id/--oidc-mapping configures it.
func startOIDCNode(t *testing.T, issuer, mapping string, more ...func(*nodeConfig)) (url, tokenFile string) {
	t.Helper()
	return startOIDCNodeOn(t, "", issuer, mapping, more...)
}

// startOIDCNodeOn is startOIDCNode on store ("" the embedded SQLite, or a
// postgres:// URL).
func startOIDCNodeOn(t *testing.T, store, issuer, mapping string, more ...func(*nodeConfig)) (url, tokenFile string) {
	t.Helper()
	setMasterKey(t)
	dir := t.TempDir()
	ctx := context.Background()
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Store: store, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	token, _, err := bootstrapToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(t.TempDir(), "oidc-mapping.yaml")
	if err := os.WriteFile(mf, []byte(mapping), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := oidcFlags{issuer: issuer, clientID: oidctest.ClientID, mapping: mf}
	idp, err := flags.provider()
	if err != nil {
		t.Fatal(err)
	}
	nc := nodeConfig{Token: token, Org: "operator", Region: "jp", DeviceDefault: access.DeviceAny, IdentityProvider: idp}
	for _, f := range more {
		f(&nc)
	}
	n, err := newNode(ctx, in, nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	srv := httptest.NewServer(n.srv)
	t.Cleanup(srv.Close)
	return srv.URL, filepath.Join(dir, bootstrapTokenFile)
}

// lineWriter hands each line written to it to a channel (the CLI's
// stderr, read while the command runs).
type lineWriter struct {
	buf   bytes.Buffer
	lines chan string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.Reset()
			w.buf.WriteString(line)
			return len(b), nil
		}
		select {
		case w.lines <- strings.TrimSpace(line):
		default:
		}
	}
}

// cliAsync runs the CLI in-process in the background: its stderr lines
// come on lines, its stdout and exit status on done.
func cliAsync(args ...string) (lines chan string, done chan [2]string) {
	lines, done = make(chan string, 100), make(chan [2]string, 1)
	go func() {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&lineWriter{lines: lines})
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(context.Background())
		code, msg := exitStatus(err)
		done <- [2]string{out.String(), strings.TrimSpace(fmt.Sprint(code) + " " + msg)}
	}()
	return lines, done
}

// waitLine returns the first stderr line matching re.
func waitLine(t *testing.T, lines chan string, done chan [2]string, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l := <-lines:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case r := <-done:
			t.Fatalf("the command ended before printing %s: %q", re, r)
		case <-timeout:
			t.Fatalf("no line %s", re)
		}
	}
}

func waitDone(t *testing.T, done chan [2]string) (stdout, status string) {
	t.Helper()
	select {
	case r := <-done:
		return r[0], r[1]
	case <-time.After(60 * time.Second):
		t.Fatal("the command did not end")
	}
	return "", ""
}

// rawRefresh asks POST /v1/token for a new token with the profile's device
// key, as every refresh does, and returns the status and the answer
// (RFC 6749 error and problem type on refusal).
func rawRefresh(t *testing.T, server, profile string) (int, map[string]any) {
	t.Helper()
	_, c, err := client.LoadProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	return rawToken(t, server, c.Key, "grant_type=client_credentials")
}

// rawToken posts form to POST /v1/token with a proof of key.
func rawToken(t *testing.T, server string, key *dpop.Key, form string) (int, map[string]any) {
	t.Helper()
	proof, err := key.ProofNonce("POST", server+"/v1/token", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", server+"/v1/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

const oidcTestMapping = `
org: operator
groups:
  sekisho-admins: [admin]
  staff: [member]
`

// TestLoginOIDC is the Must-show of single sign-on, against a real OpenID
// Connect provider (zitadel/oidc's OP over HTTP): alice signs in with
// login --oidc (authorization code + PKCE, her browser driven through the
// OP's login form to the loopback redirect), bob with --device-code; their
// groups give admin and member, which decides what each may do; carol, in
// no mapped group, gets nothing. bob, disabled at the IdP, is refused at
// his next token refresh with an OAuth invalid_grant, while alice still
// refreshes (control); alice signs in again with the key she has.
func TestLoginOIDC(t *testing.T) {
	op := oidctest.Start(t,
		oidctest.Person{ID: "alice", Password: "alice-pw", Email: "alice@example.jp", Groups: []string{"sekisho-admins"}},
		oidctest.Person{ID: "bob", Password: "bob-pw", Email: "bob@example.jp", Groups: []string{"staff"}},
		oidctest.Person{ID: "carol", Password: "carol-pw", Email: "carol@example.jp", Groups: []string{"finance"}})
	url, tokenFile := startOIDCNode(t, op.Issuer, oidcTestMapping)
	admin := filepath.Join(t.TempDir(), "admin")
	if out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin); code != 0 {
		t.Fatalf("bootstrap: %s", out)
	}
	// The server publishes its IdP.
	resp, err := http.Get(url + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta["sekisho_oidc_issuer"] != op.Issuer || meta["sekisho_oidc_client_id"] != oidctest.ClientID ||
		!strings.Contains(strings.Join(toStrings(meta["grant_types_supported"]), " "), "authorization_code") {
		t.Fatalf("metadata: %v", meta)
	}

	// alice: the browser flow.
	aliceDir := filepath.Join(t.TempDir(), "alice")
	browserLogin := func(dir, id, password string) (string, string) {
		lines, done := cliAsync("login", "--server", url, "--oidc", "--profile", dir, "--device-name", id+"-laptop")
		m := waitLine(t, lines, done, regexp.MustCompile(`^(http://\S+/auth\?\S+)$`))
		status, body, err := op.LogIn(oidctest.Browser(), m[1], id, password)
		if err != nil || status != http.StatusOK || !strings.Contains(body, "Return to the terminal") {
			t.Fatalf("%s at the OP: %d %v %.300s", id, status, err, body)
		}
		return waitDone(t, done)
	}
	out, status := browserLogin(aliceDir, "alice", "alice-pw")
	if status != "0" || !strings.Contains(out, "Signed in as alice (org operator, roles admin) through "+op.Issuer) {
		t.Fatalf("alice: %s %s", status, out)
	}
	aliceProfile, _, err := client.LoadProfile(aliceDir)
	if err != nil {
		t.Fatal(err)
	}

	// The device flow's polling, over HTTP: before the person approved the
	// code, the token endpoint answers RFC 8628's authorization_pending.
	l := &sso.Login{Issuer: op.Issuer, ClientID: oidctest.ClientID}
	_, pending, err := l.Device(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := dpop.GenerateKey("p256")
	if st, body := rawToken(t, url, k, pending.Encode()); st != http.StatusBadRequest || body["error"] != "authorization_pending" ||
		!strings.HasSuffix(body["type"].(string), access.ProblemAuthorizationPending) {
		t.Fatalf("device code not yet approved: %d %v", st, body)
	}

	// bob: the device flow (he approves the code in a browser elsewhere).
	bobDir := filepath.Join(t.TempDir(), "bob")
	lines, done := cliAsync("login", "--server", url, "--oidc", "--device-code", "--profile", bobDir)
	m := waitLine(t, lines, done, regexp.MustCompile(`enter the code (\S+)`))
	if err := op.ApproveDevice(oidctest.Browser(), m[1], "bob", "bob-pw"); err != nil {
		t.Fatal(err)
	}
	out, status = waitDone(t, done)
	if status != "0" || !strings.Contains(out, "Signed in as bob (org operator, roles member)") {
		t.Fatalf("bob: %s %s", status, out)
	}

	// The roles decide: alice (admin) creates a principal, bob (member) may not.
	create := func(profile, id string) (string, int) {
		return cli(t, "api", "--profile", profile, "POST", "/v1/principals", "--data", `{"id":"`+id+`","roles":["support"]}`)
	}
	if out, code := create(aliceDir, "dora"); code != 0 || !strings.Contains(out, `"dora"`) {
		t.Fatalf("alice (admin) creates a principal: %d %s", code, out)
	}
	if out, code := create(bobDir, "eve"); code == 0 || !strings.Contains(out, "admin-required") {
		t.Fatalf("bob (member) creates a principal: %d %s", code, out)
	}
	// The admin sees the devices the sign-ins enrolled, approved.
	out, code := cli(t, "api", "--profile", admin, "GET", "/v1/principals/bob")
	if code != 0 || !strings.Contains(out, `"issuer":"`+op.Issuer+`"`) || !strings.Contains(out, `"subject":"bob"`) {
		t.Fatalf("bob's principal: %s", out)
	}
	out, code = cli(t, "api", "--profile", admin, "GET", "/v1/devices/"+aliceProfile.Device)
	if code != 0 || !strings.Contains(out, `"status":"approved"`) || !strings.Contains(out, `"name":"alice-laptop"`) || !strings.Contains(out, `"key_storage":"file"`) {
		t.Fatalf("alice's device: %s", out)
	}

	// carol is in no group the mapping knows: refused, nothing enrolled.
	out, status = browserLogin(filepath.Join(t.TempDir(), "carol"), "carol", "carol-pw")
	if status == "0" || !strings.Contains(status, "sign-in-unmapped") {
		t.Fatalf("carol: %s %s", status, out)
	}
	if out, code := cli(t, "api", "--profile", admin, "GET", "/v1/principals/carol"); code == 0 {
		t.Fatalf("carol was created: %s", out)
	}

	// Refresh: both refresh while enabled; bob, disabled at the IdP, is
	// refused at his next refresh with an OAuth error; alice is not.
	if st, body := rawRefresh(t, url, bobDir); st != http.StatusOK || body["principal"] != "bob" {
		t.Fatalf("bob refreshes while enabled: %d %v", st, body)
	}
	op.Disable("bob")
	st, body := rawRefresh(t, url, bobDir)
	if st != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.HasSuffix(body["type"].(string), access.ProblemSessionRefused) ||
		!strings.Contains(body["error_description"].(string), "invalid_grant") {
		t.Fatalf("disabled bob refreshed: %d %v", st, body)
	}
	if st, body := rawRefresh(t, url, aliceDir); st != http.StatusOK || body["principal"] != "alice" {
		t.Fatalf("alice (control) refreshed: %d %v", st, body)
	}

	// The sign-ins and the refused refresh are audited (no token in them).
	out, code = cli(t, "api", "--profile", admin, "GET", "/v1/audit/events?limit=1000")
	var events struct {
		Events []struct {
			Event struct{ Action, Decision, Principal, Reason string }
		}
	}
	if err := json.Unmarshal([]byte(out), &events); code != 0 || err != nil {
		t.Fatalf("audit events: %d %v", code, err)
	}
	seen := map[string]bool{}
	for _, e := range events.Events {
		ev := e.Event
		seen[ev.Action+" "+ev.Decision+" "+ev.Principal] = true
		if ev.Action == "sign-in.refresh" && ev.Decision == "deny" && !strings.Contains(ev.Reason, "invalid_grant") {
			t.Errorf("refused refresh's reason: %q", ev.Reason)
		}
	}
	for _, want := range []string{"sign-in allow alice", "sign-in allow bob", "sign-in deny carol", "sign-in.refresh allow bob", "sign-in.refresh deny bob", "sign-in.refresh allow alice"} {
		if !seen[want] {
			t.Errorf("no audit event %q (have %v)", want, seen)
		}
	}

	// alice signs in again: the same device key, reused.
	out, status = browserLogin(aliceDir, "alice", "alice-pw")
	if status != "0" || !strings.Contains(out, "Device "+aliceProfile.Device+" (the profile's key), approved") {
		t.Fatalf("alice again: %s %s", status, out)
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

// TestLoginOIDCTPM: login --oidc --attest with the device key in a TPM
// (swtpm with an EK certificate of a maker the server trusts): the sign-in
// enrols it as key_storage tpm, attested, and the refreshes are signed
// there.
func TestLoginOIDCTPM(t *testing.T) {
	maker, err := testpki.NewCA("TPM maker")
	if err != nil {
		t.Fatal(err)
	}
	tpm := swtpmtest.Start(t)
	tpm.ProvisionEK(t, maker)
	op := oidctest.Start(t, oidctest.Person{ID: "alice", Password: "alice-pw", Email: "alice@example.jp", Groups: []string{"staff"}})
	url, tokenFile := startOIDCNode(t, op.Issuer, oidcTestMapping, func(c *nodeConfig) { c.TPMRoots = maker.Pool() })
	admin := filepath.Join(t.TempDir(), "admin")
	if out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin); code != 0 {
		t.Fatalf("bootstrap: %s", out)
	}
	dir := filepath.Join(t.TempDir(), "alice")
	lines, done := cliAsync("login", "--server", url, "--oidc", "--key-store", "tpm", "--tpm", tpm.TCTI, "--attest", "--profile", dir)
	m := waitLine(t, lines, done, regexp.MustCompile(`^(http://\S+/auth\?\S+)$`))
	if status, body, err := op.LogIn(oidctest.Browser(), m[1], "alice", "alice-pw"); err != nil || status != http.StatusOK {
		t.Fatalf("at the OP: %d %v %.300s", status, err, body)
	}
	out, status := waitDone(t, done)
	if status != "0" || !strings.Contains(out, "Signed in as alice (org operator, roles member)") || !strings.Contains(out, "(a new, attested key), approved") ||
		!strings.Contains(out, "lives in the TPM") {
		t.Fatalf("alice: %s %s", status, out)
	}
	if _, err := os.Stat(filepath.Join(dir, client.KeyFile)); err == nil {
		t.Fatal("a TPM profile holds a key file")
	}
	p, _, err := client.LoadProfile(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, code := cli(t, "api", "--profile", admin, "GET", "/v1/devices/"+p.Device)
	if code != 0 || !strings.Contains(out, `"key_storage":"tpm"`) || !strings.Contains(out, `"status":"approved"`) || !strings.Contains(out, `"attested":true`) {
		t.Fatalf("device: %s", out)
	}
	if st, body := rawRefresh(t, url, dir); st != http.StatusOK || body["principal"] != "alice" {
		t.Fatalf("refresh signed in the TPM: %d %v", st, body)
	}
	// Evidence that does not verify is refused before the IdP is asked
	// (the attested sign-in above is the control).
	k, _ := dpop.GenerateKey("p256")
	grant := "grant_type=authorization_code&code=c&code_verifier=" + strings.Repeat("v", 43) + "&redirect_uri=http://127.0.0.1/callback&nonce=n&key_storage=tpm"
	for _, ev := range []string{"{}", "not-json", `{"ek_cert":"AAAA"}`} {
		if st, body := rawToken(t, url, k, grant+"&attestation="+ev); st != http.StatusBadRequest || !strings.HasSuffix(body["type"].(string), access.ProblemAttestationInvalid) {
			t.Fatalf("attestation %s: %d %v", ev, st, body)
		}
	}
}

// idpRefresh redeems refreshToken at the OP's token endpoint directly, as
// a thief of it would (sekisho's client id is public), and returns the
// HTTP status.
func idpRefresh(t *testing.T, op *oidctest.OP, refreshToken string) int {
	t.Helper()
	resp, err := http.Get(op.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	resp, err = http.PostForm(disc.TokenEndpoint, map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		"client_id": {oidctest.ClientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOIDCConcurrentRefresh: the IdP (zitadel/oidc's OP) rotates refresh
// tokens and refuses one used already. Eight token requests of one
// signed-in device at the same moment all get a token and the IdP is
// never shown a refresh token twice (before, the requests each redeemed
// the same refresh token and all but one were refused
// sign-in-session-refused, the person being enabled). A later refresh goes to the IdP again (control). Then a thief
// who took the session's refresh token redeems it at the IdP first: the
// device's next refresh presents a used token, the IdP refuses it, and
// the session ends (RFC 9700 §4.14.2: the family is revoked): the refresh
// after that is refused without asking the IdP. Control: the person signs
// in again with the same key and refreshes.
//
// On SQLite and on PostgreSQL (the claim is the store's versioned write).
func TestOIDCConcurrentRefresh(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { concurrentRefresh(t, "") })
	t.Run("postgres", func(t *testing.T) { concurrentRefresh(t, pgtest.DSN(t)) })
}

func concurrentRefresh(t *testing.T, store string) {
	op := oidctest.Start(t, oidctest.Person{ID: "alice", Password: "alice-pw", Email: "alice@example.jp", Groups: []string{"staff"}})
	url, tokenFile := startOIDCNodeOn(t, store, op.Issuer, oidcTestMapping)
	if out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", filepath.Join(t.TempDir(), "admin")); code != 0 {
		t.Fatalf("bootstrap: %s", out)
	}
	dir := filepath.Join(t.TempDir(), "alice")
	signIn := func() {
		t.Helper()
		lines, done := cliAsync("login", "--server", url, "--oidc", "--profile", dir)
		m := waitLine(t, lines, done, regexp.MustCompile(`^(http://\S+/auth\?\S+)$`))
		if status, body, err := op.LogIn(oidctest.Browser(), m[1], "alice", "alice-pw"); err != nil || status != http.StatusOK {
			t.Fatalf("alice at the OP: %d %v %.300s", status, err, body)
		}
		if out, status := waitDone(t, done); status != "0" {
			t.Fatalf("alice: %s %s", status, out)
		}
	}
	signIn()

	before, refusedBefore := op.Refreshes(), op.RefusedRefreshes()
	const n = 8
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make(chan answer, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			st, body := rawRefresh(t, url, dir)
			answers <- answer{st, body}
		}()
	}
	close(start)
	for range n {
		a := <-answers
		if a.status != http.StatusOK || a.body["principal"] != "alice" {
			t.Errorf("a concurrent refresh: %d %v", a.status, a.body)
		}
	}
	// No refresh token was presented twice: the OP refused none. (How many
	// were redeemed depends on how the requests overlapped: one when all
	// eight met, more when some came after an earlier one had ended.)
	if got := op.RefusedRefreshes() - refusedBefore; got != 0 {
		t.Errorf("the IdP refused %d refresh tokens of the concurrent refreshes (used twice)", got)
	}
	if got := op.Refreshes() - before; got < 1 || got > n {
		t.Errorf("%d concurrent refreshes redeemed %d refresh tokens at the IdP", n, got)
	} else {
		t.Logf("%d concurrent refreshes, %d redemptions at the IdP", n, got)
	}
	// Control: a refresh after them goes to the IdP again.
	before = op.Refreshes()
	if st, body := rawRefresh(t, url, dir); st != http.StatusOK {
		t.Fatalf("refresh after the concurrent ones: %d %v", st, body)
	}
	if got := op.Refreshes() - before; got != 1 {
		t.Fatalf("the later refresh: %d redemptions, want 1", got)
	}

	// A thief redeems the session's current refresh token first.
	if st := idpRefresh(t, op, op.LatestRefreshToken("alice")); st != http.StatusOK {
		t.Fatalf("the thief's redemption at the OP: HTTP %d", st)
	}
	st, body := rawRefresh(t, url, dir)
	if st != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.HasSuffix(fmt.Sprint(body["type"]), access.ProblemSessionRefused) {
		t.Fatalf("refresh with the used token: %d %v", st, body)
	}
	asked := op.Refreshes()
	st, body = rawRefresh(t, url, dir)
	if st != http.StatusBadRequest || !strings.HasSuffix(fmt.Sprint(body["type"]), access.ProblemSessionRefused) ||
		!strings.Contains(fmt.Sprint(body["error_description"]), "session ended") {
		t.Fatalf("refresh after the session ended: %d %v", st, body)
	}
	if op.Refreshes() != asked {
		t.Fatal("the ended session's refresh went to the IdP")
	}
	// Control: alice signs in again (the same key) and refreshes.
	signIn()
	if st, body := rawRefresh(t, url, dir); st != http.StatusOK || body["principal"] != "alice" {
		t.Fatalf("refresh after signing in again: %d %v", st, body)
	}
}

// TestOIDCDeviceWithoutSession: a person who signed in through the IdP
// also has a device enrolled the old way (login --principal, approved by
// an admin), which has no sign-in session of its own. Its refreshes renew
// the person's live session at the IdP (control: it refreshes while the
// person is enabled, and the IdP is asked); once the IdP disabled the
// person it is refused like the signed-in device (before, it kept getting
// tokens: only devices with a session were checked at the IdP).
func TestOIDCDeviceWithoutSession(t *testing.T) {
	op := oidctest.Start(t, oidctest.Person{ID: "alice", Password: "alice-pw", Email: "alice@example.jp", Groups: []string{"staff"}})
	url, tokenFile := startOIDCNode(t, op.Issuer, oidcTestMapping)
	admin := filepath.Join(t.TempDir(), "admin")
	if out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin); code != 0 {
		t.Fatalf("bootstrap: %s", out)
	}
	signedIn := filepath.Join(t.TempDir(), "alice")
	lines, done := cliAsync("login", "--server", url, "--oidc", "--profile", signedIn)
	m := waitLine(t, lines, done, regexp.MustCompile(`^(http://\S+/auth\?\S+)$`))
	if status, body, err := op.LogIn(oidctest.Browser(), m[1], "alice", "alice-pw"); err != nil || status != http.StatusOK {
		t.Fatalf("alice at the OP: %d %v %.300s", status, err, body)
	}
	if out, status := waitDone(t, done); status != "0" {
		t.Fatalf("alice: %s %s", status, out)
	}
	// Her second device, the old way.
	old := filepath.Join(t.TempDir(), "alice-old")
	out, code := cli(t, "login", "--server", url, "--principal", "alice", "--profile", old)
	if code != 0 {
		t.Fatalf("login --principal alice: %s", out)
	}
	p, _, err := client.LoadProfile(old)
	if err != nil {
		t.Fatal(err)
	}
	if out, code := cli(t, "device", "approve", "--profile", admin, "--", p.Device); code != 0 {
		t.Fatalf("approve: %s", out)
	}
	before := op.Refreshes()
	if st, body := rawRefresh(t, url, old); st != http.StatusOK || body["principal"] != "alice" {
		t.Fatalf("the old device while alice is enabled: %d %v", st, body)
	}
	if op.Refreshes() != before+1 {
		t.Fatalf("the old device's refresh did not ask the IdP (%d redemptions, want %d)", op.Refreshes(), before+1)
	}
	op.Disable("alice")
	for _, dir := range []string{old, signedIn, old} {
		st, body := rawRefresh(t, url, dir)
		if st != http.StatusBadRequest || !strings.HasSuffix(fmt.Sprint(body["type"]), access.ProblemSessionRefused) {
			t.Fatalf("%s after alice was disabled: %d %v", filepath.Base(dir), st, body)
		}
	}
	// The admin's device (no identity) is not concerned (control).
	if st, body := rawRefresh(t, url, admin); st != http.StatusOK {
		t.Fatalf("the admin: %d %v", st, body)
	}
}
