package main

import (
	"math"
	"strings"
	"testing"
)

// The CPU-bound hours count the import's CPU per record and, when the bench
// read it (a PostgreSQL cluster on this machine), the server's: two
// dedicated cores' worth of both.
func TestProjectCPUBound(t *testing.T) {
	for _, tc := range []struct {
		name          string
		imp           importResult
		jpHours       float64 // cpu-bound, jp's 93M
		basisContains string
	}{
		{"import only", importResult{Records: 1000, RecordsPerS: 10_000, CPUsPer1k: 0.040}, 93e6 / (2 / 0.040e-3) / 3600, "0.040 CPU s per 1k records"},
		{"import and server", importResult{Records: 1000, RecordsPerS: 10_000, CPUsPer1k: 0.025, ServerCPUsPer1k: 0.040}, 93e6 / (2 / 0.065e-3) / 3600, "import 0.025 + PostgreSQL server 0.040"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := project("postgres", &tc.imp, 1_000_000)
			if p == nil || p.Regions[0].Region != "jp" {
				t.Fatalf("project = %+v", p)
			}
			if got := p.Regions[0].CPUBoundHours; math.Abs(got-tc.jpHours) > 1e-9 {
				t.Errorf("jp cpu-bound hours = %v, want %v", got, tc.jpHours)
			}
			if p.CPUBoundHours != p.Regions[0].CPUBoundHours {
				t.Errorf("cpu-bound hours %v, want jp's %v", p.CPUBoundHours, p.Regions[0].CPUBoundHours)
			}
			if !strings.Contains(p.Basis, tc.basisContains) {
				t.Errorf("basis %q lacks %q", p.Basis, tc.basisContains)
			}
		})
	}
}
