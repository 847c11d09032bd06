package main

import (
	"os"
	"testing"
	"time"
)

// TestCPUTimeCountsWork checks that the CPU time read from /proc grows
// while the process spins.
func TestCPUTimeCountsWork(t *testing.T) {
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Skip("no /proc:", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		now, err := cpuTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now-before >= 50*time.Millisecond {
			return
		}
	}
	t.Error("10 s of spinning did not count 50 ms of CPU time")
}
