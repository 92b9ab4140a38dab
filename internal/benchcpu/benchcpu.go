// Package benchcpu reports the CPU time a benchmark's process spent per
// operation (user + system, from getrusage), a number that the other load
// on a shared machine moves far less than the wall time per operation.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// PerOp starts counting; the function it returns reports cpu-ns/op. Call
// it after the setup and defer the result:
//
//	defer benchcpu.PerOp(b)()
func PerOp(b *testing.B) func() {
	start := used()
	return func() {
		b.ReportMetric(float64((used()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func used() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
