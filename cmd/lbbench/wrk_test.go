package main

import (
	"os"
	"strings"
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

// TestQuartiles checks the quartiles of odd and even counts.
func TestQuartiles(t *testing.T) {
	for _, tc := range []struct {
		v          []float64
		q1, q2, q3 float64
	}{
		{[]float64{5, 1, 4, 2, 3}, 1.5, 3, 4.5},
		{[]float64{4, 1, 3, 2}, 1.5, 2.5, 3.5},
		{[]float64{7}, 7, 7, 7},
	} {
		if q1, q2, q3 := quartiles(tc.v); q1 != tc.q1 || q2 != tc.q2 || q3 != tc.q3 {
			t.Errorf("quartiles(%v) = %v %v %v, want %v %v %v", tc.v, q1, q2, q3, tc.q1, tc.q2, tc.q3)
		}
	}
}

// TestPrintComparison checks the summary of a run with -against: each
// round's ratio of the second Tether to the first, req/s and CPU time.
func TestPrintComparison(t *testing.T) {
	a := &proxy{name: "tether", results: []result{{rps: 100, cpu: 10 * time.Microsecond}, {rps: 200, cpu: 20 * time.Microsecond}, {rps: 100, cpu: 10 * time.Microsecond}}}
	b := &proxy{name: tetherB, results: []result{{rps: 110, cpu: 9 * time.Microsecond}, {rps: 180, cpu: 22 * time.Microsecond}, {rps: 100, cpu: 10 * time.Microsecond}}}
	var out strings.Builder
	printComparison(&out, []*proxy{{name: "haproxy"}, a, b})
	want := "tether-b against tether, round by round over 3 rounds (median [quartiles]): req/s 1.000x [0.900..1.100], CPU/req 1.000x [0.900..1.100]\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	printComparison(&out, []*proxy{a})
	if out.Len() != 0 {
		t.Errorf("printed %q without a second Tether", out.String())
	}
}
