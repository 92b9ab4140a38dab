package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/httpapi"
	"github.com/sekisho/sekisho/vault"
)

// startServer runs the serve wiring (instance, access, HTTP handler) on an
// httptest.Server and returns its URL and the bootstrap token file.
func startServer(t *testing.T) (url, tokenFile string) {
	t.Helper()
	url, tokenFile, _ = startServerAt(t)
	return url, tokenFile
}

// startServerAt is startServer that also returns the server's data directory.
func startServerAt(t *testing.T) (url, tokenFile, dir string) {
	t.Helper()
	setMasterKey(t)
	dir = t.TempDir()
	ctx := context.Background()
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Stderr: &bytes.Buffer{}})
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
	acc, err := newAccessWith(ctx, in, access.Config{BootstrapToken: token, RootOrg: "operator", RootRegion: "jp", DeviceDefault: access.DeviceAny})
	if err != nil {
		t.Fatal(err)
	}
	opts := in.vaultOpts
	opts.Authorizer = acc.Authorizer()
	in.vault = vault.New(in.store, in.keys, in.logs, opts)
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Vault: in.vault, AuditLog: in.log, Auth: acc, Access: acc, KnownPurpose: acc.KnownPurpose}))
	t.Cleanup(srv.Close)
	return srv.URL, filepath.Join(dir, bootstrapTokenFile), dir
}

// cli runs the CLI in-process and returns stdout and the exit status.
func cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, code, msg, stderr := runCLIMsg(t, args...)
	if code != 0 {
		t.Logf("sekisho %s: exit %d: %s %s", strings.Join(args, " "), code, msg, stderr)
	}
	return out, code
}

func TestLoginAndAPI(t *testing.T) {
	url, tokenFile := startServer(t)
	admin := filepath.Join(t.TempDir(), "admin")
	out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin)
	if code != 0 || !strings.Contains(out, "Logged in as admin") {
		t.Fatalf("login: %d %s", code, out)
	}
	if fi, err := os.Stat(filepath.Join(admin, "device-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("device key: %v %v", fi.Mode(), err)
	}
	// The bootstrap token is spent.
	if _, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", t.TempDir()); code == 0 {
		t.Fatal("bootstrap token worked twice")
	}
	out, code = cli(t, "api", "--profile", admin, "GET", "/v1/whoami")
	if code != 0 || !strings.Contains(out, `"principal":"admin"`) {
		t.Fatalf("api whoami: %d %s", code, out)
	}
	out, code = cli(t, "api", "--profile", admin, "POST", "/v1/collections/users/records", "--header", "Sekisho-Purpose: support",
		"--data", `{"region":"jp","fields":{"display_name":"Hanako","phone":"+81 90-1234-5678"}}`, "--include")
	if code != 0 || !strings.HasPrefix(out, "HTTP/1.1 201 Created\r\n") || !strings.Contains(out, "\r\n\r\n{") {
		t.Fatalf("api create --include: %d %q", code, out)
	}
	out, code = cli(t, "api", "--profile", admin, "GET", "/v1/collections/users/records/aaaaaaaaaaaaaaaaaaaaaaaaaa")
	if code != 1 || !strings.Contains(out, "purpose-required") {
		t.Fatalf("api without purpose: %d %s", code, out)
	}
	if _, code = cli(t, "api", "--profile", filepath.Join(t.TempDir(), "none"), "GET", "/v1/whoami"); code != 2 {
		t.Fatalf("api without profile: exit %d", code)
	}

	// Admin verbs; a principal logs in, is pending, and is approved.
	for _, args := range [][]string{
		{"org", "create", "affiliate", "--home-region", "jp"},
		{"principal", "create", "aff-admin", "--org", "affiliate", "--role", "admin"},
		{"org", "list"},
		{"grant", "create", "--to", "affiliate", "--collection", "users", "--field", "phone", "--region", "jp", "--purpose", "support", "--expires", "24h"},
		{"grant", "list"},
	} {
		if out, code := cli(t, append(args, "--profile", admin)...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, out)
		}
	}
	bob := filepath.Join(t.TempDir(), "bob")
	out, code = cli(t, "login", "--server", url, "--principal", "aff-admin", "--profile", bob)
	if code != 0 || !strings.Contains(out, "pending approval") {
		t.Fatalf("login --principal: %d %s", code, out)
	}
	if out, code := cli(t, "api", "--profile", bob, "GET", "/v1/whoami"); code != 1 {
		t.Fatalf("unapproved device: %d %s", code, out)
	}
	dev := strings.Fields(out[strings.Index(out, "sekisho device approve --"):])[4]
	if out, code := cli(t, "device", "approve", "--profile", admin, "--", dev); code != 0 {
		t.Fatalf("approve: %d %s", code, out)
	}
	if out, code := cli(t, "api", "--profile", bob, "GET", "/v1/whoami"); code != 0 || !strings.Contains(out, "aff-admin") {
		t.Fatalf("approved device: %d %s", code, out)
	}
}
