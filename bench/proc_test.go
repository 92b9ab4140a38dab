package main

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestCPUSecondsResolution: a few milliseconds of work, less than one of
// /proc/PID/stat's 10 ms ticks, still shows in cpuSeconds.
func TestCPUSecondsResolution(t *testing.T) {
	pid := os.Getpid()
	before, err := cpuSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(nil)
	for i := 0; i < 5000; i++ { // a few ms of one core, under a tick
		sum = sha256.Sum256(sum[:])
	}
	after, err := cpuSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("cpuSeconds did not move: %v then %v (sum %x)", before, after, sum[:2])
	}
	ticks, err := tickSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Both count the same process: the ticks never exceed the nanosecond
	// sum by more than a few ticks' rounding.
	if ticks > after+0.05 {
		t.Errorf("tickSeconds %v far above schedSeconds %v", ticks, after)
	}
}

// TestCPUSecondsOfChild reads another process's clock, as the harness does
// for the server it starts.
func TestCPUSecondsOfChild(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var cpu float64
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if cpu, err = cpuSeconds(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if cpu > 0.01 {
			return
		}
	}
	t.Errorf("child's CPU time %v after its loop", cpu)
}
