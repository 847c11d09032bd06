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

// TestPairedRatio takes the median of the per-round ratios, which a drift
// of the machine's speed between rounds leaves alone.
func TestPairedRatio(t *testing.T) {
	rounds := func(rps ...float64) *proxy {
		p := &proxy{}
		for _, r := range rps {
			p.results = append(p.results, result{rps: r})
		}
		return p
	}
	base := rounds(100, 200, 400)
	if r, ok := pairedRatio(rounds(90, 180, 360), base); !ok || r < 0.8999 || r > 0.9001 {
		t.Errorf("pairedRatio = %v, %v; want 0.90", r, ok)
	}
	if _, ok := pairedRatio(rounds(1, 2), base); ok {
		t.Error("rounds of different counts were paired")
	}
	if _, ok := pairedRatio(rounds(1), nil); ok {
		t.Error("paired without a base")
	}
}
