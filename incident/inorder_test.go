package incident

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestInOrder: results are used in order whatever order the reads finish
// in, at most ahead reads run at once, and the first error in order stops
// the uses, cancels the reads still running and is returned once they end.
func TestInOrder(t *testing.T) {
	errRead := errors.New("read failed")
	cases := []struct {
		name      string
		n, ahead  int
		failAt    int // -1: no read fails
		wantUses  int
		wantError bool
	}{
		{"one at a time", 10, 1, -1, 10, false},
		{"four ahead", 20, 4, -1, 20, false},
		{"more ahead than reads", 3, 8, -1, 3, false},
		{"none", 0, 4, -1, 0, false},
		{"error in the middle", 20, 4, 7, 7, true},
		{"error first", 5, 2, 0, 0, true},
		{"ahead zero is one", 5, 0, -1, 5, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var running, most, ended atomic.Int32
			var uses []int
			read := func(ctx context.Context, i int) (int, error) {
				r := running.Add(1)
				defer running.Add(-1)
				defer ended.Add(1)
				for {
					m := most.Load()
					if r <= m || most.CompareAndSwap(m, r) {
						break
					}
				}
				if i == tc.failAt {
					return 0, fmt.Errorf("read %d: %w", i, errRead)
				}
				// Later reads finish first: each waits less than the one before.
				select {
				case <-time.After(time.Duration(tc.n-i) * time.Millisecond):
				case <-ctx.Done():
					return 0, ctx.Err()
				}
				return i * i, nil
			}
			err := inOrder(context.Background(), tc.n, tc.ahead, read, func(i, v int) error {
				if v != i*i {
					t.Errorf("use(%d) got %d, want %d", i, v, i*i)
				}
				uses = append(uses, i)
				return nil
			})
			if tc.wantError != (err != nil) || (err != nil && !errors.Is(err, errRead)) {
				t.Fatalf("err = %v, want error %v", err, tc.wantError)
			}
			if len(uses) != tc.wantUses {
				t.Fatalf("uses %v, want the first %d", uses, tc.wantUses)
			}
			for k, i := range uses {
				if i != k {
					t.Fatalf("uses out of order: %v", uses)
				}
			}
			if running.Load() != 0 {
				t.Errorf("%d reads still running after inOrder returned", running.Load())
			}
			if m := int(most.Load()); m > max(tc.ahead, 1) {
				t.Errorf("%d reads at once, more than %d", m, tc.ahead)
			}
			if tc.n >= 2*tc.ahead && tc.ahead > 1 && !tc.wantError && int(most.Load()) < 2 {
				t.Errorf("reads never overlapped (at most %d at once)", most.Load())
			}
		})
	}
}

// TestInOrderUseError: an error of use is returned and no read outlives
// the call.
func TestInOrderUseError(t *testing.T) {
	var running atomic.Int32
	stop := errors.New("enough")
	err := inOrder(context.Background(), 50, 4, func(ctx context.Context, i int) (int, error) {
		running.Add(1)
		defer running.Add(-1)
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
		}
		return i, nil
	}, func(i, _ int) error {
		if i == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want %v", err, stop)
	}
	if running.Load() != 0 {
		t.Errorf("%d reads still running", running.Load())
	}
}

// TestInOrderReadPanics: a read that panics is that read's error, not the
// end of the process.
func TestInOrderReadPanics(t *testing.T) {
	err := inOrder(context.Background(), 4, 2, func(_ context.Context, i int) (int, error) {
		if i == 2 {
			panic("broken row")
		}
		return i, nil
	}, func(int, int) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "read 2 panicked: broken row") {
		t.Fatalf("err = %v, want read 2's panic", err)
	}
}
