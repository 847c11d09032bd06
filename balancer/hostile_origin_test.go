package balancer

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawOrigin is a loopback TCP server that reads HTTP/1.1 requests and
// answers each with the bytes its script writes, however malformed. It
// counts the requests it read by method and path.
type rawOrigin struct {
	ln     net.Listener
	addr   netip.AddrPort
	script func(c *rawConn, req *http.Request) bool

	mu     sync.Mutex
	counts map[string]int
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// rawConn is the origin's side of one connection from the balancer.
type rawConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// send writes s to the balancer at once.
func (c *rawConn) send(s string) {
	c.bw.WriteString(s)
	c.bw.Flush()
}

// startRawOrigin starts an origin whose script answers each request; the
// script returns false to close the connection. A nil script echoes.
func startRawOrigin(t testing.TB, script func(c *rawConn, req *http.Request) bool) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{ln: ln, addr: netip.MustParseAddrPort(ln.Addr().String()), script: script,
		counts: map[string]int{}, conns: map[net.Conn]struct{}{}}
	if o.script == nil {
		o.script = func(c *rawConn, req *http.Request) bool { c.send(echoResponse(req)); return true }
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			o.conns[nc] = struct{}{}
			o.mu.Unlock()
			o.wg.Add(1)
			go o.serve(nc)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		o.mu.Lock()
		for c := range o.conns {
			c.Close()
		}
		o.mu.Unlock()
		o.wg.Wait()
	})
	return o
}

func (o *rawOrigin) serve(nc net.Conn) {
	defer o.wg.Done()
	defer nc.Close()
	br := bufio.NewReader(nc)
	c := &rawConn{Conn: nc, br: br, bw: bufio.NewWriter(nc)}
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		o.mu.Lock()
		o.counts[req.Method+" "+req.URL.Path]++
		o.mu.Unlock()
		if !o.script(c, req) {
			return
		}
		io.Copy(io.Discard, req.Body)
	}
}

// count returns how many requests with this method and path the origin read.
func (o *rawOrigin) count(method, path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[method+" "+path]
}

// server returns the balancer's server entry for the origin.
func (o *rawOrigin) server() Server {
	return Server{Name: "s1", Address: o.addr.Addr().String(), Port: int(o.addr.Port()), PortSet: true, Weight: 1}
}

// echoResponse answers with the request's path as body and X-Echo-Path,
// and sends the request's Cookie back as Set-Cookie, so a response that
// reaches the wrong client is recognised.
func echoResponse(req *http.Request) string {
	var b strings.Builder
	body := req.URL.Path
	fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Echo-Path: %s\r\n", len(body), req.URL.Path)
	if ck := req.Header.Get("Cookie"); ck != "" {
		fmt.Fprintf(&b, "Set-Cookie: %s\r\n", ck)
	}
	b.WriteString("\r\n")
	if req.Method != http.MethodHead {
		b.WriteString(body)
	}
	return b.String()
}

// smuggled is a whole response an origin sends where none was asked for.
// A client that receives it got another exchange's bytes.
const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Echo-Path: /leaked\r\nSet-Cookie: user=leaked\r\n\r\nLEAKED"

// clientReply is what one client got from the balancer.
type clientReply struct {
	status int
	header http.Header
	body   string
	err    error
}

// fetch sends one request on a new client connection, as a separate user
// would, and reads the whole response.
func fetch(url, method, path, cookie string, body io.Reader) clientReply {
	req, err := http.NewRequest(method, url+path, body)
	if err != nil {
		return clientReply{err: err}
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return clientReply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return clientReply{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// checkCanaries sends requests from distinct users and fails unless each
// gets its own response and its own cookie back.
func checkCanaries(t *testing.T, url, name string, n int) {
	t.Helper()
	for i := range n {
		path := fmt.Sprintf("/canary/%s/%d", name, i)
		cookie := fmt.Sprintf("user=c%d", i)
		got := fetch(url, http.MethodGet, path, cookie, nil)
		if got.err != nil {
			t.Fatalf("canary %d: %v", i, got.err)
		}
		if got.status != 200 || got.body != path || got.header.Get("X-Echo-Path") != path {
			t.Fatalf("canary %d for %s got status %d, X-Echo-Path %q, body %q", i, path, got.status, got.header.Get("X-Echo-Path"), got.body)
		}
		if sc := got.header.Values("Set-Cookie"); len(sc) != 1 || sc[0] != cookie {
			t.Fatalf("canary %d with cookie %q got Set-Cookie %q", i, cookie, sc)
		}
	}
}

// rawBackend is a backend with the raw origin as its only server.
func rawBackend(o *rawOrigin) Backend {
	return Backend{Name: "b", Retries: 3, TimeoutServer: 5 * time.Second, Servers: []Server{o.server()}}
}

// TestOverlongResponsesNeverReachAnotherClient makes an origin send more
// than its response's framing says, in every way, then sends requests from
// other users: each must get its own response, never the extra bytes.
func TestOverlongResponsesNeverReachAnotherClient(t *testing.T) {
	idleWrite := make(chan struct{})
	idleWritten := make(chan struct{})
	cases := []struct {
		name   string
		method string
		// answer is the origin's reply to the hostile request.
		answer func(c *rawConn, req *http.Request)
		// afterward runs once the client got its reply.
		afterward func()
	}{
		{"body on HEAD", http.MethodHead, func(c *rawConn, req *http.Request) {
			c.send(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled))
		}, nil},
		{"body on 204", http.MethodGet, func(c *rawConn, req *http.Request) {
			c.send("HTTP/1.1 204 No Content\r\n\r\n" + smuggled)
		}, nil},
		{"body on 304", http.MethodGet, func(c *rawConn, req *http.Request) {
			c.send("HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n" + smuggled)
		}, nil},
		{"Content-Length shorter than body", http.MethodGet, func(c *rawConn, req *http.Request) {
			c.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + smuggled)
		}, nil},
		{"unsolicited second response", http.MethodGet, func(c *rawConn, req *http.Request) {
			c.send(echoResponse(req) + smuggled)
		}, nil},
		{"bytes sent while idle", http.MethodGet, func(c *rawConn, req *http.Request) {
			c.send(echoResponse(req))
			<-idleWrite
			c.send(smuggled)
			close(idleWritten)
		}, func() {
			close(idleWrite)
			<-idleWritten
		}},
		{"close after response while idle", http.MethodGet, func(c *rawConn, req *http.Request) {
			c.send(echoResponse(req))
			c.Close()
		}, nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hostile := fmt.Sprintf("/hostile/%d", i)
			o := startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
				if req.URL.Path == hostile {
					tc.answer(c, req)
					return true
				}
				c.send(echoResponse(req))
				return true
			})
			h := newHarness(t, rawBackend(o), nil)
			// Warm the pool so the hostile request reuses a connection the
			// canaries would reuse too.
			checkCanaries(t, h.url, "warm", 1)
			got := fetch(h.url, tc.method, hostile, "user=attacker", nil)
			if got.err != nil {
				t.Fatalf("hostile request: %v", got.err)
			}
			if tc.afterward != nil {
				tc.afterward()
			}
			checkCanaries(t, h.url, "after", 4)
			if sc := got.header.Values("Set-Cookie"); len(sc) > 0 && sc[0] == "user=leaked" {
				t.Fatalf("hostile request got the smuggled response")
			}
		})
	}
}

// TestBrokenBodiesAreVisible makes an origin break its response body in
// every way: a client must never take the result for a complete response.
// A failure found before anything was sent is a 502 (504 for a timeout);
// later, the client connection is cut. Each is counted as HAProxy does and
// never as a 2xx.
func TestBrokenBodiesAreVisible(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	cases := []struct {
		name   string
		answer string
		// status is the client's status, 0 when the response must be cut.
		status           int
		eresp, srvAborts int64
	}{
		{"chunked cut off", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 0, 1, 1},
		{"chunked cut off mid-chunk", fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s", len(big)+10, big), 0, 1, 1},
		{"invalid chunk size first", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 502, 1, 0},
		// Within the first buffer, as HAProxy parses it before answering.
		{"invalid chunk size later", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n", 502, 1, 0},
		{"missing CRLF after chunk", fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%sXX0\r\n\r\n", len(big), big), 0, 1, 0},
		{"Content-Length cut short", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello", 0, 1, 1},
		{"Content-Length body missing", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 502, 1, 1},
		{"Content-Length large cut short", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big)+1, big), 0, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
				if req.URL.Path == "/broken" {
					c.send(tc.answer)
					return false
				}
				c.send(echoResponse(req))
				return true
			})
			h := newHarness(t, rawBackend(o), nil)
			got := fetch(h.url, http.MethodGet, "/broken", "", nil)
			switch {
			case tc.status == 0 && got.err == nil:
				t.Fatalf("client got a complete %d response of %d bytes, want it cut short", got.status, len(got.body))
			case tc.status != 0 && (got.err != nil || got.status != tc.status):
				t.Fatalf("client got %d, %v; want %d", got.status, got.err, tc.status)
			}
			// The handler counts after the client saw the response end.
			pollUntil(t, "error counted", func() bool {
				st := h.b.Snapshot().Backend("b").Stats
				return st.RespErrors+st.SrvAborts > 0
			})
			bs := h.b.Snapshot().Backend("b")
			// A status the client got counts as a 2xx, as HAProxy counts
			// it; an error page replacing the response counts as the
			// backend's 5xx, not the server's.
			var forwarded, replaced int64 = 1, 0
			if tc.status != 0 {
				forwarded, replaced = 0, 1
			}
			for _, st := range []struct {
				who                          string
				eresp, srvAborts, ok2xx, bad int64
				wantBad                      int64
			}{
				{"backend", bs.Stats.RespErrors, bs.Stats.SrvAborts, bs.Stats.Responses[1], bs.Stats.Responses[4], replaced},
				{"server", bs.Servers[0].Stats.RespErrors, bs.Servers[0].Stats.SrvAborts, bs.Servers[0].Stats.Responses[1], bs.Servers[0].Stats.Responses[4], 0},
			} {
				if st.eresp != tc.eresp || st.srvAborts != tc.srvAborts || st.ok2xx != forwarded {
					t.Errorf("%s counted eresp %d, srv_abrt %d, 2xx %d; want %d, %d, %d", st.who, st.eresp, st.srvAborts, st.ok2xx, tc.eresp, tc.srvAborts, forwarded)
				}
				if st.bad != st.wantBad {
					t.Errorf("%s counted 5xx %d for client status %d, want %d", st.who, st.bad, tc.status, st.wantBad)
				}
			}
			checkCanaries(t, h.url, "after", 2)
		})
	}
}

// TestRequestsAreNotReplayed sends requests on a reused connection that the
// origin drops after reading them, or never answers: only a safe, bodyless
// request whose connection failed before any response byte is sent again,
// and nothing is sent again after a timeout.
func TestRequestsAreNotReplayed(t *testing.T) {
	cases := []struct {
		method string
		body   string
		// answer is what the origin sends before closing, the first time.
		answer string
		silent bool // the origin never answers the first time
		status int
		sent   int // times the origin must have read the request
	}{
		{http.MethodPost, "", "", false, 502, 1},
		{http.MethodDelete, "", "", false, 502, 1},
		{http.MethodPatch, "", "", false, 502, 1},
		{http.MethodPut, "", "", false, 502, 1},
		{http.MethodPost, "data", "", false, 502, 1},
		{http.MethodGet, "data", "", false, 502, 1},
		{http.MethodGet, "", "HTTP/1.1 200 OK\r\n", false, 502, 1},
		{http.MethodGet, "", "", true, 504, 1},
		{http.MethodPost, "", "", true, 504, 1},
		{http.MethodGet, "", "", false, 200, 2},
		{http.MethodHead, "", "", false, 200, 2},
		{http.MethodOptions, "", "", false, 200, 2},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s body=%q answer=%q silent=%v", tc.method, tc.body, tc.answer, tc.silent)
		t.Run(name, func(t *testing.T) {
			done := make(chan struct{})
			var o *rawOrigin
			o = startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
				if req.URL.Path != "/target" || o.count(req.Method, req.URL.Path) > 1 {
					c.send(echoResponse(req))
					return true
				}
				if tc.silent {
					<-done
					return false
				}
				io.Copy(io.Discard, req.Body)
				c.send(tc.answer)
				return false
			})
			t.Cleanup(func() { close(done) })
			be := rawBackend(o)
			be.TimeoutServer = 300 * time.Millisecond
			h := newHarness(t, be, nil)
			// Warm the pool: the request goes on a reused connection.
			checkCanaries(t, h.url, "warm", 1)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			got := fetch(h.url, tc.method, "/target", "", body)
			if got.err != nil || got.status != tc.status {
				t.Fatalf("client got %d, %v; want %d", got.status, got.err, tc.status)
			}
			if n := o.count(tc.method, "/target"); n != tc.sent {
				t.Fatalf("origin read the request %d times, want %d", n, tc.sent)
			}
		})
	}
}

// TestSafeRequestOutlivesClosedIdleConnections: when the server drops
// several idle connections at once (a server going away closes them all),
// a safe request that met two of them is sent again until it reaches a
// live connection, as HAProxy's retries do, and a request with a body is
// still never sent again.
func TestSafeRequestOutlivesClosedIdleConnections(t *testing.T) {
	release := make(chan struct{})
	var o *rawOrigin
	o = startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
		switch {
		case strings.HasPrefix(req.URL.Path, "/warm"):
			<-release // hold the three warm-up requests together
		case req.URL.Path == "/target" && o.count(req.Method, req.URL.Path) <= 2:
			io.Copy(io.Discard, req.Body)
			return false // read, then close without an answer
		}
		c.send(echoResponse(req))
		return true
	})
	h := newHarness(t, rawBackend(o), nil)
	// Three requests at once leave three idle connections in the pool.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fetch(h.url, http.MethodGet, fmt.Sprintf("/warm/%d", i), "", nil)
		}()
	}
	pollUntil(t, "three warm-up requests at the origin", func() bool {
		return o.count(http.MethodGet, "/warm/0")+o.count(http.MethodGet, "/warm/1")+o.count(http.MethodGet, "/warm/2") == 3
	})
	close(release)
	wg.Wait()
	got := fetch(h.url, http.MethodGet, "/target", "", nil)
	if got.err != nil || got.status != http.StatusOK {
		t.Fatalf("client got %d, %v; want 200", got.status, got.err)
	}
	if n := o.count(http.MethodGet, "/target"); n != 3 {
		t.Fatalf("origin read the request %d times, want 3", n)
	}
}

// newHarnessWith is newHarness with global settings.
func newHarnessWith(t *testing.T, global Global, be Backend) *harness {
	t.Helper()
	return startHarness(t, global, be, Options{})
}

// rawExchange sends raw bytes to the balancer's frontend and returns what
// it answered until it closed the connection or 5 seconds passed.
func rawExchange(t *testing.T, url, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, request)
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestResponseParsingAsHAProxy checks the response forms HAProxy 2.6
// rejects with 502, or accepts and normalises.
func TestResponseParsingAsHAProxy(t *testing.T) {
	block := func(total int) string {
		// A header block of total bytes, status line and blank line included.
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
		for b.Len()+2 < total {
			n := min(100, total-b.Len()-2)
			if n < 8 {
				n = 8
			}
			fmt.Fprintf(&b, "X%0*d:v\r\n", n-5, b.Len())
		}
		b.WriteString("\r\n")
		return b.String()
	}
	cases := []struct {
		name   string
		global Global
		answer string
		status int
		// header is a header the client must get exactly once, when set.
		header string
	}{
		{name: "Content-Length with plus sign", answer: "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", status: 502},
		{name: "Content-Length negative", answer: "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", status: 502},
		{name: "Content-Length hex", answer: "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok", status: 502},
		{name: "duplicate identical Content-Length merged", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", status: 200, header: "Content-Length: 2"},
		{name: "Content-Length list merged", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", status: 200, header: "Content-Length: 2"},
		{name: "different Content-Lengths", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!", status: 502},
		{name: "different Content-Length list", answer: "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok!", status: 502},
		{name: "bare CR in header value", answer: "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok", status: 502},
		{name: "NUL in header value", answer: "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok", status: 502},
		{name: "101 without Upgrade asked", answer: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 502},
		{name: "header block just within the limit", answer: block(15360) + "ok", status: 200},
		{name: "header block over the limit", answer: block(15361) + "ok", status: 502},
		{name: "many small headers over the limit", answer: block(200000) + "ok", status: 502},
		{name: "larger tune.bufsize", global: Global{BufSize: 65536}, answer: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 40000) + "\r\nContent-Length: 2\r\n\r\nok", status: 200},
		{name: "smaller tune.bufsize", global: Global{BufSize: 4096}, answer: block(4000) + "ok", status: 502},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
				c.send(tc.answer)
				return false
			})
			h := newHarnessWith(t, tc.global, rawBackend(o))
			got := rawExchange(t, h.url, "GET /x HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
			if want := fmt.Sprintf("HTTP/1.1 %d ", tc.status); !strings.HasPrefix(got, want) {
				t.Fatalf("client got %.200q, want %q", got, want)
			}
			if tc.header != "" && strings.Count(got, "\r\n"+tc.header+"\r\n") != 1 {
				t.Fatalf("client got %.300q, want one %q", got, tc.header)
			}
			st := h.b.Snapshot().Backend("b").Stats
			if tc.status == 502 && (st.RespErrors != 1 || st.Responses[4] != 1) {
				t.Fatalf("502 counted eresp %d, 5xx %d; want 1, 1", st.RespErrors, st.Responses[4])
			}
		})
	}
}

// TestClientBodyFailureIsTheClients sends request bodies that are
// malformed or cut off: the client's 400 or a client abort, never a 502
// nor a server error.
func TestClientBodyFailureIsTheClients(t *testing.T) {
	cases := []struct {
		name, request string
		// closeAfter closes the client's writing side after the request.
		closeAfter bool
		status     string
		cliAborts  int64
	}{
		{"bad chunk size", "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", false, "HTTP/1.1 400 ", 0},
		{"missing CRLF after chunk", "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", false, "HTTP/1.1 400 ", 0},
		{"Content-Length body cut off", "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhello", true, "", 1},
		{"chunked body cut off", "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true, "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := startRawOrigin(t, nil)
			h := newHarness(t, rawBackend(o), nil)
			c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.request)
			if tc.closeAfter {
				c.(*net.TCPConn).CloseWrite()
			}
			got, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(got), tc.status) || tc.status == "" && len(got) > 0 {
				t.Fatalf("client got %.200q, want %q", got, tc.status)
			}
			pollUntil(t, "request finished", func() bool {
				st := h.b.Snapshot().Backend("b").Stats
				return st.CurSessions == 0
			})
			st := h.b.Snapshot().Backend("b").Stats
			if st.RespErrors != 0 || st.Responses[4] != 0 || st.CliAborts != tc.cliAborts {
				t.Fatalf("counted eresp %d, 5xx %d, cli_abrt %d; want 0, 0, %d", st.RespErrors, st.Responses[4], st.CliAborts, tc.cliAborts)
			}
		})
	}
}
