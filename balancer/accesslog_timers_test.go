package balancer

import (
	"testing"
	"time"

	"tether/balancer/accesslog"
)

// TestRequestTimers checks how a request's accept and request dates and
// its Th, Ti and TR timers come from its connection's times.
func TestRequestTimers(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name       string
		rt         RequestTimes
		headers    time.Time
		th, ti, tr int32
		accept     time.Time
		start      time.Time
	}{
		{"first request over TLS", RequestTimes{Accepted: at(0), Ready: at(40), FirstByte: at(100)}, at(130), 40, 60, 30, at(0), at(100)},
		{"kept-alive request", RequestTimes{Accepted: at(500), Ready: at(500), FirstByte: at(800)}, at(801), 0, 300, 1, at(500), at(800)},
		{"first byte read with the previous request", RequestTimes{Accepted: at(500), Ready: at(500)}, at(520), 0, 20, 0, at(500), at(520)},
		{"first byte before the previous response ended", RequestTimes{Accepted: at(500), Ready: at(500), FirstByte: at(490)}, at(520), 0, 0, 20, at(500), at(500)},
		{"times from another clock", RequestTimes{Accepted: at(900), Ready: at(900), FirstByte: at(950)}, at(100), 0, 0, 0, at(100), at(100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := accesslog.Entry{Accept: tt.headers, Start: tt.headers}
			requestTimers(&e, tt.rt, tt.headers)
			if e.Th != tt.th || e.Ti != tt.ti || e.TR != tt.tr {
				t.Errorf("Th/Ti/TR = %d/%d/%d, want %d/%d/%d", e.Th, e.Ti, e.TR, tt.th, tt.ti, tt.tr)
			}
			if !e.Accept.Equal(tt.accept) || !e.Start.Equal(tt.start) {
				t.Errorf("accept %v, request %v; want %v, %v", e.Accept, e.Start, tt.accept, tt.start)
			}
		})
	}
}
