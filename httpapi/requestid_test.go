package httpapi

import (
	"encoding/hex"
	"testing"
	"time"
)

// Request ids sort by the time they were made (a millisecond prefix), keep
// 80 random bits (two ids of the same millisecond differ), and stay 32 hex
// digits.
func TestRequestIDsAreTimeOrdered(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 1000 {
		id := requestIDAt(t0.Add(time.Duration(i) * time.Millisecond))
		if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("request id %q is not 128 bits in hex", id)
		}
		if id <= prev {
			t.Fatalf("request id %q made after %q sorts before it", id, prev)
		}
		prev = id
	}
	a, b := requestIDAt(t0), requestIDAt(t0)
	if a == b || a[:12] != b[:12] {
		t.Fatalf("two ids of the same millisecond: %q %q (want the same 48-bit prefix, different random bits)", a, b)
	}
	if now := newRequestID(); now <= requestIDAt(t0) {
		t.Fatalf("newRequestID %q sorts before an id of %s", now, t0)
	}
}
