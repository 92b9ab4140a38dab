package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
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

// A replay key UseOnce reserved is in the table once the next write
// through the store has returned (here an audit append, as a DPoP read's
// answer waits for its event), and it is refused after a restart; another
// key is fresh after the restart (control).
func TestReplayDurableWithTheNextWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 20 {
		key := []byte(fmt.Sprintf("proof-%d", i))
		if ok, err := s.UseOnce(ctx, key, now.Add(time.Minute), now); err != nil || !ok {
			t.Fatalf("UseOnce %d: %v %v", i, ok, err)
		}
		if ok, err := s.UseOnce(ctx, key, now.Add(time.Minute), now); err != nil || ok {
			t.Fatalf("UseOnce %d again (reserved, maybe not committed): %v %v, want false", i, ok, err)
		}
		e := sekisho.AuditEntry{Index: uint64(i), Leaf: []byte{byte(i)}, Time: now, RequestID: "r", Org: "o", Principal: "p", Device: "d",
			Decision: "allow", Records: []string{}, RecordOrgs: []string{}}
		if err := s.AppendAudit(ctx, []sekisho.AuditEntry{e}, nil); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM replay WHERE key = ?`, key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("after the audit append returned, proof-%d is not in the replay table", i)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.UseOnce(ctx, []byte("proof-7"), now.Add(time.Minute), now.Add(time.Second)); err != nil || ok {
		t.Fatalf("UseOnce(proof-7) after a restart = %v, %v; want false", ok, err)
	}
	if ok, err := s.UseOnce(ctx, []byte("proof-new"), now.Add(time.Minute), now.Add(time.Second)); err != nil || !ok {
		t.Fatalf("UseOnce(proof-new) after a restart = %v, %v; want true", ok, err)
	}
}

// A key reserved by a request that writes nothing else is committed on its
// own (within replayLinger), and one reserved just before Close is
// committed by Close: both are refused after a restart.
func TestReplayCommittedAlone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if ok, err := s.UseOnce(ctx, []byte("alone"), now.Add(time.Minute), now); err != nil || !ok {
		t.Fatalf("UseOnce: %v %v", ok, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM replay WHERE key = ?`, []byte("alone")).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reserved key is not committed after 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ok, err := s.UseOnce(ctx, []byte("at-close"), now.Add(time.Minute), now); err != nil || !ok {
		t.Fatalf("UseOnce: %v %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"alone", "at-close"} {
		if ok, err := s.UseOnce(ctx, []byte(k), now.Add(time.Minute), now.Add(time.Second)); err != nil || ok {
			t.Errorf("UseOnce(%s) after a restart = %v, %v; want false", k, ok, err)
		}
	}
}
