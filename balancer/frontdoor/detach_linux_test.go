package frontdoor

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/connlimit"
)

// A clear-text connection parked for detachAfter gives up its net.Conn
// and comes back when its client writes: requests are served as before
// and see the same connection (its request count, its local address for
// dst_port), timeout http-keep-alive still ends it, its frontend slot is
// given back when it ends, and no descriptor is left behind.
func TestLongParkedConnectionIsDetached(t *testing.T) {
	keepAlive := idleHandoff + detachAfter + 1500*time.Millisecond
	fe := balancer.Frontend{TimeoutClient: 5 * time.Second, TimeoutHTTPKeepAlive: keepAlive}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limit := connlimit.NewLimit(1)
	ln := connlimit.NewListener(inner, slog.New(slog.DiscardHandler), limit)
	// The handler answers what the request's context says of its
	// connection.
	connView := func(w http.ResponseWriter, r *http.Request) {
		cc := balancer.ClientConnOf(r.Context())
		la, _ := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
		if cc == nil || la == nil {
			http.Error(w, "no connection in the request's context", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "requests=%d local=%s", cc.Requests(), la)
	}
	srv := New(fe, balancer.Global{}, http.HandlerFunc(connView), slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()

	detached := func() int {
		srv.parker.mu.Lock()
		defer srv.parker.mu.Unlock()
		n := 0
		for _, c := range srv.parker.parked {
			if c.detached != nil {
				n++
			}
		}
		return n
	}
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	requests := map[net.Conn]int{}
	ask := func(c net.Conn, br *bufio.Reader, path string) time.Time {
		t.Helper()
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", path, resp.StatusCode, body)
		}
		requests[c]++
		if want := fmt.Sprintf("requests=%d local=%s", requests[c], ln.Addr()); string(body) != want {
			t.Errorf("%s: the request saw %q, want %q", path, body, want)
		}
		return time.Now()
	}
	wait := idleHandoff + detachAfter + 3*pollTick

	// A first connection parks (which starts the parker and its epoll
	// set) and leaves: what is open then is the baseline.
	c, br := dial()
	ask(c, br, "/0")
	time.Sleep(idleHandoff + 3*pollTick)
	c.Close()
	time.Sleep(3 * pollTick)
	fdsBefore := openFDs(t)

	c, br = dial()
	ask(c, br, "/1")
	time.Sleep(wait)
	if n := detached(); n != 1 {
		t.Fatalf("%d connections detached after %v idle, want 1", n, wait)
	}
	ask(c, br, "/2")
	last := ask(c, br, "/3")
	if n := detached(); n != 0 {
		t.Fatalf("%d connections still detached after serving", n)
	}
	// Detached again, then ended by timeout http-keep-alive: a silent close.
	c.SetReadDeadline(time.Now().Add(keepAlive + 2*time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want the server's close", err)
	}
	if idle := time.Since(last); idle < keepAlive-50*time.Millisecond || idle > keepAlive+time.Second {
		t.Errorf("closed after %v idle, want about timeout http-keep-alive %v", idle, keepAlive)
	}
	c.Close()

	// A client that closes while detached gives its slot back (maxconn 1:
	// the next connection is served).
	c, br = dial()
	ask(c, br, "/4")
	time.Sleep(wait)
	if n := detached(); n != 1 {
		t.Fatalf("%d connections detached, want 1", n)
	}
	c.Close()
	c, br = dial()
	defer c.Close()
	ask(c, br, "/5")
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for limit.Current() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := limit.Current(); n != 0 {
		t.Errorf("%d frontend slots taken after every client left", n)
	}
	if after := openFDs(t); after > fdsBefore {
		t.Errorf("%d descriptors open after every client left, %d before", after, fdsBefore)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}
