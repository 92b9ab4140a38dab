package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/sekisho/sekisho/guard"
)

// TestClockSteps: the injected clock jumping back and forward does not
// reset a volume budget (counts stay at the newest time seen until the
// window has passed it), does not break the caller's token, and does not
// stop checkpoints. The positive control: once the clock is past the
// window, the same read is allowed again.
func TestClockSteps(t *testing.T) {
	w := newGuardWorld(t, 50)
	ctx := context.Background()
	// The budget alone refuses (no quarantine), so the steps can be watched.
	must(t, w.admin.JSON(ctx, "PUT", "/v1/guard/rules/"+guard.RuleBudget, "", map[string]any{"action": "log"}, nil))
	for _, id := range w.ids[:40] {
		_, err := w.read(w.agent, id)
		must(t, err) // support and member: the member budget, 40 distinct subjects a minute
	}
	_, err := w.read(w.agent, w.ids[40])
	refused(t, err, guard.ProblemBudget)
	cp1, err := w.log.Checkpoint(ctx)
	must(t, err)

	w.clk.Advance(-time.Hour) // a step back
	_, err = w.read(w.agent, w.ids[41])
	refused(t, err, guard.ProblemBudget)
	w.clk.Advance(30 * time.Minute) // forward, still before the newest time seen
	_, err = w.read(w.agent, w.ids[42])
	refused(t, err, guard.ProblemBudget)
	cp2, err := w.log.Checkpoint(ctx)
	must(t, err)
	if cp2.Size <= cp1.Size {
		t.Fatalf("no checkpoint after the clock stepped back: sizes %d then %d", cp1.Size, cp2.Size)
	}

	w.clk.Advance(32 * time.Minute) // a minute past the newest time seen, plus the bucket
	_, err = w.read(w.agent, w.ids[43])
	must(t, err)
	w.clk.Advance(48 * time.Hour) // a step forward: the token has expired, the client renews it
	_, err = w.read(w.agent, w.ids[44])
	must(t, err)
	if _, err := w.log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}
