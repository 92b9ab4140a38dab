package main

import (
	"runtime/debug"
	"testing"
)

// import sets its own GC percentage unless GOGC is set: with
// GOGC set the runtime's value is left as it is (the control: without
// GOGC the same call changes it).
func TestSetGCPercentYieldsToGOGC(t *testing.T) {
	prev := debug.SetGCPercent(77)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	for _, tt := range []struct {
		name string
		gogc string
		want int // the runtime's percentage after setGCPercent(200)
		ret  int
	}{
		{"GOGC unset", "", 200, 200},
		{"GOGC set", "50", 77, -1},
		{"GOGC off", "off", 77, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			debug.SetGCPercent(77)
			if got := setGCPercent(200); got != tt.ret {
				t.Errorf("setGCPercent returned %d, want %d", got, tt.ret)
			}
			if got := debug.SetGCPercent(77); got != tt.want {
				t.Errorf("GC percent %d after setGCPercent(200), want %d", got, tt.want)
			}
		})
	}
}
