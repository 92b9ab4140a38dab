package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
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
	vectors := merkleVectors(t)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, npm, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SEKISHO_URL="+srv.base, "SEKISHO_BOOTSTRAP_TOKEN_FILE="+filepath.Join(srv.dir, "bootstrap-admin-token"),
			"SEKISHO_MERKLE_VECTORS="+vectors)
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

// merkleVectors writes consistency proofs of every pair of sizes of a
// 70-leaf tree, made by transparency-dev/merkle (the library the audit
// package proves with), for the TypeScript verifier's tests: each must
// verify, and fail with a root changed.
func merkleVectors(t *testing.T) string {
	t.Helper()
	tree := testonly.New(rfc6962.DefaultHasher)
	for i := range 70 {
		tree.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
	}
	type vector struct {
		Size1 uint64   `json:"size1"`
		Size2 uint64   `json:"size2"`
		Proof [][]byte `json:"proof"`
		Root1 []byte   `json:"root1"`
		Root2 []byte   `json:"root2"`
	}
	var vs []vector
	for s1 := uint64(1); s1 <= 70; s1++ {
		for s2 := s1; s2 <= 70; s2++ {
			p, err := tree.ConsistencyProof(s1, s2)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, s1, s2, p, tree.HashAt(s1), tree.HashAt(s2)); err != nil {
				t.Fatalf("the library's own proof %d..%d: %v", s1, s2, err)
			}
			vs = append(vs, vector{s1, s2, p, tree.HashAt(s1), tree.HashAt(s2)})
		}
	}
	b, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "merkle-vectors.json")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
