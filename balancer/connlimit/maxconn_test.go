package connlimit

import (
	"strings"
	"testing"
)

// TestPlanMaxConnMatchesHAProxy uses values read from HAProxy 2.6.12's
// `show info` (Maxconn, Maxsock) under `prlimit --nofile=N` with the same
// listeners, checks and threads.
func TestPlanMaxConnMatchesHAProxy(t *testing.T) {
	oneBindOneSocket := Sockets{Listeners: 2, Pollers: 2}
	tests := []struct {
		name        string
		configured  int
		fdLimit     int
		sockets     Sockets
		wantMaxConn int
		wantMaxSock int
		wantErr     bool
	}{
		{"256 fds", 0, 256, oneBindOneSocket, 114, 256, false},
		{"1024 fds", 0, 1024, oneBindOneSocket, 498, 1024, false},
		{"4096 fds", 0, 4096, oneBindOneSocket, 2034, 4096, false},
		{"20000 fds", 0, 20000, oneBindOneSocket, 9986, 20000, false},
		{"3 binds", 0, 1024, Sockets{Listeners: 4, Pollers: 2}, 497, 1024, false},
		{"2 checks", 0, 1024, Sockets{Listeners: 2, Checks: 2, Pollers: 2}, 497, 1024, false},
		{"1023 fds", 0, 1023, oneBindOneSocket, 497, 1022, false},
		{"tcp stats socket too", 0, 1024, Sockets{Listeners: 3, Pollers: 2}, 497, 1023, false},
		{"1 thread", 0, 1024, Sockets{Listeners: 2, Pollers: 1}, 499, 1023, false},
		{"4 threads", 0, 1024, Sockets{Listeners: 2, Pollers: 4}, 495, 1024, false},
		{"configured 50", 50, 256, oneBindOneSocket, 50, 128, false},
		{"configured 1000", 1000, 4096, oneBindOneSocket, 1000, 2028, false},
		{"configured 1000, too few fds", 1000, 256, oneBindOneSocket, 1000, 2028, true},
		{"derived below the minimum", 0, 64, oneBindOneSocket, 100, 228, true},
		// Beyond HAProxy: descriptors kept for 10 Runtime API clients.
		{"admin clients", 0, 256, Sockets{Listeners: 2, Pollers: 1, AdminClients: 10}, 110, 255, false},
		{"admin clients, configured", 100, 256, Sockets{Listeners: 2, Pollers: 1, AdminClients: 10}, 100, 235, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanMaxConn(tt.configured, tt.fdLimit, tt.sockets)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if p.MaxConn != tt.wantMaxConn || p.MaxSock != tt.wantMaxSock {
				t.Errorf("MaxConn/MaxSock = %d/%d, want %d/%d", p.MaxConn, p.MaxSock, tt.wantMaxConn, tt.wantMaxSock)
			}
			if p.Derived != (tt.configured == 0) {
				t.Errorf("Derived = %v", p.Derived)
			}
			if err != nil && !strings.Contains(err.Error(), "file descriptors") {
				t.Errorf("error does not say what is missing: %v", err)
			}
		})
	}
}

func TestPlanMaxConnUnknownLimit(t *testing.T) {
	p, err := PlanMaxConn(0, 0, Sockets{Listeners: 1})
	if err != nil || p.MaxConn != 0 {
		t.Fatalf("unknown limit, nothing configured: %+v, %v; want no cap", p, err)
	}
	p, err = PlanMaxConn(500, 0, Sockets{Listeners: 1})
	if err != nil || p.MaxConn != 500 {
		t.Fatalf("unknown limit, 500 configured: %+v, %v", p, err)
	}
}

func TestFrontendMaxConn(t *testing.T) {
	tests := []struct{ fe, global, want int }{
		{0, 9986, 9986},
		{50, 9986, 50},
		{20000, 9986, 20000}, // allowed; the global limit still caps it
	}
	for _, tt := range tests {
		if got := FrontendMaxConn(tt.fe, tt.global); got != tt.want {
			t.Errorf("FrontendMaxConn(%d, %d) = %d, want %d", tt.fe, tt.global, got, tt.want)
		}
	}
}
