package access

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

func proofKey(i int) replayKey { return sha256.Sum256([]byte(fmt.Sprint("proof-", i))) }

// The process's replay cache: a proof is refused while it lives, fresh
// again once it expired; full of live proofs it refuses new ones (fails
// closed) and takes them again once some expired; and it holds about the
// live entries, not every proof it ever saw.
func TestReplayCache(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	steps := []struct {
		name  string
		key   int
		until int
		now   int
		want  replayResult
	}{
		{"first use", 1, 60, 0, replayNew},
		{"again while live", 1, 60, 1, replaySeen},
		{"again the last moment", 1, 60, 59, replaySeen},
		{"another proof (control)", 2, 120, 59, replayNew},
		{"again once expired", 1, 120, 60, replayNew},
		{"used anew: live again", 1, 120, 61, replaySeen},
		{"full of live proofs", 3, 120, 61, replayFull},
		{"still full", 4, 121, 62, replayFull},
		{"a live one still refused when full", 2, 120, 62, replaySeen},
		{"space once one expired", 4, 180, 120, replayNew},
	}
	c := newReplayCache(2)
	for _, s := range steps {
		if got := c.add(proofKey(s.key), at(s.until), at(s.now)); got != s.want {
			t.Fatalf("%s: add(proof-%d) at %d = %v, want %v", s.name, s.key, s.now, got, s.want)
		}
	}

	// 100,000 proofs, 1,000 a second, each live for 60 s: the cache holds
	// the last minute's, and every proof is refused while it lives.
	c = newReplayCache(1 << 20)
	for i := range 100_000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if got := c.add(proofKey(i), now.Add(60*time.Second), now); got != replayNew {
			t.Fatalf("proof %d: %v, want new", i, got)
		}
		if i%997 == 0 {
			if got := c.add(proofKey(i-500), now.Add(60*time.Second), now); i >= 500 && got != replaySeen {
				t.Fatalf("proof %d again 0.5 s later: %v, want seen", i-500, got)
			}
		}
	}
	if n := c.len(); n > 60_100 {
		t.Fatalf("the cache holds %d entries, want about the 60,000 live ones", n)
	}
}
