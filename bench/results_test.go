package main

import "testing"

// Issue 22's tail target holds only where the machine's own tail is under
// 2 ms; a noisy machine gets a note, not a verdict either way.
func TestHalfPeakVsFloor(t *testing.T) {
	for _, tc := range []struct {
		p99, floor float64
		met        bool
		note       string
	}{
		{8.5, 1.6, true, "the floor's own p99 1.60 ms"},
		{12.2, 1.6, false, "the floor's own p99 1.60 ms"},
		{8.5, 4.9, false, "the floor's own p99 is 4.90 ms: this machine's tail is over the condition"},
		{18.1, 4.9, false, "the floor's own p99 is 4.90 ms: this machine's tail is over the condition"},
	} {
		got := halfPeakVsFloor(tc.p99, tc.floor)
		if got.Met != tc.met || got.Note != tc.note || got.Got != tc.p99 || got.Name != "half_peak_p99_ms_floor_under_2" {
			t.Errorf("halfPeakVsFloor(%v, %v) = %+v, want met %v note %q", tc.p99, tc.floor, got, tc.met, tc.note)
		}
	}
}
