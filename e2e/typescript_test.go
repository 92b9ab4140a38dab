package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestTypeScriptClient builds clients/typescript (npm ci, npm run build:
// types generated from httpapi/openapi.json, then tsc) and runs its own
// tests (node's test runner) against a real server that requires server
// nonces: bootstrap with a non-extractable WebCrypto P-256 key, a device
// refused until approved (typed problem), problem details, token refresh,
// a token refused with another key's proof. Like TestNpmInterop it fails
// without node and npm when SEKISHO_REQUIRE_NODE is set (scripts/test.sh).
func TestTypeScriptClient(t *testing.T) {
	_, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		if os.Getenv("SEKISHO_REQUIRE_NODE") != "" {
			t.Fatalf("node or npm not found (node: %v, npm: %v); install Debian's nodejs and npm", nerr, perr)
		}
		t.Skip("node and npm not found; set SEKISHO_REQUIRE_NODE=1 to make this a failure")
	}
	dir, err := filepath.Abs("../clients/typescript")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv := startServer(t, filepath.Join(t.TempDir(), "data"), masterKey(), "--dpop-nonce")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, npm, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SEKISHO_URL="+srv.base, "SEKISHO_BOOTSTRAP_TOKEN_FILE="+filepath.Join(srv.dir, "bootstrap-admin-token"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("npm %v: %v\n%s", args, err, out)
		}
		t.Logf("npm %v:\n%s", args, out)
	}
	run("ci", "--no-audit", "--no-fund", "--loglevel=error")
	run("run", "build")
	run("test")
}
