package balancer

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// newTimeoutHarness returns a harness whose frontend has timeout client
// set, served by a plain http.Server.
func newTimeoutHarness(t *testing.T, clientTimeout time.Duration, be Backend) *harness {
	t.Helper()
	cfg := Config{Frontends: []Frontend{{Name: "fe", DefaultBackend: be.Name, TimeoutClient: clientTimeout}}, Backends: []Backend{be}}
	b, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hd, _ := b.Handler("fe")
	srv := &http.Server{Handler: hd}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Cleanup(b.Close)
	return &harness{t: t, b: b, url: "http://" + ln.Addr().String()}
}

// dialFrontend opens a raw client connection with a 10 s safety deadline.
func dialFrontend(t *testing.T, url string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestSlowRequestBodyTimesOut sends part of a request body and stalls: the
// client gets 408 after timeout client and its connection is closed, while
// a client that keeps sending within the timeout is served.
func TestSlowRequestBodyTimesOut(t *testing.T) {
	o := startRawOrigin(t, nil)
	h := newTimeoutHarness(t, 300*time.Millisecond, rawBackend(o))

	c := dialFrontend(t, h.url)
	io.WriteString(c, "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhello")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("connection not closed: %v (got %q)", err, got)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 408 ") {
		t.Fatalf("stalled body got %.100q, want 408", got)
	}
	st := h.b.Snapshot().Backend("b").Stats
	if st.CliAborts != 1 || st.RespErrors != 0 || st.Responses[4] != 0 {
		t.Fatalf("counted cli_abrt %d, eresp %d, 5xx %d; want 1, 0, 0", st.CliAborts, st.RespErrors, st.Responses[4])
	}

	// A body trickling in faster than the timeout goes through.
	c = dialFrontend(t, h.url)
	io.WriteString(c, "POST /steady HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
	for _, ch := range "hello" {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c, string(ch))
	}
	got, _ = io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 200 ") {
		t.Fatalf("steady body got %.100q, want 200", got)
	}
}

// TestClientThatStopsReading streams a large response to a client that
// never reads it: the balancer closes the connection after timeout client
// and counts a client abort.
func TestClientThatStopsReading(t *testing.T) {
	block := strings.Repeat("z", 32<<10)
	o := startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
		c.send("HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
		for range 1 << 15 {
			if _, err := c.Write([]byte(block)); err != nil {
				break
			}
		}
		return false
	})
	h := newTimeoutHarness(t, 300*time.Millisecond, rawBackend(o))
	c := dialFrontend(t, h.url)
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
	pollUntil(t, "client abort counted", func() bool {
		st := h.b.Snapshot().Backend("b").Stats
		return st.CliAborts == 1 && st.CurSessions == 0
	})
	// The connection was closed: reading drains what the kernels hold,
	// then ends.
	n, err := io.Copy(io.Discard, c)
	if err == nil && n >= 1<<30 {
		t.Fatalf("client got the whole body")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %d bytes", n)
	}
}

// TestUpstreamWriteTimesOut sends a large body to an origin that never
// reads it: timeout server applies to the writes and the client gets 504.
func TestUpstreamWriteTimesOut(t *testing.T) {
	done := make(chan struct{})
	o := startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
		<-done
		return false
	})
	t.Cleanup(func() { close(done) })
	be := rawBackend(o)
	be.TimeoutServer = 300 * time.Millisecond
	h := newTimeoutHarness(t, 0, be)
	c := dialFrontend(t, h.url)
	const size = 256 << 20
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", size)
	go func() {
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 504 ") {
		t.Fatalf("client got %q, %v; want 504", status, err)
	}
}
