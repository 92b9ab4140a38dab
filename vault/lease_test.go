package vault

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho/sqlite"
)

func TestRetentionLeaseTakesTurns(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &Vault{store: st, now: func() time.Time { return now }}
	b := &Vault{store: st, now: func() time.Time { return now }}
	step := func(name string, got bool, err error, want bool) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s: took %v, %v; want %v", name, got, err, want)
		}
	}
	took, err := a.takeLease(ctx, "a", time.Minute)
	step("a takes the free lease", took, err, true)
	took, err = b.takeLease(ctx, "b", time.Minute)
	step("b while a holds it", took, err, false)
	took, err = a.takeLease(ctx, "a", time.Minute)
	step("a renews", took, err, true)
	if err := a.releaseLease(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	took, err = b.takeLease(ctx, "b", time.Minute)
	step("b after a released", took, err, true)
	if err := a.releaseLease(ctx, "a"); err != nil { // not a's: no change
		t.Fatal(err)
	}
	took, err = a.takeLease(ctx, "a", time.Minute)
	step("a while b holds it", took, err, false)
	now = now.Add(2 * time.Minute) // b died without releasing
	took, err = a.takeLease(ctx, "a", time.Minute)
	step("a after b's lease expired", took, err, true)
}
