package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestReplayBounded: the replay table holds about the live entries: every
// use sweeps expired ones, so a steady stream of proofs does not grow it.
func TestReplayBounded(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Unix(1_700_000_000, 0)
	// 2,000 uses, one a second, each live for 60 s.
	for i := range 2000 {
		now := t0.Add(time.Duration(i) * time.Second)
		if ok, err := s.UseOnce(t.Context(), []byte(fmt.Sprint(i)), now.Add(60*time.Second), now); err != nil || !ok {
			t.Fatalf("use %d: %v %v", i, ok, err)
		}
	}
	var n int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM replay`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 61 {
		t.Fatalf("replay table holds %d entries, want at most the 61 live ones", n)
	}
}
