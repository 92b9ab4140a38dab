package sekisho_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadme checks what a first reader relies on: the "How it is built"
// tree names every top-level directory, every relative link points at a
// file in the repository, and no command parses output with sed (verbs
// print JSON with --format json).
func TestReadme(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "## How it is built\n\n```\n")
	if i < 0 {
		t.Fatal(`no "How it is built" tree`)
	}
	tree := readme[i:]
	tree = tree[:strings.Index(tree[len("## How it is built\n\n```\n"):], "```")+len("## How it is built\n\n```\n")]
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !regexp.MustCompile(`(^|\s)`+regexp.QuoteMeta(e.Name())+`/`).MatchString(tree) {
			t.Errorf("the How it is built tree does not list %s/", e.Name())
		}
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#:]+)(#[^)]*)?\)`).FindAllStringSubmatch(readme, -1) {
		if _, err := os.Stat(m[1]); err != nil {
			t.Errorf("link %s: %v", m[1], err)
		}
		if strings.HasPrefix(m[1], "..") {
			t.Errorf("link %s points outside the repository", m[1])
		}
	}
	if strings.Contains(readme, "| sed ") || strings.Contains(readme, "$(sed") {
		t.Error("the README parses output with sed; use --format json")
	}
}
