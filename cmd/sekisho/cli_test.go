package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The tests in this file run the built binary, as a script would: its exit
// status and its stderr are what a revocation script relies on.

var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
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
