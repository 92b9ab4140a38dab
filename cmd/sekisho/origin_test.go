package main

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/sqlite"
)

// TestLogOrigin: a new deployment makes its own origin once and keeps it;
// a store that already holds checkpoints (an install from before origins
// were per deployment) keeps the origin they were signed with; the flag wins.
func TestLogOrigin(t *testing.T) {
	ctx := context.Background()
	open := func(t *testing.T) *sqlite.Store {
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sekisho.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}

	t.Run("new", func(t *testing.T) {
		st := open(t)
		first, err := logOrigin(ctx, st, "")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^sekisho\.local/[0-9a-f]{16}$`).MatchString(first) {
			t.Fatalf("origin %q", first)
		}
		again, err := logOrigin(ctx, st, "")
		if err != nil || again != first {
			t.Fatalf("second start: %q %v, want %q", again, err, first)
		}
		other, err := logOrigin(ctx, open(t), "")
		if err != nil || other == first {
			t.Fatalf("another install signs %q (%v), the same as %q", other, err, first)
		}
	})

	t.Run("upgraded", func(t *testing.T) {
		st := open(t)
		for _, c := range []sekisho.Checkpoint{
			{Size: 3, Note: []byte("sekisho.local/audit\n3\nAAAA\n\n— sig\n"), Time: time.Now()},
			{Size: 9, Note: []byte("sekisho.local/audit\n9\nBBBB\n\n— sig\n"), Time: time.Now()},
		} {
			if err := st.PutCheckpoint(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		got, err := logOrigin(ctx, st, "")
		if err != nil || got != "sekisho.local/audit" {
			t.Fatalf("upgraded store: %q %v, want the origin its checkpoints carry", got, err)
		}
		if again, _ := logOrigin(ctx, st, ""); again != got {
			t.Fatalf("not kept: %q then %q", got, again)
		}
	})

	t.Run("flag", func(t *testing.T) {
		got, err := logOrigin(ctx, open(t), "vault.example.jp/audit")
		if err != nil || got != "vault.example.jp/audit" {
			t.Fatalf("%q %v", got, err)
		}
		if _, err := logOrigin(ctx, open(t), "two\nlines"); err == nil {
			t.Fatal("a two-line origin was taken")
		}
	})
}
