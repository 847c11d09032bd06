package frontdoor

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tether/balancer"
)

// countingCounters records what a Server reports.
type countingCounters struct {
	accepted, closed, refused400, refused408 atomic.Int64
	// clientClosed counts the refusals logged as the client closing
	// before a complete head (termination CR).
	clientClosed atomic.Int64
}

func (c *countingCounters) LogRefusal(r balancer.Refusal) {
	if r.ClientClosed {
		c.clientClosed.Add(1)
	}
}

func (c *countingCounters) ConnClosed() { c.closed.Add(1) }

func (c *countingCounters) ConnAccepted()           { c.accepted.Add(1) }
func (c *countingCounters) Transferred(in, out int) {}
func (c *countingCounters) Refused(status int) {
	switch status {
	case 400:
		c.refused400.Add(1)
	case 408:
		c.refused408.Add(1)
	}
}

// TestServerReportsConnectionsAndRefusals checks that every accepted
// connection, and every request the server answers itself, reaches the
// server's Counters exactly once, a client's closing before a complete
// head logged as such.
func TestServerReportsConnectionsAndRefusals(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		halfClose bool
		want400   int64
		want408   int64
		// wantClosed is whether the refusal is the client's closing.
		wantClosed bool
	}{
		{"served request", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false, 0, 0, false},
		{"served request, then closed", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, 0, 0, false},
		{"malformed header", "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", false, 1, 0, false},
		{"too large", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 20000) + "\r\n\r\n", false, 1, 0, false},
		{"authority differs from Host", "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", false, 1, 0, false},
		{"timeout http-request", "GET / HTTP/1.1\r\nHost: a\r\n", false, 0, 1, false},
		{"closed without a byte", "", true, 1, 0, true},
		{"closed after part of the head", "GET / HTTP/1.1\r\nHost: a\r\n", true, 1, 0, true},
		{"closed within the request line", "GET /pa", true, 1, 0, true},
		{"closed after part of a second head", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HT", true, 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := balancer.Frontend{Name: "fe", TimeoutHTTPRequest: 200 * time.Millisecond}
			ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
			srv := New(fe, balancer.Global{}, ok, slog.New(slog.DiscardHandler))
			cc := &countingCounters{}
			srv.Counters = cc
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tt.raw)
			if tt.halfClose {
				c.(*net.TCPConn).CloseWrite()
			}
			io.Copy(io.Discard, c)
			deadline := time.Now().Add(3 * time.Second)
			for cc.refused400.Load() != tt.want400 || cc.refused408.Load() != tt.want408 || cc.closed.Load() != 1 {
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got, closed := cc.accepted.Load(), cc.closed.Load(); got != 1 || closed != 1 {
				t.Errorf("accepted %d connections, closed %d; want 1, 1", got, closed)
			}
			if cc.refused400.Load() != tt.want400 || cc.refused408.Load() != tt.want408 {
				t.Errorf("refused 400 %d times, 408 %d times; want %d, %d", cc.refused400.Load(), cc.refused408.Load(), tt.want400, tt.want408)
			}
			if got := cc.clientClosed.Load() == 1; got != tt.wantClosed || cc.clientClosed.Load() > 1 {
				t.Errorf("refusals logged as the client's closing: %d, want %v", cc.clientClosed.Load(), tt.wantClosed)
			}
		})
	}
}
