package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
)

// The tests in this file run the built binary, as a script would: its exit
// status and its stderr are what a revocation script relies on.

var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

// binary builds cmd/sekisho once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sekisho-cli-test-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "sekisho")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, ".")
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("go build: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.path
}

// run runs the binary with args and returns stdout, stderr and the exit status.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "SEKISHO_PROFILE="+filepath.Join(t.TempDir(), "no-profile"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run sekisho: %v", err)
	}
	t.Logf("sekisho %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
	return out.String(), errb.String(), code
}

func TestUnknownCommandsFail(t *testing.T) {
	tests := []struct {
		args    []string
		message string // on stderr
		suggest string // the closest verb, on stderr
	}{
		{[]string{"grant", "revok", "ID"}, `unknown command "revok" for "sekisho grant"`, "\trevoke"},
		{[]string{"grnt", "list"}, `unknown command "grnt" for "sekisho"`, "\tgrant"},
		{[]string{"device", "aprove", "ID"}, `unknown command "aprove" for "sekisho device"`, "\tapprove"},
		{[]string{"guard", "rules", "lst"}, `unknown command "lst" for "sekisho guard rules"`, "\tlist"},
		{[]string{"incident", "scop"}, `unknown command "scop" for "sekisho incident"`, "\tscope"},
		{[]string{"audit", "verfy"}, `unknown command "verfy" for "sekisho audit"`, "\tverify"},
		{[]string{"quarantine", "lift-all"}, `unknown command "lift-all" for "sekisho quarantine"`, ""},
		{[]string{"version", "extra"}, `unknown command "extra" for "sekisho version"`, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := run(t, tt.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errOut, tt.message) || !strings.Contains(errOut, tt.suggest) {
				t.Fatalf("stderr %q, want %q and %q", errOut, tt.message, tt.suggest)
			}
			if out != "" {
				t.Fatalf("printed %q on stdout (help instead of an error?)", out)
			}
		})
	}
	// Positive controls: a group without a verb prints its help, and a known
	// verb runs.
	if out, _, code := run(t, "grant"); code != 0 || !strings.Contains(out, "revoke") {
		t.Fatalf("sekisho grant: exit %d\n%s", code, out)
	}
	if out, _, code := run(t, "version"); code != 0 || !strings.HasPrefix(out, "sekisho ") {
		t.Fatalf("sekisho version: exit %d %q", code, out)
	}
}

func TestHelpDocumentsExitCodes(t *testing.T) {
	out, _, code := run(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"0  success", "1  the server refused", "2  usage error", "3  partial", "4  could not reach the server", "5  tampering detected"} {
		if !strings.Contains(out, want) {
			t.Errorf("sekisho --help does not say %q", want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	url, tokenFile := startServer(t)
	admin := filepath.Join(t.TempDir(), "admin")
	if _, _, code := run(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin); code != 0 {
		t.Fatalf("login: exit %d", code)
	}
	// A profile whose server is gone: listen, note the address, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	gone := filepath.Join(t.TempDir(), "gone")
	copyProfile(t, admin, gone, dead)

	dir, _ := auditDataDir(t)
	tampered, _ := auditDataDir(t)
	sqlExec(t, openRaw(t, tampered), `UPDATE audit_events SET leaf = ? WHERE idx = 123`, forgedLeaf(123))
	bad := filepath.Join(t.TempDir(), "users.ndjson")
	os.WriteFile(bad, []byte(`{"region":"jp","fields":{"display_name":"Hanako","phone":"+81 90-1234-5678"}}`+"\n"+
		`{"region":"jp","fields":{"display_name":"Taro","phone":"not a phone"}}`+"\n"), 0o600)

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"success", []string{"org", "list", "--profile", admin}, exitOK, ""},
		{"refused: problem type printed", []string{"org", "get", "no-such-org", "--profile", admin}, exitRefused, "not-found"},
		{"refused: api non-2xx", []string{"api", "--profile", admin, "GET", "/v1/collections/users/records/aaaaaaaaaaaaaaaaaaaaaaaaaa"}, exitRefused, ""},
		{"usage: unknown flag", []string{"org", "list", "--profil", admin}, exitUsage, "unknown flag: --profil"},
		{"usage: unknown format", []string{"org", "list", "--profile", admin, "--format", "yaml"}, exitUsage, `invalid argument "yaml" for "--format"`},
		{"usage: missing argument", []string{"grant", "revoke", "--profile", admin}, exitUsage, "accepts 1 arg"},
		{"usage: no profile", []string{"org", "list", "--profile", filepath.Join(t.TempDir(), "none")}, exitUsage, "run sekisho login first"},
		{"usage: login without --server", []string{"login", "--principal", "bob", "--server", ""}, exitUsage, "--server"},
		{"partial: import rows rejected", []string{"import", "--data", filepath.Join(t.TempDir(), "import-data"), "users", bad}, exitPartial, "1 rows were rejected"},
		{"unreachable", []string{"org", "list", "--profile", gone}, exitUnreachable, "is `sekisho serve` running at " + dead},
		{"unreachable: api", []string{"api", "--profile", gone, "GET", "/v1/whoami"}, exitUnreachable, "could not reach the server at " + dead},
		{"audit verify: clean", []string{"audit", "verify", "--data", dir}, exitOK, ""},
		{"audit verify: tampered", []string{"audit", "verify", "--data", tampered}, exitTampered, "tampered with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut, tt.code, tt.stderr)
			}
		})
	}
}

// copyProfile copies the profile in src to dst with another server URL.
func copyProfile(t *testing.T, src, dst, server string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"device-key.pem", "profile.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "profile.json" {
			var p map[string]any
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			p["server"] = server
			b, _ = json.Marshal(p)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// runJSON runs the binary with args (and --format json), wants exit 0 and
// decodes stdout into v.
func runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	i := slices.Index(args, "--") // flags go before "--"
	if i < 0 {
		i = len(args)
	}
	out, errOut, code := run(t, slices.Concat(args[:i], []string{"--format", "json"}, args[i:])...)
	if code != 0 {
		t.Fatalf("sekisho %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("sekisho %s --format json: %v\n%s", strings.Join(args, " "), err, out)
	}
	if dec.More() {
		t.Fatalf("sekisho %s --format json printed more than one document:\n%s", strings.Join(args, " "), out)
	}
}

func TestLoginRefusesToOverwriteAProfile(t *testing.T) {
	url, tokenFile := startServer(t)
	admin := filepath.Join(t.TempDir(), "admin")
	var first loginResult
	runJSON(t, &first, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin)
	if first.Principal != "admin" || first.Status != "approved" || first.Device == "" || first.Profile != admin {
		t.Fatalf("login --format json: %+v", first)
	}
	run(t, "principal", "create", "bob", "--role", "member", "--profile", admin)
	keyBefore, _ := os.ReadFile(filepath.Join(admin, "device-key.pem"))

	// Into the admin's profile: refused, nothing changed, nothing enrolled.
	_, errOut, code := run(t, "login", "--server", url, "--principal", "bob", "--profile", admin)
	if code != exitUsage || !strings.Contains(errOut, "already holds device "+first.Device+" of admin") ||
		!strings.Contains(errOut, "--force") || !strings.Contains(errOut, "sekisho device revoke -- "+first.Device) {
		t.Fatalf("login over a profile: exit %d: %s", code, errOut)
	}
	if keyAfter, _ := os.ReadFile(filepath.Join(admin, "device-key.pem")); !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("the refused login changed the device key")
	}
	var devs struct{ Devices []map[string]any }
	runJSON(t, &devs, "device", "list", "--principal", "bob", "--profile", admin)
	if len(devs.Devices) != 0 {
		t.Fatalf("the refused login enrolled a device: %v", devs.Devices)
	}
	var who map[string]any
	runJSON(t, &who, "whoami", "--profile", admin)
	if who["principal"] != "admin" || who["device"] != first.Device {
		t.Fatalf("the admin's profile no longer works: %v", who)
	}

	// With --force: replaced, and the abandoned device is named with the
	// command that revokes it.
	out, errOut, code := run(t, "login", "--server", url, "--principal", "bob", "--profile", admin, "--force")
	if code != 0 || !strings.Contains(errOut, "device "+first.Device+" of admin (org operator) at "+url+" is abandoned") ||
		!strings.Contains(errOut, "sekisho device revoke -- "+first.Device) || !strings.Contains(out, "pending approval") {
		t.Fatalf("login --force: exit %d\n%s\n%s", code, out, errOut)
	}
	if keyAfter, _ := os.ReadFile(filepath.Join(admin, "device-key.pem")); bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("login --force kept the old key")
	}
}

// TestTokenRenewedAfterQuarantineLift: a token issued before a quarantine
// stays refused after the lift; the CLI gets a new one with the device key
// and retries once, instead of failing.
func TestTokenRenewedAfterQuarantineLift(t *testing.T) {
	url, tokenFile := startNode(t)
	admin := filepath.Join(t.TempDir(), "admin")
	run(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin)
	var hts struct{ Honeytokens []struct{ ID string } }
	runJSON(t, &hts, "honeytoken", "create", "users", "--region", "jp", "--count", "1", "--profile", admin)
	run(t, "principal", "create", "carol", "--role", "member", "--profile", admin)
	carol := filepath.Join(t.TempDir(), "carol")
	var lr loginResult
	runJSON(t, &lr, "login", "--server", url, "--principal", "carol", "--profile", carol)
	if _, _, code := run(t, "device", "approve", "--profile", admin, "--", lr.Device); code != 0 {
		t.Fatalf("approve: exit %d", code)
	}
	var who map[string]any
	runJSON(t, &who, "whoami", "--profile", carol)
	tokenBefore, _ := os.ReadFile(filepath.Join(carol, "token.json"))

	// Touching the decoy quarantines carol and her device.
	run(t, "api", "--profile", carol, "GET", "/v1/collections/users/records/"+hts.Honeytokens[0].ID, "-H", "Sekisho-Purpose: support")
	if _, errOut, code := run(t, "whoami", "--profile", carol); code != exitRefused || !strings.Contains(errOut, "quarantined") {
		t.Fatalf("quarantined: exit %d %s", code, errOut)
	}
	// A lift without --reason is refused before anything is sent; carol
	// stays quarantined.
	if _, errOut, code := run(t, "quarantine", "lift", "--profile", admin, "--", "principal:carol"); code == 0 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("lift without --reason: exit %d %s", code, errOut)
	}
	if _, errOut, code := run(t, "whoami", "--profile", carol); code != exitRefused || !strings.Contains(errOut, "quarantined") {
		t.Fatalf("after a lift without a reason: exit %d %s", code, errOut)
	}
	for _, id := range []string{"principal:carol", "device:" + lr.Device} {
		if _, _, code := run(t, "quarantine", "lift", "--profile", admin, "--reason", "carol read the decoy in a drill", "--", id); code != 0 {
			t.Fatalf("lift %s: exit %d", id, code)
		}
	}
	time.Sleep(1100 * time.Millisecond) // a new token's iat (whole seconds) after the quarantine

	// The cached token predates the quarantine: the server refuses it, and
	// the CLI renews it and succeeds.
	// (The refused calls above may have fetched and cached a newer token;
	// put back the one issued before the quarantine.)
	if err := os.WriteFile(filepath.Join(carol, "token.json"), tokenBefore, 0o600); err != nil {
		t.Fatal(err)
	}
	runJSON(t, &who, "whoami", "--profile", carol)
	if who["principal"] != "carol" {
		t.Fatalf("whoami after the lift: %v", who)
	}
	if tok, _ := os.ReadFile(filepath.Join(carol, "token.json")); bytes.Equal(tok, tokenBefore) {
		t.Fatal("the token was not renewed")
	}
	// A token that is not valid at all (revoked, garbled) is renewed too.
	os.WriteFile(filepath.Join(carol, "token.json"), []byte(`{"access_token":"garbled","token_type":"DPoP","expires_at":"2999-01-01T00:00:00Z"}`), 0o600)
	runJSON(t, &who, "whoami", "--profile", carol)
}

// startNode runs a node wired as serve wires it (access, guard, HTTP API)
// on an httptest.Server and returns its URL and the bootstrap token file.
func startNode(t *testing.T) (url, tokenFile string) {
	t.Helper()
	setMasterKey(t)
	return startNodeOn(t, t.TempDir())
}

// startNodeOn is startNode on an existing data directory (serve --data DIR).
func startNodeOn(t *testing.T, dir string) (url, tokenFile string) {
	t.Helper()
	ctx := context.Background()
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	token, _, err := bootstrapToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The tests' devices are file keys (the default device requirement is
	// tested by TestDevicePolicyTPM).
	n, err := newNode(ctx, in, nodeConfig{Token: token, Org: "operator", Region: "jp", DeviceDefault: access.DeviceAny})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	srv := httptest.NewServer(n.srv)
	t.Cleanup(srv.Close)
	return srv.URL, filepath.Join(dir, bootstrapTokenFile)
}

// TestJSONOutput: every verb that prints takes --format json and prints one
// JSON document a script can parse (no sed); the scope carries what its
// table shows.
func TestJSONOutput(t *testing.T) {
	url, tokenFile := startNode(t)
	admin := filepath.Join(t.TempDir(), "admin")
	var lr loginResult
	runJSON(t, &lr, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin)
	p := []string{"--profile", admin}

	var who struct{ Principal, Org, Device, Server string }
	runJSON(t, &who, append([]string{"whoami"}, p...)...)
	if who.Principal != "admin" || who.Org != "operator" || who.Device != lr.Device || who.Server != url {
		t.Fatalf("whoami: %+v", who)
	}
	var ver struct{ Version string }
	if runJSON(t, &ver, "version"); ver.Version == "" {
		t.Fatal("version: empty")
	}
	var org struct{ ID, Status string }
	if runJSON(t, &org, append([]string{"org", "create", "affiliate", "--home-region", "jp"}, p...)...); org.ID != "affiliate" {
		t.Fatalf("org create: %+v", org)
	}
	var orgs struct{ Orgs []struct{ ID string } }
	if runJSON(t, &orgs, append([]string{"org", "list"}, p...)...); len(orgs.Orgs) != 2 {
		t.Fatalf("org list: %+v", orgs)
	}
	var pr struct{ ID, Org string }
	if runJSON(t, &pr, append([]string{"principal", "create", "bob", "--org", "affiliate", "--role", "member"}, p...)...); pr.ID != "bob" || pr.Org != "affiliate" {
		t.Fatalf("principal create: %+v", pr)
	}
	var bobLogin loginResult
	bob := filepath.Join(t.TempDir(), "bob")
	runJSON(t, &bobLogin, "login", "--server", url, "--principal", "bob", "--profile", bob)
	if bobLogin.Status != "pending" || bobLogin.Approve != "sekisho device approve -- "+bobLogin.Device {
		t.Fatalf("login --principal: %+v", bobLogin)
	}
	var dev struct{ ID, Status string }
	if runJSON(t, &dev, "device", "approve", "--profile", admin, "--", bobLogin.Device); dev.ID != bobLogin.Device || dev.Status != "approved" {
		t.Fatalf("device approve: %+v", dev)
	}
	var grant struct{ ID, Status string }
	if runJSON(t, &grant, append([]string{"grant", "create", "--to", "affiliate", "--collection", "users", "--field", "phone", "--region", "jp", "--purpose", "support"}, p...)...); grant.ID == "" {
		t.Fatalf("grant create: %+v", grant)
	}
	var rules struct{ Rules []struct{ ID string } }
	if runJSON(t, &rules, append([]string{"guard", "rules", "list"}, p...)...); len(rules.Rules) == 0 {
		t.Fatal("guard rules list: none")
	}

	// bob reads one of the operator's records under the grant.
	var rec struct{ ID string }
	recOut, _, _ := run(t, "api", "--profile", admin, "POST", "/v1/collections/users/records", "-H", "Sekisho-Purpose: support",
		"--data", `{"region":"jp","fields":{"display_name":"Hanako","phone":"+81 90-1111-2222","email":"hanako@example.jp"}}`)
	if err := json.Unmarshal([]byte(recOut), &rec); err != nil || rec.ID == "" {
		t.Fatalf("create record: %v %s", err, recOut)
	}
	if _, _, code := run(t, "api", "--profile", bob, "GET", "/v1/collections/users/records/"+rec.ID+"?fields=phone", "-H", "Sekisho-Purpose: support"); code != 0 {
		t.Fatalf("bob's read under the grant: exit %d", code)
	}
	var in struct {
		ID         string
		Principals []string
	}
	runJSON(t, &in, append([]string{"incident", "open", "--principal", "bob", "--since", "2000-01-01T00:00:00Z", "--cause", "unauthorized-access"}, p...)...)
	if !strings.HasPrefix(in.ID, "inc-") || len(in.Principals) != 1 {
		t.Fatalf("incident open: %+v", in)
	}
	var list struct{ Incidents []struct{ ID string } }
	if runJSON(t, &list, append([]string{"incident", "list"}, p...)...); len(list.Incidents) != 1 || list.Incidents[0].ID != in.ID {
		t.Fatalf("incident list: %+v", list)
	}
	var sc map[string]json.RawMessage
	runJSON(t, &sc, append([]string{"incident", "scope", "--incident", in.ID}, p...)...)
	for _, k := range []string{"incident", "suspects", "window", "events_read", "log_size", "subjects_exposed", "fields_exposed",
		"subjects_possible", "denied_attempts", "worst_case_subjects", "worst_case", "by_collection", "by_region", "by_classification"} {
		if sc[k] == nil {
			t.Errorf("incident scope --format json has no %q (the table shows it)", k)
		}
	}
	table, _, _ := run(t, append([]string{"incident", "scope", "--incident", in.ID}, p...)...)
	var logSize int
	json.Unmarshal(sc["log_size"], &logSize)
	if logSize == 0 || !strings.Contains(table, fmt.Sprintf("of a log of %d", logSize)) {
		t.Errorf("log_size %d is not the table's:\n%s", logSize, table)
	}
	var worst []struct{ Collection, Org string }
	json.Unmarshal(sc["worst_case"], &worst)
	if len(worst) == 0 || !strings.Contains(table, "WORST CASE") {
		t.Errorf("worst_case %v, table:\n%s", worst, table)
	}
	var notices struct {
		Incident string
		Regions  []struct {
			Region, List string
			Persons      int
			Notices      []string
		}
	}
	runJSON(t, &notices, append([]string{"incident", "notices", "--incident", in.ID, "--out", filepath.Join(t.TempDir(), "notices")}, p...)...)
	if notices.Incident != in.ID || len(notices.Regions) != 1 || notices.Regions[0].Region != "jp" || notices.Regions[0].Persons != 1 || len(notices.Regions[0].Notices) == 0 {
		t.Fatalf("incident notices: %+v", notices)
	}
	var rep struct{ Kind string }
	runJSON(t, &rep, append([]string{"report", "appi", "--incident", in.ID}, p...)...)

	data := filepath.Dir(tokenFile)
	var vr struct{ OK bool }
	if runJSON(t, &vr, "audit", "verify", "--data", data); !vr.OK {
		t.Fatal("audit verify: not OK")
	}
	var bk struct {
		File     string
		Manifest struct {
			AuditSize uint64 `json:"audit_size"`
		}
	}
	backupFile := filepath.Join(t.TempDir(), "b.tar.gz")
	if runJSON(t, &bk, "backup", "--data", data, "--out", backupFile); bk.File != backupFile || bk.Manifest.AuditSize == 0 {
		t.Fatalf("backup: %+v", bk)
	}
	var rs struct {
		Data     string
		Manifest struct {
			AuditSize uint64 `json:"audit_size"`
		}
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if runJSON(t, &rs, "restore", "--from", backupFile, "--data", restored); rs.Data != restored || rs.Manifest.AuditSize != bk.Manifest.AuditSize {
		t.Fatalf("restore: %+v", rs)
	}
	// Unknown formats are usage errors, on every verb.
	for _, args := range [][]string{{"whoami"}, {"version"}, {"incident", "list"}, {"login", "--server", url, "--principal", "bob"}, {"org", "list"}, {"audit", "verify", "--data", data}} {
		if _, errOut, code := run(t, append(args, "--format", "yaml")...); code != exitUsage || !strings.Contains(errOut, `invalid argument "yaml" for "--format"`) {
			t.Errorf("%v --format yaml: exit %d %s", args, code, errOut)
		}
	}
}

// TestImportJSONSummary: import --format json prints its summary as one
// JSON document (also when rows were rejected: exit 3, with each rejected
// row's line), the input's format is --input-format, and a --format csv is
// a usage error that points at --input-format.
func TestImportJSONSummary(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "import-data")
	nd := filepath.Join(dir, "users.ndjson")
	os.WriteFile(nd, []byte(`{"region":"jp","fields":{"display_name":"Hanako","phone":"+81 90-1234-5678"}}`+"\n"+
		`{"region":"jp","fields":{"display_name":"Taro","phone":"not a phone"}}`+"\n"+
		`{"region":"jp","fields":{"display_name":"Jiro"}}`+"\n"), 0o600)
	type summary struct {
		Imported, Rejected, Existing int
		Complete                     bool
		Format                       string `json:"input_format"`
		Rejections                   []struct {
			Line  int
			Error string
		}
	}
	out, errOut, code := run(t, "import", "--data", data, "--format", "json", "users", nd)
	if code != exitPartial || !strings.Contains(errOut, "line 2: ") {
		t.Fatalf("exit %d, stderr %q; want exit %d and line 2 reported", code, errOut, exitPartial)
	}
	var s summary
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&s); err != nil || dec.More() {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if s.Imported != 2 || s.Rejected != 1 || !s.Complete || s.Format != "ndjson" || len(s.Rejections) != 1 || s.Rejections[0].Line != 2 ||
		!strings.Contains(s.Rejections[0].Error, "phone") {
		t.Fatalf("summary %+v", s)
	}
	var keys map[string]json.RawMessage
	json.Unmarshal([]byte(out), &keys)
	for _, k := range []string{"collection", "file", "input_format", "imported", "rejected", "existing", "elapsed_seconds", "records_per_second", "complete", "rejections"} {
		if keys[k] == nil {
			t.Errorf("summary has no %q: %s", k, out)
		}
	}
	// CSV named by --input-format (the name says nothing), exit 0.
	csvFile := filepath.Join(dir, "users.export")
	os.WriteFile(csvFile, []byte("region,display_name\njp,Saburo\n"), 0o600)
	out, errOut, code = run(t, "import", "--data", data, "--input-format", "csv", "--format", "json", "users", csvFile)
	s = summary{}
	if code != exitOK || json.Unmarshal([]byte(out), &s) != nil || s.Imported != 1 || s.Rejected != 0 || s.Format != "csv" || len(s.Rejections) != 0 {
		t.Fatalf("csv: exit %d %+v\n%s%s", code, s, out, errOut)
	}
	// The table summary is unchanged (the positive control of the format).
	out, _, code = run(t, "import", "--data", data, "--input-format", "csv", "users", csvFile)
	if code != exitOK || !strings.HasPrefix(out, "imported 1 records, rejected 0") {
		t.Fatalf("table: exit %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "csv"}, "--input-format csv"},
		{[]string{"--format", "yaml"}, `invalid argument "yaml" for "--format"`},
		{[]string{"--input-format", "xml"}, `--input-format "xml"`},
	} {
		args := append(append([]string{"import", "--data", data}, tc.args...), "users", csvFile)
		if out, errOut, code := run(t, args...); code != exitUsage || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// TestPurposes: sekisho purposes says which roles and grants allow each
// purpose, and a request with an unknown purpose is refused with the list.
func TestPurposes(t *testing.T) {
	url, tokenFile := startNode(t)
	admin := filepath.Join(t.TempDir(), "admin")
	run(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin)
	run(t, "org", "create", "affiliate", "--home-region", "jp", "--profile", admin)
	var g struct{ ID string }
	runJSON(t, &g, "grant", "create", "--to", "affiliate", "--collection", "users", "--field", "phone", "--region", "jp", "--purpose", "fraud", "--profile", admin)

	var res struct {
		Purposes []struct {
			Purpose string
			Roles   map[string][]string
			Grants  []struct {
				ID         string
				GranteeOrg string `json:"grantee_org"`
			}
		}
	}
	runJSON(t, &res, "purposes", "--profile", admin)
	by := map[string]int{}
	for i, p := range res.Purposes {
		by[p.Purpose] = i
	}
	for _, want := range []string{"support", "payroll", "fraud", "security", "ops", "import"} {
		if _, ok := by[want]; !ok {
			t.Fatalf("purposes: %q missing from %+v", want, res.Purposes)
		}
	}
	support := res.Purposes[by["support"]]
	if !slices.Contains(support.Roles["support"], "read") || slices.Contains(support.Roles["support"], "create") ||
		!slices.Contains(support.Roles["member"], "create") || support.Roles["service"] != nil || len(support.Grants) != 0 {
		t.Fatalf("support: %+v (the default policies: support staff read, members create, services never)", support)
	}
	if imp := res.Purposes[by["import"]]; !slices.Contains(imp.Roles["service"], "import") || imp.Roles["member"] != nil {
		t.Fatalf("import: %+v", imp)
	}
	if fr := res.Purposes[by["fraud"]]; len(fr.Grants) != 1 || fr.Grants[0].ID != g.ID || fr.Grants[0].GranteeOrg != "affiliate" {
		t.Fatalf("fraud grants: %+v", fr.Grants)
	}
	table, _, code := run(t, "purposes", "--profile", admin)
	if code != 0 || !strings.Contains(table, "PURPOSE") || !strings.Contains(table, g.ID+" (operator to affiliate)") {
		t.Fatalf("purposes table: exit %d\n%s", code, table)
	}

	// An unknown purpose: refused, and the problem lists the known ones.
	out, _, code := run(t, "api", "--profile", admin, "GET", "/v1/collections/users/records/aaaaaaaaaaaaaaaaaaaaaaaaaa", "-H", "Sekisho-Purpose: curiosity")
	var p struct {
		Type, Detail string
		Purposes     []string
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != exitRefused {
		t.Fatalf("unknown purpose: exit %d %v %s", code, err, out)
	}
	if !strings.HasSuffix(p.Type, "/purpose-unknown") || !slices.Contains(p.Purposes, "support") || len(p.Purposes) != len(res.Purposes) ||
		!strings.Contains(p.Detail, "support, payroll") {
		t.Fatalf("purpose-unknown problem: %+v", p)
	}
	// Positive control: a known purpose gets past the purpose check.
	out, _, _ = run(t, "api", "--profile", admin, "GET", "/v1/collections/users/records/aaaaaaaaaaaaaaaaaaaaaaaaaa", "-H", "Sekisho-Purpose: support")
	if strings.Contains(out, "purpose-unknown") || !strings.Contains(out, "not-found") {
		t.Fatalf("known purpose: %s", out)
	}
}

// TestDeviceIDStartingWithDash: a device id is a base64url thumbprint and
// may start with "-"; after "--" every verb takes it, and the commands the
// CLI prints put it there.
func TestDeviceIDStartingWithDash(t *testing.T) {
	url, tokenFile := startNode(t)
	admin := filepath.Join(t.TempDir(), "admin")
	run(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin)
	run(t, "principal", "create", "bob", "--role", "member", "--profile", admin)
	// A thumbprint starting with one "-" (1 in 64 keys; one starting with
	// "--", 1 in 4096, reads as a long flag: checked below on its own, as
	// "--" and the id from its third character, which must then not be a
	// "-" too: "---..." is a different usage error).
	var key *dpop.Key
	for key == nil || !strings.HasPrefix(key.Thumbprint(), "-") || strings.HasPrefix(key.Thumbprint(), "--") || key.Thumbprint()[2] == '-' {
		var err error
		if key, err = dpop.GenerateKey("ed25519"); err != nil {
			t.Fatal(err)
		}
	}
	id := key.Thumbprint()
	d, err := client.New(url, key).Enrol(context.Background(), "bob", "laptop")
	if err != nil || d.ID != id {
		t.Fatalf("enrol: %v %+v", err, d)
	}
	// Without "--" the id reads as flags: a usage error, nothing approved.
	if _, errOut, code := run(t, "device", "approve", "--profile", admin, id); code != exitUsage || !strings.Contains(errOut, "unknown shorthand flag") {
		t.Fatalf("approve %s without --: exit %d %s", id, code, errOut)
	}
	long := "--" + id[2:] // an id starting with "--" reads as a long flag
	if _, errOut, code := run(t, "device", "approve", "--profile", admin, long); code != exitUsage || !strings.Contains(errOut, "unknown flag: "+long) {
		t.Fatalf("approve %s without --: exit %d %s", long, code, errOut)
	}
	var dev struct{ ID, Status string }
	var devs struct{ Devices []struct{ ID, Status string } }
	runJSON(t, &devs, "device", "list", "--principal", "bob", "--profile", admin)
	if len(devs.Devices) != 1 || devs.Devices[0].Status != "pending" {
		t.Fatalf("devices: %+v", devs)
	}
	if runJSON(t, &dev, "device", "approve", "--profile", admin, "--", id); dev.ID != id || dev.Status != "approved" {
		t.Fatalf("approve -- %s: %+v", id, dev)
	}
	var in struct{ Devices []string }
	if runJSON(t, &in, "incident", "open", "--profile", admin, "--device="+id, "--since", "2000-01-01T00:00:00Z"); len(in.Devices) != 1 || in.Devices[0] != id {
		t.Fatalf("incident open --device=%s: %+v", id, in)
	}
	if runJSON(t, &dev, "device", "revoke", "--profile", admin, "--", id); dev.Status != "revoked" {
		t.Fatalf("revoke -- %s: %+v", id, dev)
	}
}
