package balancer

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// upgradeOrigin answers an Upgrade request with 101 and then runs tunnel
// on the connection; other requests are echoed. It records each request's
// headers.
func upgradeOrigin(t *testing.T, tunnel func(c *rawConn)) (*rawOrigin, chan http.Header) {
	seen := make(chan http.Header, 16)
	o := startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
		seen <- req.Header
		if req.Header.Get("Upgrade") == "" {
			c.send(echoResponse(req))
			return true
		}
		c.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\nX-Origin: s1\r\n\r\n")
		tunnel(c)
		return false
	})
	return o, seen
}

// echoTunnel sends back what it reads, then half-closes and ends on EOF.
func echoTunnel(c *rawConn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.br.Read(buf)
		if n > 0 {
			c.Write(buf[:n])
		}
		if err != nil {
			io.WriteString(c, "bye")
			c.Conn.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// openTunnel sends an Upgrade request and returns the connection and the
// response head.
func openTunnel(t *testing.T, url string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c := dialFrontend(t, url)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: test\r\nCookie: user=1\r\n\r\n")
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read response head: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			return c, br, head.String()
		}
	}
}

// TestUpgradeTunnel upgrades a connection: the client gets the 101 head
// with the origin's headers, bytes flow both ways, and a half-close travels
// through while the other direction goes on.
func TestUpgradeTunnel(t *testing.T) {
	o, _ := upgradeOrigin(t, echoTunnel)
	h := newTimeoutHarness(t, 5*time.Second, rawBackend(o))
	c, br, head := openTunnel(t, h.url)
	if !strings.HasPrefix(head, "HTTP/1.1 101 ") || !strings.Contains(head, "\r\nUpgrade: test\r\n") || !strings.Contains(head, "\r\nX-Origin: s1\r\n") {
		t.Fatalf("response head %q", head)
	}
	io.WriteString(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	c.(*net.TCPConn).CloseWrite()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after half-close got %q, %v; want bye then EOF", rest, err)
	}
	pollUntil(t, "tunnel counted", func() bool {
		st := h.b.Snapshot().Backend("b").Stats
		return st.Responses[0] == 1 && st.CurSessions == 0
	})
	st := h.b.Snapshot().Backend("b").Stats
	// bin counts the request head forwarded, then the 4 tunnel bytes.
	if st.BytesIn <= 4 || st.BytesIn > 4+512 || st.BytesOut != 7 {
		t.Fatalf("tunnel bytes in %d, out %d; want the request head plus 4, 7", st.BytesIn, st.BytesOut)
	}
}

// TestUpgradeRequestHeaders compares what the origin receives for the same
// request with and without Upgrade: the same headers (X-Forwarded-For
// appended, nothing added such as Accept-Encoding), Upgrade kept.
func TestUpgradeRequestHeaders(t *testing.T) {
	o, seen := upgradeOrigin(t, func(c *rawConn) {})
	be := rawBackend(o)
	be.ForwardFor = true
	h := newTimeoutHarness(t, 5*time.Second, be)
	send := func(extra string) http.Header {
		c := dialFrontend(t, h.url)
		io.WriteString(c, "GET /h HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 192.0.2.1\r\nX-A: 1\r\n"+extra+"\r\n")
		bufio.NewReader(c).ReadString('\n')
		return <-seen
	}
	plain := send("")
	up := send("Connection: Upgrade\r\nUpgrade: test\r\n")
	if got := up.Get("Upgrade"); got != "test" {
		t.Fatalf("origin saw Upgrade %q", got)
	}
	if got := up.Get("Connection"); !strings.EqualFold(got, "upgrade") {
		t.Fatalf("origin saw Connection %q", got)
	}
	delete(up, "Upgrade")
	delete(up, "Connection")
	for k, v := range plain {
		if !slices.Equal(up[k], v) {
			t.Errorf("%s: upgrade request had %q, plain request %q", k, up[k], v)
		}
	}
	for k, v := range up {
		if _, ok := plain[k]; !ok {
			t.Errorf("upgrade request added %s: %q", k, v)
		}
	}
	if xff := plain.Values("X-Forwarded-For"); len(xff) != 2 || xff[0] != "192.0.2.1" || xff[1] != "127.0.0.1" {
		t.Fatalf("X-Forwarded-For %q", xff)
	}
}

// TestUpgradeFailures: a silent origin gets 504 after timeout server, a
// refused connection is retried like any request and then 503, and an
// answer other than 101 is forwarded as a normal response.
func TestUpgradeFailures(t *testing.T) {
	t.Run("silent origin", func(t *testing.T) {
		done := make(chan struct{})
		o := startRawOrigin(t, func(c *rawConn, req *http.Request) bool { <-done; return false })
		t.Cleanup(func() { close(done) })
		be := rawBackend(o)
		be.TimeoutServer = 300 * time.Millisecond
		h := newTimeoutHarness(t, 5*time.Second, be)
		_, _, head := openTunnel(t, h.url)
		if !strings.HasPrefix(head, "HTTP/1.1 504 ") {
			t.Fatalf("response head %q, want 504", head)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		ap := netip.MustParseAddrPort(ln.Addr().String())
		ln.Close()
		be := Backend{Name: "b", Retries: 2, TimeoutConnect: 50 * time.Millisecond,
			Servers: []Server{{Name: "s1", Address: ap.Addr().String(), Port: int(ap.Port()), PortSet: true, Weight: 1}}}
		h := newTimeoutHarness(t, 5*time.Second, be)
		_, _, head := openTunnel(t, h.url)
		if !strings.HasPrefix(head, "HTTP/1.1 503 ") {
			t.Fatalf("response head %q, want 503", head)
		}
		st := h.b.Snapshot().Backend("b").Stats
		if st.Retries != 2 || st.ConnErrors != 1 {
			t.Fatalf("retries %d, connection errors %d; want 2, 1", st.Retries, st.ConnErrors)
		}
	})
	t.Run("answer without upgrade", func(t *testing.T) {
		o := startRawOrigin(t, nil)
		h := newTimeoutHarness(t, 5*time.Second, rawBackend(o))
		c, br, head := openTunnel(t, h.url)
		if !strings.HasPrefix(head, "HTTP/1.1 200 ") || !strings.Contains(head, "\r\nSet-Cookie: user=1\r\n") {
			t.Fatalf("response head %q, want the origin's 200", head)
		}
		body := make([]byte, 3)
		if _, err := io.ReadFull(br, body); err != nil || string(body) != "/ws" {
			t.Fatalf("body %q, %v", body, err)
		}
		// The client connection goes on as HTTP.
		io.WriteString(c, "GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.Header.Get("X-Echo-Path") != "/next" {
			t.Fatalf("next request: %v", err)
		}
	})
}

// TestTunnelInactivity closes an idle tunnel after timeout tunnel, or
// after timeout client when no tunnel timeout is set, while traffic in
// either direction keeps it open.
func TestTunnelInactivity(t *testing.T) {
	push := func(c *rawConn) {
		// Sends a byte every 100 ms for 800 ms, then waits for the close.
		for range 8 {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(c, "."); err != nil {
				return
			}
		}
		io.Copy(io.Discard, c.br)
	}
	cases := []struct {
		name    string
		client  time.Duration
		tunnel  time.Duration
		server  time.Duration
		origin  func(c *rawConn)
		traffic bool // the client sends every 100 ms
		want    string
	}{
		{"idle, timeout tunnel", 30 * time.Second, 300 * time.Millisecond, 30 * time.Second, func(c *rawConn) { io.Copy(io.Discard, c.br) }, false, ""},
		{"idle, timeout client", 300 * time.Millisecond, 0, 30 * time.Second, func(c *rawConn) { io.Copy(io.Discard, c.br) }, false, ""},
		{"idle, timeout server", 30 * time.Second, 0, 300 * time.Millisecond, func(c *rawConn) { io.Copy(io.Discard, c.br) }, false, ""},
		{"client keeps talking", 30 * time.Second, 300 * time.Millisecond, 30 * time.Second, echoTunnel, true, "........"},
		{"server keeps pushing", 30 * time.Second, 300 * time.Millisecond, 30 * time.Second, push, false, "........"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, _ := upgradeOrigin(t, tc.origin)
			be := rawBackend(o)
			be.TimeoutTunnel, be.TimeoutServer = tc.tunnel, tc.server
			h := newTimeoutHarness(t, tc.client, be)
			c, br, head := openTunnel(t, h.url)
			if !strings.HasPrefix(head, "HTTP/1.1 101 ") {
				t.Fatalf("response head %q", head)
			}
			if tc.traffic {
				go func() {
					for range 8 {
						time.Sleep(100 * time.Millisecond)
						io.WriteString(c, ".")
					}
				}()
			}
			got, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("tunnel not closed: %v (got %q)", err, got)
			}
			if !strings.HasPrefix(string(got), tc.want) {
				t.Fatalf("got %q before the close, want %q", got, tc.want)
			}
		})
	}
}

// TestTunnelHalfClose ends a tunnel one side half-closed as HAProxy 2.6
// does: after the client's FIN the server has timeout server-fin (not
// timeout tunnel) to finish; the server's FIN ends the tunnel at once,
// the client getting the FIN before the close.
func TestTunnelHalfClose(t *testing.T) {
	t.Run("client first, timeout server-fin", func(t *testing.T) {
		release := make(chan struct{})
		o, _ := upgradeOrigin(t, func(c *rawConn) {
			io.Copy(io.Discard, c.br)
			<-release // keeps its side open, silent
		})
		t.Cleanup(func() { close(release) })
		be := rawBackend(o)
		be.TimeoutTunnel, be.TimeoutServerFin = 30*time.Second, 300*time.Millisecond
		h := newTimeoutHarness(t, 30*time.Second, be)
		c, br, _ := openTunnel(t, h.url)
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if rest, err := io.ReadAll(br); err != nil {
			t.Fatalf("tunnel still open after the client's FIN: %v (got %q); want it closed after timeout server-fin", err, rest)
		}
	})
	t.Run("server first", func(t *testing.T) {
		closed := make(chan error, 1)
		o, _ := upgradeOrigin(t, func(c *rawConn) {
			io.WriteString(c, "bye")
			c.Conn.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := io.Copy(io.Discard, c.br)
			closed <- err
		})
		be := rawBackend(o)
		be.TimeoutTunnel = 30 * time.Second
		h := newTimeoutHarness(t, 30*time.Second, be)
		c, br, _ := openTunnel(t, h.url)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if rest, err := io.ReadAll(br); err != nil || string(rest) != "bye" {
			t.Fatalf("client got %q, %v; want bye then the FIN", rest, err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("server connection not closed after the server's FIN: %v", err)
		}
		// The client connection is closed too: a write meets a reset.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := io.WriteString(c, "x"); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("client connection still open after the server's FIN")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
