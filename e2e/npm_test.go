package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestNpmInterop drives the binary with an outside client: e2e/npm, written
// with the npm packages dpop and jose only (versions pinned by its
// package-lock.json), run by node's test runner against a server that
// requires server nonces. It needs node and npm: scripts/test.sh sets
// SEKISHO_REQUIRE_NODE=1 so that their absence fails CI (.ci/run installs
// them from Debian when missing); elsewhere it skips with a message.
func TestNpmInterop(t *testing.T) {
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		if os.Getenv("SEKISHO_REQUIRE_NODE") != "" {
			t.Fatalf("node or npm not found (node: %v, npm: %v); install Debian's nodejs and npm", nerr, perr)
		}
		t.Skip("node and npm not found; set SEKISHO_REQUIRE_NODE=1 to make this a failure")
	}
	dir, err := filepath.Abs("npm")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := startServer(t, filepath.Join(t.TempDir(), "data"), masterKey(), "--dpop-nonce")
	srvURL, tokenFile := srv.base, filepath.Join(srv.dir, "bootstrap-admin-token")
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SEKISHO_URL="+srvURL, "SEKISHO_BOOTSTRAP_TOKEN_FILE="+tokenFile)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		t.Logf("%s %v:\n%s", name, args, out)
	}
	if resp, err := http.Get(srv.base + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("server not up: %v", err)
	}
	// npm ci installs exactly the locked versions.
	run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	run(node, "--test", "interop.test.mjs")
}
