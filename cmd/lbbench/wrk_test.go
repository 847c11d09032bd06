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

// TestParseCPULine reads the machine's total and idle ticks from
// /proc/stat's first line, steal counted and guest time not twice.
func TestParseCPULine(t *testing.T) {
	got, err := parseCPULine("cpu  100 5 50 800 20 1 4 10 7 0")
	if err != nil {
		t.Fatal(err)
	}
	if want := (cpuTicks{total: 990, idle: 820}); got != want {
		t.Errorf("parseCPULine = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3 x 5 6 7 8", "cpu 1 2 3"} {
		if _, err := parseCPULine(bad); err == nil {
			t.Errorf("parseCPULine(%q) accepted", bad)
		}
	}
}
