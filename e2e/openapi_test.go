package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Pinned generator versions: the document must generate with these.
const (
	oapiCodegen    = "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2"
	oapiRuntime    = "github.com/oapi-codegen/runtime@v1.9.0"
	openapiDocPath = "../httpapi/openapi.json"
)

// TestOpenAPIGenerators checks that httpapi/openapi.json generates: a Go
// client from oapi-codegen that compiles, and TypeScript types from
// openapi-typescript that compile with tsc --strict against a file that
// uses them (e2e/npm/types.check.ts: record fields hold values). It needs
// the Go module proxy and npm, and node: like TestNpmInterop it skips
// without node unless SEKISHO_REQUIRE_NODE is set (scripts/test.sh sets it).
func TestOpenAPIGenerators(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads and runs the generators")
	}
	_, nerr := exec.LookPath("node")
	npx, perr := exec.LookPath("npx")
	npm, merr := exec.LookPath("npm")
	if nerr != nil || perr != nil || merr != nil {
		if os.Getenv("SEKISHO_REQUIRE_NODE") != "" {
			t.Fatalf("node, npm or npx not found; install Debian's nodejs and npm")
		}
		t.Skip("node and npm not found; set SEKISHO_REQUIRE_NODE=1 to make this a failure")
	}
	doc, err := filepath.Abs(openapiDocPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(dir string, env []string, name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}

	t.Run("oapi-codegen Go client compiles", func(t *testing.T) {
		mod := t.TempDir()
		if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/sekishoclient\n\ngo 1.26\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(mod, "client.gen.go")
		run(mod, nil, "go", "run", oapiCodegen, "-generate", "types,client", "-package", "sekishoclient", "-o", out, doc)
		run(mod, []string{"GOFLAGS=-mod=mod"}, "go", "get", oapiRuntime)
		run(mod, []string{"GOFLAGS=-mod=mod"}, "go", "vet", "./...")
	})
	t.Run("openapi-typescript types compile with tsc --strict", func(t *testing.T) {
		dir, err := filepath.Abs("npm")
		if err != nil {
			t.Fatal(err)
		}
		run(dir, nil, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		run(dir, nil, npx, "openapi-typescript", doc, "-o", "gen/sekisho.d.ts")
		run(dir, nil, npx, "tsc", "--strict", "--noEmit", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "types.check.ts")
	})
}
