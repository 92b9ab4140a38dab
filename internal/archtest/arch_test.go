// Package archtest checks the shape of the module's import graph (issue 14):
// the request path's core packages depend on the root package sekisho, not
// on each other, and no internal import chain is longer than MaxChain.
package archtest

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sekisho/sekisho"

// core are the packages that must not import each other, directly or
// through another package: each depends on the root alone for the
// vocabulary they share.
var core = []string{"access", "guard", "audit", "vault"}

// MaxChain is the most import edges on any path from cmd/sekisho down
// through the module's own packages.
const MaxChain = 4

// graph returns every package of the module with its imports (deps: with
// every package it depends on, transitively) inside the module.
func graph(t *testing.T, deps bool) map[string][]string {
	t.Helper()
	field := ".Imports"
	if deps {
		field = ".Deps"
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join "+field+" \" \"}}", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imps, _ := strings.Cut(line, " ")
		g[short(pkg)] = nil
		for _, i := range strings.Fields(imps) {
			if i == module || strings.HasPrefix(i, module+"/") {
				g[short(pkg)] = append(g[short(pkg)], short(i))
			}
		}
	}
	return g
}

// short names a package by its path in the module ("." for the root).
func short(pkg string) string {
	if pkg == module {
		return "."
	}
	return strings.TrimPrefix(pkg, module+"/")
}

func TestCoreDoNotImportEachOther(t *testing.T) {
	g := graph(t, true)
	for _, p := range core {
		deps, ok := g[p]
		if !ok {
			t.Fatalf("package %s not found", p)
		}
		if !slices.Contains(deps, ".") {
			t.Errorf("%s does not depend on the root package", p)
		}
		for _, q := range core {
			if q != p && slices.Contains(deps, q) {
				t.Errorf("%s depends on %s: access, guard, audit and vault depend on the root, not on each other", p, q)
			}
		}
	}
}

func TestLongestChain(t *testing.T) {
	g := graph(t, false)
	memo := map[string][]string{}
	var longest func(p string) []string
	longest = func(p string) []string {
		if c, ok := memo[p]; ok {
			return c
		}
		best := []string{p}
		for _, q := range g[p] {
			if c := append([]string{p}, longest(q)...); len(c) > len(best) {
				best = c
			}
		}
		memo[p] = best
		return best
	}
	chain := longest("cmd/sekisho")
	if len(chain) < 2 {
		t.Fatalf("cmd/sekisho imports nothing of the module: %v", chain)
	}
	slices.Reverse(chain)
	t.Logf("longest chain below cmd/sekisho: %d: %s", len(chain)-1, strings.Join(chain, " <- "))
	if len(chain)-1 > MaxChain {
		t.Errorf("the longest internal import chain is %d (at most %d): %s", len(chain)-1, MaxChain, strings.Join(chain, " <- "))
	}
}
