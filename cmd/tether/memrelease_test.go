package main

import (
	"runtime/metrics"
	"testing"
)

func TestWorthReleasing(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name              string
		now               heapFigures
		before, atRelease uint64
		want              bool
	}{
		{"quiet with garbage", heapFigures{allocated: 100 * mb, live: 10 * mb, resident: 40 * mb}, 100 * mb, 0, true},
		{"busy with garbage", heapFigures{allocated: 100 * mb, live: 10 * mb, resident: 40 * mb}, 90 * mb, 0, false},
		{"quiet, little garbage", heapFigures{allocated: 100 * mb, live: 10 * mb, resident: 13 * mb}, 100 * mb, 0, false},
		{"quiet, just over", heapFigures{allocated: 100 * mb, live: 10 * mb, resident: 13*mb + mb/2 + 1}, 100*mb - 1, 0, true},
		{"nothing allocated since the last release", heapFigures{allocated: 100 * mb, live: 10 * mb, resident: 40 * mb}, 100 * mb, 97 * mb, false},
	}
	for _, tt := range tests {
		if got := worthReleasing(tt.now, tt.before, tt.atRelease); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestReadHeap checks that the runtime offers every figure the release
// needs (an unknown metric would read as zero and never release).
func TestReadHeap(t *testing.T) {
	samples := heapSamples()
	f := readHeap(samples)
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			t.Errorf("%s: kind %v", s.Name, s.Value.Kind())
		}
	}
	if f.allocated == 0 || f.resident == 0 {
		t.Errorf("figures %+v", f)
	}
}
