package frontdoor

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"tether/balancer"
	"tether/balancer/tlsbind"
	"tether/balancer/tlsbind/tlsbindtest"
)

// tlsCounters counts what a TLS server reports.
type tlsCounters struct {
	accepted, closed, refused, in, out atomic.Int64
}

func (c *tlsCounters) ConnAccepted()           { c.accepted.Add(1) }
func (c *tlsCounters) ConnClosed()             { c.closed.Add(1) }
func (c *tlsCounters) Refused(int)             { c.refused.Add(1) }
func (c *tlsCounters) Transferred(in, out int) { c.in.Add(int64(in)); c.out.Add(int64(out)) }

// tlsFront runs the balancer's proxy for fe behind a TLS frontdoor server
// (certificate for front.test, ALPN h2,http/1.1) and returns its address,
// the origin, the counters and the CA that signed the certificate.
func tlsFront(t *testing.T, fe balancer.Frontend) (string, *recordingOrigin, *tlsCounters, *tlsbindtest.CA) {
	t.Helper()
	ca := tlsbindtest.NewCA(t, "Test CA")
	crt := tlsbindtest.WriteFile(t, t.TempDir(), "front.pem", ca.Issue(t, "front.test", "front.test").Bundle(ca))
	tb, err := tlsbind.Build(balancer.BindTLS{Certs: []balancer.CertSource{{Path: crt}}, ALPN: []string{"h2", "http/1.1"}}, balancer.SSLDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	o := startOrigin(t)
	return tlsFrontTo(t, fe, o, o.srv.Listener.Addr().String(), ca, tb)
}

// tlsFrontTo is tlsFront in front of the origin at originAddr.
func tlsFrontTo(t *testing.T, fe balancer.Frontend, o *recordingOrigin, originAddr string, ca *tlsbindtest.CA, tb *tlsbind.Bind) (string, *recordingOrigin, *tlsCounters, *tlsbindtest.CA) {
	t.Helper()
	fe, h := proxyTo(t, originAddr, fe, balancer.Global{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(fe, balancer.Global{}, h, slog.New(slog.DiscardHandler))
	srv.TLS = tb.Config()
	counters := &tlsCounters{}
	srv.Counters = counters
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), o, counters, ca
}

func tlsClient(ca *tlsbindtest.CA, h2 bool) *http.Client {
	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "front.test"}
	if h2 {
		return &http.Client{Transport: &http2.Transport{TLSClientConfig: conf}}
	}
	conf.NextProtos = []string{"http/1.1"}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
}

// TestTLSServesHTTP1AndH2: the same handler answers over HTTP/1.1 and
// HTTP/2 on a TLS bind, requests see their TLS state (redirect scheme
// https does not fire), and the connections are counted.
func TestTLSServesHTTP1AndH2(t *testing.T) {
	fe := fastKeepAlive
	fe.Redirects = []balancer.HTTPRule{{Words: []string{"redirect", "scheme", "https"}, Cond: []string{"if", "!{", "ssl_fc", "}"}}}
	addr, o, counters, ca := tlsFront(t, fe)
	for _, tc := range []struct {
		h2    bool
		proto string
	}{{false, "HTTP/1.1"}, {true, "HTTP/2.0"}} {
		c := tlsClient(ca, tc.h2)
		for i := 0; i < 2; i++ {
			resp, err := c.Get("https://" + addr + "/p")
			if err != nil {
				t.Fatalf("%s: %v", tc.proto, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Proto != tc.proto || string(body) != "ok /p" {
				t.Errorf("%s: %s %s %q", tc.proto, resp.Proto, resp.Status, body)
			}
		}
		c.CloseIdleConnections()
	}
	if got := len(o.requests()); got != 4 {
		t.Errorf("origin saw %d requests, want 4", got)
	}
	waitFor(t, func() bool { return counters.accepted.Load() == 2 && counters.closed.Load() == 2 },
		func() string {
			return fmt.Sprintf("accepted %d, closed %d connections", counters.accepted.Load(), counters.closed.Load())
		})
	if counters.in.Load() == 0 || counters.out.Load() == 0 {
		t.Errorf("bytes in %d out %d", counters.in.Load(), counters.out.Load())
	}
}

// TestTLSHostileClients: plain HTTP on the TLS port, a client that stalls
// in its handshake (until timeout client) and a garbage ClientHello each
// lose their connection, with no reply, and the server goes on serving.
func TestTLSHostileClients(t *testing.T) {
	// HAProxy bounds a handshake by timeout client, not http-request.
	fe := balancer.Frontend{TimeoutClient: 300 * time.Millisecond, TimeoutHTTPRequest: 10 * time.Second}
	addr, o, counters, ca := tlsFront(t, fe)
	for _, tc := range []struct {
		name string
		send string
	}{
		{"plain HTTP", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"stalled handshake", ""},
		{"half a ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},
		{"garbage ClientHello", "\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff"},
		{"garbage record", strings.Repeat("\xff", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.send)
			got := readUntilClose(t, c)
			// crypto/tls answers a malformed hello with an alert record
			// (content type 21); no HTTP bytes ever.
			if len(got) > 0 && got[0] != 21 {
				t.Errorf("server sent %q", got)
			}
		})
	}
	resp, err := tlsClient(ca, false).Get("https://" + addr + "/after")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(o.requests()) != 1 {
		t.Errorf("after the hostile clients: %s, origin saw %v", resp.Status, o.requests())
	}
	if counters.refused.Load() != 0 {
		t.Errorf("%d requests counted as refused", counters.refused.Load())
	}
}

// TestTLSShutdownWaitsForH2: Shutdown lets an HTTP/2 request in flight
// finish and then returns.
func TestTLSShutdownWaitsForH2(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	crt := tlsbindtest.WriteFile(t, t.TempDir(), "front.pem", ca.Issue(t, "front.test", "front.test").Bundle(ca))
	tb, err := tlsbind.Build(balancer.BindTLS{Certs: []balancer.CertSource{{Path: crt}}, ALPN: []string{"h2"}}, balancer.SSLDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(balancer.Frontend{}, balancer.Global{}, h, slog.New(slog.DiscardHandler))
	srv.TLS = tb.Config()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	got := make(chan string, 1)
	go func() {
		resp, err := tlsClient(ca, true).Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- resp.Proto + " " + string(b)
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(t.Context()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned with a request in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-got; r != "HTTP/2.0 done" {
		t.Errorf("request in flight got %q", r)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

func waitFor(t *testing.T, ok func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTLSWebsocketUpgrade: an HTTP/1.1 connection over TLS upgrades to a
// tunnel through the proxy, as a clear-text one does.
func TestTLSWebsocketUpgrade(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(brw, buf); err == nil {
			c.Write(append([]byte("echo:"), buf...))
		}
	}))
	defer origin.Close()
	ca := tlsbindtest.NewCA(t, "Test CA")
	crt := tlsbindtest.WriteFile(t, t.TempDir(), "front.pem", ca.Issue(t, "front.test", "front.test").Bundle(ca))
	tb, err := tlsbind.Build(balancer.BindTLS{Certs: []balancer.CertSource{{Path: crt}}, ALPN: []string{"h2", "http/1.1"}}, balancer.SSLDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _, _ := tlsFrontTo(t, balancer.Frontend{TimeoutClient: 5 * time.Second}, nil, origin.Listener.Addr().String(), ca, tb)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "front.test", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: front.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	io.WriteString(c, "ping")
	got := make([]byte, len("echo:ping"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "echo:ping" {
		t.Fatalf("tunnel echo %q, %v", got, err)
	}
}

// TestTLSIdleConnectionIsParked checks that a TLS keep-alive connection
// idle longer than idleHandoff waits in the parker, without a goroutine,
// and is served from there: a request after the wait, two pipelined
// records at once, and timeout http-keep-alive still counted from the
// last response.
func TestTLSIdleConnectionIsParked(t *testing.T) {
	keepAlive := idleHandoff + 600*time.Millisecond
	ca := tlsbindtest.NewCA(t, "Test CA")
	crt := tlsbindtest.WriteFile(t, t.TempDir(), "front.pem", ca.Issue(t, "front.test", "front.test").Bundle(ca))
	tb, err := tlsbind.Build(balancer.BindTLS{Certs: []balancer.CertSource{{Path: crt}}, ALPN: []string{"http/1.1"}}, balancer.SSLDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	o := startOrigin(t)
	fe, h := proxyTo(t, o.srv.Listener.Addr().String(), balancer.Frontend{TimeoutClient: 5 * time.Second, TimeoutHTTPKeepAlive: keepAlive}, balancer.Global{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(fe, balancer.Global{}, h, slog.New(slog.DiscardHandler))
	srv.TLS = tb.Config()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "front.test", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	answer := func(path string) time.Time {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if want := "ok " + path; string(body) != want {
			t.Fatalf("answer %q, want %q", body, want)
		}
		return time.Now()
	}
	parked := func() int {
		srv.parker.mu.Lock()
		defer srv.parker.mu.Unlock()
		return len(srv.parker.parked)
	}
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
	answer("/1")
	time.Sleep(idleHandoff + 150*time.Millisecond)
	if n := parked(); n != 1 {
		t.Fatalf("%d connections parked after %v idle, want the TLS one", n, idleHandoff+150*time.Millisecond)
	}
	// Two records in one burst: the parker wakes for the first, and the
	// second, read along with it, is served without waiting.
	io.WriteString(c, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
	io.WriteString(c, "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	answer("/2")
	last := answer("/3")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want the server's close", err)
	}
	if idle := time.Since(last); idle < keepAlive-50*time.Millisecond || idle > keepAlive+time.Second {
		t.Errorf("closed after %v idle, want about timeout http-keep-alive %v", idle, keepAlive)
	}
	if n := parked(); n != 0 {
		t.Errorf("%d connections still parked after the keep-alive timeout", n)
	}
}
