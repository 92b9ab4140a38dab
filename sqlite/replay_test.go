package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// TestReplayBounded: the replay table holds about the live entries: every
// use sweeps expired ones, so a steady stream of proofs does not grow it.
// Each use waits for its key's commit, as a DPoP read's answer does (the
// request's durable wait, replayWait): without that wait the uses outrun
// the writer, and the keys of the last group commit stay in the table until
// later uses sweep them, as many as that group held.
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
		if err := s.replayWait(t.Context(), sha256.Sum256([]byte(fmt.Sprint(i)))); err != nil {
			t.Fatalf("use %d: %v", i, err)
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
	s = reopen(t, s, path)
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
	s = reopen(t, s, path)
	for _, k := range []string{"alone", "at-close"} {
		if ok, err := s.UseOnce(ctx, []byte(k), now.Add(time.Minute), now.Add(time.Second)); err != nil || ok {
			t.Errorf("UseOnce(%s) after a restart = %v, %v; want false", k, ok, err)
		}
	}
}

// TestReplayMigration: the replay entries of a schema-4 database (the table
// keyed by the key) are in the table keyed by expiry after the migration,
// and the store refuses the live ones and frees the expired ones, as
// before; a key it never saw is fresh (control).
func TestReplayMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	db := dbAtSchema(t, path, 4)
	now := time.Unix(1_700_000_000, 0)
	for i := range 10 {
		// live-0..4 expire after now, old-5..9 at or before it.
		name := fmt.Sprintf("live-%d", i)
		exp := now.Add(time.Duration(i+1) * time.Second)
		if i >= 5 {
			name, exp = fmt.Sprintf("old-%d", i), now.Add(-time.Duration(i-5)*time.Second)
		}
		if _, err := db.Exec(`INSERT INTO replay (key, expires) VALUES (?, ?)`, []byte(name), exp.UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 4`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	var pk string
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM replay), (SELECT group_concat(name) FROM pragma_table_info('replay') WHERE pk > 0 ORDER BY pk)`).Scan(&n, &pk); err != nil {
		t.Fatal(err)
	}
	if n != 10 || pk != "expires,key" {
		t.Fatalf("after the migration: %d rows (want 10), primary key %q (want expires,key)", n, pk)
	}
	for i := range 5 {
		if ok, err := s.UseOnce(ctx, []byte(fmt.Sprintf("live-%d", i)), now.Add(time.Minute), now); err != nil || ok {
			t.Errorf("UseOnce(live-%d) = %v, %v; want false (live in the migrated table)", i, ok, err)
		}
	}
	for i := 5; i < 10; i++ {
		if ok, err := s.UseOnce(ctx, []byte(fmt.Sprintf("old-%d", i)), now.Add(time.Minute), now); err != nil || !ok {
			t.Errorf("UseOnce(old-%d) = %v, %v; want true (expired)", i, ok, err)
		}
	}
	if ok, err := s.UseOnce(ctx, []byte("new"), now.Add(time.Minute), now); err != nil || !ok {
		t.Errorf("UseOnce(new) = %v, %v; want true", ok, err)
	}
}

// TestReplayMemoryMatchesTable: keys used, expired, swept and used again
// over many group commits and two restarts: after each restart the store
// (which decides from what it read back) refuses exactly the keys live in
// the table, and the table holds about the live rows.
func TestReplayMemoryMatchesTable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// Key k%40 at second k, live for 30 s: every key comes back after 40 s,
	// expired, and is fresh again.
	k := 0
	for round := range 3 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if round > 0 {
			// Right after the restart, at second k-1: the keys of the last 30 s
			// are refused, the older ones are fresh (not recorded anew: at k+100).
			for j := k - 40; j < k; j++ {
				key := []byte(fmt.Sprint("key-", j%40))
				ok, err := s.UseOnce(ctx, key, at(k-1), at(k-1))
				if err != nil {
					t.Fatal(err)
				}
				if live := j > k-1-30; ok == live {
					t.Fatalf("round %d: UseOnce(key-%d) used at second %d, asked at %d = %v after a restart", round, j%40, j, k-1, ok)
				}
			}
		}
		for range 200 {
			key := []byte(fmt.Sprint("key-", k%40))
			if ok, err := s.UseOnce(ctx, key, at(k+30), at(k)); err != nil || !ok {
				t.Fatalf("round %d: UseOnce(key-%d) at second %d = %v, %v; want true", round, k%40, k, ok, err)
			}
			if ok, err := s.UseOnce(ctx, key, at(k+30), at(k)); err != nil || ok {
				t.Fatalf("round %d: UseOnce(key-%d) again at second %d = %v, %v; want false", round, k%40, k, ok, err)
			}
			k++
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM replay`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 41 {
		t.Fatalf("the replay table holds %d rows, want at most the ~31 live ones (and a few not yet swept)", n)
	}
}

// A sweep deletes the table's head up to an expiry that many keys share
// (the proofs made in one second): memory must forget exactly those rows,
// so that after a restart the store refuses the keys it refused before it.
// 100 keys expire at second 10; a use at second 10 sweeps some or all of
// them; the keys memory still holds live (it would refuse them at second
// 5) are the keys refused at second 5 after a restart (fails if the table
// lost rows memory kept). Control: a key never used is fresh.
func TestReplaySweepOfOneExpiry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	commit := func() {
		if err := s.grouped(ctx, func(*sql.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	key := func(i int) []byte { return []byte(fmt.Sprint("a-", i)) }
	for i := range 100 {
		if ok, err := s.UseOnce(ctx, key(i), at(10), at(0)); err != nil || !ok {
			t.Fatalf("UseOnce(a-%d) = %v, %v", i, ok, err)
		}
	}
	commit()
	if ok, err := s.UseOnce(ctx, []byte("x"), at(100), at(10)); err != nil || !ok {
		t.Fatalf("UseOnce(x) = %v, %v", ok, err)
	}
	commit()
	live := map[int]bool{}
	s.replay.mu.Lock()
	for i := range 100 {
		if e, ok := s.replay.live[sha256.Sum256(key(i))]; ok && e > micros(at(5)) {
			live[i] = true
		}
	}
	s.replay.mu.Unlock()
	s = reopen(t, s, path)
	refused := map[int]bool{}
	for i := range 100 {
		ok, err := s.UseOnce(ctx, key(i), at(10), at(5))
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			refused[i] = true
		}
	}
	if !maps.Equal(live, refused) {
		t.Fatalf("before the restart memory held %d of the 100 keys live at second 5, after it the store refused %d", len(live), len(refused))
	}
	if ok, err := s.UseOnce(ctx, []byte("never used"), at(10), at(5)); err != nil || !ok {
		t.Fatalf("a key never used: UseOnce = %v, %v; want true", ok, err)
	}
}

// reopen closes s and opens the store at path again, as a restart does; the
// store returned is closed when the test ends.
func reopen(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
