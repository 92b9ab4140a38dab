package vault

import (
	"testing"
	"time"
)

// Record ids are valid ids, unique, and sort by the time they were made
// (what lets the stores append to their id indexes); within one
// millisecond they differ in their random part.
func TestNewRecordIDOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		// Steps of 1 ms to 35 s cross every base32 digit boundary.
		at := t0.Add(time.Duration(i*i) * time.Millisecond * 17)
		id, err := NewRecordID(at)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id) {
			t.Fatalf("%q is not a valid id", id)
		}
		if seen[id] {
			t.Fatalf("%q made twice", id)
		}
		seen[id] = true
		if i > 0 && id <= prev {
			t.Fatalf("id %q made at %s sorts before %q made earlier", id, at, prev)
		}
		prev = id
	}
	a, _ := NewRecordID(t0)
	b, _ := NewRecordID(t0)
	if a == b || a[:9] != b[:9] {
		t.Fatalf("two ids of one millisecond: %q %q; want the same time prefix and different random parts", a, b)
	}
}
