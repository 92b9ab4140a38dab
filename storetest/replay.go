package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

func testReplay(t *testing.T, open func(t *testing.T) sekisho.Store) {
	t.Run("UseOnce", func(t *testing.T) { testUseOnce(t, open(t)) })
	t.Run("UseOnceRace", func(t *testing.T) { testUseOnceRace(t, open(t)) })
	t.Run("ExpiredReused", func(t *testing.T) { testReplayExpired(t, open(t)) })
}

func useOnce(t *testing.T, s sekisho.Store, key string, expires, now time.Time, want bool) {
	t.Helper()
	got, err := s.UseOnce(t.Context(), []byte(key), expires, now)
	if err != nil {
		t.Fatalf("UseOnce(%q): %v", key, err)
	}
	if got != want {
		t.Fatalf("UseOnce(%q) at %s = %v, want %v", key, now.Format(time.RFC3339Nano), got, want)
	}
}

func testUseOnce(t *testing.T, s sekisho.Store) {
	useOnce(t, s, "a", At(60), At(0), true)
	useOnce(t, s, "a", At(60), At(1), false)
	useOnce(t, s, "a", At(120), At(59), false) // still live: a later expiry does not renew it
	useOnce(t, s, "b", At(60), At(1), true)    // another key is independent
	// Decided: an entry is live while now < expires; at its expiry the key
	// may be used again (the caller refuses proofs that old anyway).
	useOnce(t, s, "a", At(120), At(60), true)
	useOnce(t, s, "a", At(180), At(119), false)
	// Keys are bytes: a key differing in one byte, or a prefix, is another.
	useOnce(t, s, "a\x00", At(60), At(1), true)
	useOnce(t, s, "\xff\xfe", At(60), At(1), true)
	useOnce(t, s, "\xff\xfe", At(60), At(2), false)
}

// testUseOnceRace: of concurrent uses of one key, exactly one is fresh.
func testUseOnceRace(t *testing.T, s sekisho.Store) {
	for k := range 5 {
		key := []byte(fmt.Sprintf("race-%d", k))
		errs := race(func(int) error {
			fresh, err := s.UseOnce(t.Context(), key, At(60), At(0))
			if err != nil {
				return err
			}
			if !fresh {
				return sekisho.Errorf(sekisho.EConflict, "seen")
			}
			return nil
		})
		oneWinner(t, "UseOnce", errs)
	}
}

// testReplayExpired: many expired entries and later calls: a live key is
// never swept nor renewed, and expired keys are usable again. (That the
// table holds only about the live entries is each backend's own test.)
func testReplayExpired(t *testing.T, s sekisho.Store) {
	for i := range 50 {
		useOnce(t, s, fmt.Sprintf("old-%d", i), At(10), At(0), true)
	}
	useOnce(t, s, "live", At(1000), At(0), true)
	// Each later call sweeps some expired entries; enough calls sweep all.
	for i := range 50 {
		useOnce(t, s, fmt.Sprintf("new-%d", i), At(1000), At(20), true)
	}
	useOnce(t, s, "live", At(2000), At(500), false)
	for i := range 50 {
		useOnce(t, s, fmt.Sprintf("old-%d", i), At(1000), At(21), true)
	}
}
