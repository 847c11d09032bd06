package balancer

import (
	"net/netip"
	"testing"
)

func TestRecentClientsEstimate(t *testing.T) {
	var r recentClients
	const t0 = 1_800_000_000 // a minute boundary is irrelevant: windows are whole minutes
	if got := r.estimate(t0); got != 0 {
		t.Fatalf("empty estimate %d", got)
	}
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range 1000 {
		r.add(addr(i), t0)
		r.add(addr(i), t0+1) // the same client again counts once
	}
	if got := r.estimate(t0 + 1); got < 950 || got > 1050 {
		t.Errorf("1000 clients estimated as %d", got)
	}
	// 500 of them come back three minutes later; 200 new ones too.
	for i := range 500 {
		r.add(addr(i), t0+180)
	}
	for i := range 200 {
		r.add(addr(5000+i), t0+180)
	}
	if got := r.estimate(t0 + 180); got < 1130 || got > 1270 {
		t.Errorf("1200 clients within five minutes estimated as %d", got)
	}
	// Once the first minute leaves the window only the recent ones count.
	if got := r.estimate(t0 + 6*60); got < 660 || got > 740 {
		t.Errorf("700 recent clients estimated as %d", got)
	}
	if got := r.estimate(t0 + 20*60); got != 0 {
		t.Errorf("after the window: %d", got)
	}
	r.reset()
	if got := r.estimate(t0 + 180); got != 0 {
		t.Errorf("after reset: %d", got)
	}
}

func BenchmarkRecentClientsAdd(b *testing.B) {
	var r recentClients
	a := netip.MustParseAddr("192.0.2.7")
	b.ReportAllocs()
	for b.Loop() {
		r.add(a, 1_800_000_000)
	}
}
