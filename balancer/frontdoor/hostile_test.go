package frontdoor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"tether/balancer"
)

// recordingOrigin is a loopback origin that records every request it
// serves as "METHOD TARGET body=BODY".
type recordingOrigin struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func startOrigin(t *testing.T) *recordingOrigin {
	t.Helper()
	o := &recordingOrigin{}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		line := fmt.Sprintf("%s %s body=%q", r.Method, r.RequestURI, body)
		if err != nil {
			line += " err"
		}
		o.mu.Lock()
		o.seen = append(o.seen, line)
		o.mu.Unlock()
		fmt.Fprintf(w, "ok %s", r.RequestURI)
	}))
	// The origin must see OPTIONS * itself, not net/http's answer.
	o.srv.Config.DisableGeneralOptionsHandler = true
	o.srv.Start()
	t.Cleanup(o.srv.Close)
	return o
}

func (o *recordingOrigin) requests() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...)
}

// startFront runs the balancer's proxy for fe behind a frontdoor server
// over one origin, and returns the server's address.
func startFront(t *testing.T, fe balancer.Frontend, g balancer.Global) (string, *recordingOrigin) {
	t.Helper()
	o := startOrigin(t)
	return startFrontTo(t, o.srv.Listener.Addr().String(), fe, g), o
}

// startFrontTo runs the balancer's proxy for fe behind a frontdoor server
// over the origin at addr, and returns the server's address.
func startFrontTo(t *testing.T, addr string, fe balancer.Frontend, g balancer.Global) string {
	t.Helper()
	fe, h := proxyTo(t, addr, fe, g)
	return serveFront(t, fe, g, h)
}

// proxyTo returns fe, named and routed to one backend whose server is the
// origin at addr, and the balancer's handler for it.
func proxyTo(t testing.TB, addr string, fe balancer.Frontend, g balancer.Global) (balancer.Frontend, http.Handler) {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	fe.Name, fe.DefaultBackend = "fe", "be"
	cfg := balancer.Config{
		Global:    g,
		Frontends: []balancer.Frontend{fe},
		Backends: []balancer.Backend{{
			Name: "be", TimeoutConnect: time.Second, TimeoutServer: 5 * time.Second,
			Servers: []balancer.Server{{Name: "s1", Address: ap.Addr().String(), Port: int(ap.Port()), PortSet: true, Weight: 1}},
		}},
	}
	b, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	return fe, h
}

// serveFront serves h behind a frontdoor server and returns its address.
func serveFront(t testing.TB, fe balancer.Frontend, g balancer.Global, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(fe, g, h, slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// exchange writes raw bytes to addr and returns everything the server
// sends until it closes the connection.
func exchange(t *testing.T, addr, raw string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return readUntilClose(t, c)
}

func readUntilClose(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out bytes.Buffer
	_, err := io.Copy(&out, c)
	if err != nil && !isReset(err) {
		t.Fatalf("read the reply: %v (read so far %q)", err, out.Bytes())
	}
	return out.Bytes()
}

// isReset reports a connection reset, which a server closing with unread
// request bytes causes after its reply.
func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// reply is one response read back from raw bytes.
type reply struct {
	status int
	close  bool
	body   string
}

func parseReplies(t *testing.T, raw []byte) []reply {
	t.Helper()
	var out []reply
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return out
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("parse reply %d: %v in %q", len(out)+1, err, raw)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("read reply %d's body: %v in %q", len(out)+1, err, raw)
		}
		out = append(out, reply{status: resp.StatusCode, close: resp.Close, body: string(body)})
	}
}

// fastKeepAlive makes idle connections close soon, so that a client reading
// until close does not wait long.
var fastKeepAlive = balancer.Frontend{TimeoutClient: 5 * time.Second, TimeoutHTTPKeepAlive: 200 * time.Millisecond}

const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

// smugglingCase is a request-smuggling form followed by a pipelined
// request in the same bytes, and what the client and the origin must see.
type smugglingCase struct {
	name    string
	request string
	// replies are the statuses the client reads, in order.
	replies []int
	// exact400 says the single reply must be HAProxy's 400 page.
	exact400 bool
	// lastCloses says the last reply announces Connection: close.
	lastCloses bool
	origin     []string
}

// smugglingCases are the smuggling forms: the follow-up reaches the
// origin only when the first request was framed without ambiguity.
var smugglingCases = []smugglingCase{
	{
		name:    "content-length and chunked: chunked wins, then close",
		request: "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		replies: []int{200}, lastCloses: true,
		origin: []string{`POST /a body=""`},
	},
	{
		name:    "chunked then content-length, other case",
		request: "POST /a HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-LENGTH: 40\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + smuggled,
		replies: []int{200}, lastCloses: true,
		origin: []string{`POST /a body="abc"`},
	},
	{
		name:     "two different content-lengths",
		request:  "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:    "two equal content-lengths are one",
		request: "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + smuggled,
		replies: []int{200, 200},
		origin:  []string{`POST /a body="hello"`, `GET /smuggled body=""`},
	},
	{
		name:     "transfer-encoding chunked, identity",
		request:  "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:     "transfer-encoding identity, chunked",
		request:  "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:     "two transfer-encoding lines",
		request:  "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:    "transfer-encoding folded onto the next line is chunked",
		request: "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled,
		replies: []int{200, 200},
		origin:  []string{`POST /a body=""`, `GET /smuggled body=""`},
	},
	{
		// HAProxy 2.6 skips chunk extensions unread, as net/http does.
		name:    "control byte in a chunk extension",
		request: "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\x00\r\nhello\r\n0\r\n\r\n" + smuggled,
		replies: []int{200, 200},
		origin:  []string{`POST /a body="hello"`, `GET /smuggled body=""`},
	},
	{
		name:     "content-length +5",
		request:  "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:     "space before the colon",
		request:  "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:     "space before the colon of transfer-encoding",
		request:  "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:    "bare LF line ends",
		request: "POST /a HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello" + smuggled,
		replies: []int{200, 200},
		origin:  []string{`POST /a body="hello"`, `GET /smuggled body=""`},
	},
	{
		name:     "bare CR inside a header line",
		request:  "POST /a HTTP/1.1\r\nHost: a\r\nX-A: b\rContent-Length: 5\r\nContent-Length: 0\r\n\r\nhello" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:     "bare CR in the host line",
		request:  "POST /a HTTP/1.1\r\nHost: a\rX: y\r\nContent-Length: 5\r\n\r\nhello" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
	{
		name:     "HTTP/1.0 with transfer-encoding",
		request:  "POST /a HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + smuggled,
		replies:  []int{400},
		exact400: true,
	},
}

// TestSmuggling sends each smuggling form and checks what the client gets
// and what the origin sees.
func TestSmuggling(t *testing.T) {
	addr, o := startFront(t, fastKeepAlive, balancer.Global{})
	tests := smugglingCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(o.requests())
			raw := exchange(t, addr, tt.request)
			got := parseReplies(t, raw)
			var statuses []int
			for _, r := range got {
				statuses = append(statuses, r.status)
			}
			if fmt.Sprint(statuses) != fmt.Sprint(tt.replies) {
				t.Fatalf("replies %v, want %v:\n%s", statuses, tt.replies, raw)
			}
			if tt.exact400 && !bytes.Equal(raw, page400) {
				t.Errorf("reply is not HAProxy's 400 page:\n%q", raw)
			}
			if tt.lastCloses && !got[len(got)-1].close {
				t.Errorf("the last reply does not close the connection:\n%s", raw)
			}
			if seen := o.requests()[before:]; fmt.Sprint(seen) != fmt.Sprint(tt.origin) {
				t.Errorf("origin saw %q, want %q", seen, tt.origin)
			}
		})
	}
}

// TestNothingServedAfterClosingResponse checks the second guard against
// Content-Length with chunked: even when the handler drops the
// Connection: close it was given, the bytes after the request never reach
// the handler as a request of their own.
func TestNothingServedAfterClosingResponse(t *testing.T) {
	var mu sync.Mutex
	var served []string
	addr := serveFront(t, fastKeepAlive, balancer.Global{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served = append(served, r.RequestURI)
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Del("Connection")
		io.WriteString(w, "ok")
	}))
	raw := exchange(t, addr, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+smuggled)
	if got := parseReplies(t, raw); len(got) != 1 || got[0].status != 200 {
		t.Errorf("replies %+v, want one 200:\n%s", got, raw)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(served) != "[/a]" {
		t.Errorf("handler served %q, want only /a", served)
	}
}

// TestSmugglingBadChunks sends chunked bodies the server cannot frame: the
// connection ends and the pipelined request never reaches the origin.
func TestSmugglingBadChunks(t *testing.T) {
	addr, o := startFront(t, fastKeepAlive, balancer.Global{})
	for _, body := range []string{
		"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n", // chunk size beyond 64 bits
		"7fffffffffffffff\r\nhello\r\n0\r\n\r\n",   // a chunk the client never sends
		"5\r\nhello\r\nzz\r\n0\r\n\r\n",            // chunk size not hex
	} {
		t.Run(fmt.Sprintf("%q", body[:8]), func(t *testing.T) {
			before := len(o.requests())
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+body+smuggled)
			// A client stuck in a chunk that never ends gets no answer
			// until it gives up; half-closing is giving up.
			c.(*net.TCPConn).CloseWrite()
			raw := readUntilClose(t, c)
			if got := parseReplies(t, raw); len(got) > 1 || (len(got) == 1 && !got[0].close) {
				t.Errorf("replies %+v, want at most one, closing:\n%s", got, raw)
			}
			for _, r := range o.requests()[before:] {
				if strings.Contains(r, "/smuggled") {
					t.Errorf("the pipelined request reached the origin: %q", o.requests()[before:])
				}
			}
		})
	}
}

// TestHeaderLimit checks that a request head up to the limit is served and
// one byte more gets HAProxy's 400 page.
func TestHeaderLimit(t *testing.T) {
	for _, g := range []balancer.Global{{}, {BufSize: 8192, MaxRewrite: 1024}, {BufSize: 32768, MaxRewrite: 4096}} {
		limit := g.HeaderLimit()
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			addr, o := startFront(t, fastKeepAlive, g)
			for _, tt := range []struct {
				size int
				want int
			}{{limit, 200}, {limit + 1, 400}, {limit + 100, 400}} {
				head := requestHead(tt.size)
				// A body arriving with the head does not count against it.
				raw := exchange(t, addr, head+strings.Repeat("b", 8192))
				got := parseReplies(t, raw)
				if len(got) != 1 || got[0].status != tt.want {
					t.Fatalf("head of %d bytes: replies %+v, want one %d", len(head), got, tt.want)
				}
				if tt.want == 400 && !bytes.Equal(raw, page400) {
					t.Errorf("head of %d bytes: reply is not HAProxy's 400 page:\n%q", len(head), raw)
				}
			}
			if n := len(o.requests()); n != 1 {
				t.Errorf("origin saw %d requests, want 1", n)
			}
		})
	}
}

// requestHead returns a POST request head of exactly size bytes, with an
// 8192-byte body to follow.
func requestHead(size int) string {
	const frame = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 8192\r\nX-Pad: \r\n\r\n"
	return strings.Replace(frame, "X-Pad: ", "X-Pad: "+strings.Repeat("p", size-len(frame)), 1)
}

// TestTimeouts checks timeout http-request (408 page and close, from
// accept or from a later request's first byte) and timeout http-keep-alive
// (silent close).
func TestTimeouts(t *testing.T) {
	fe := balancer.Frontend{TimeoutClient: 5 * time.Second, TimeoutHTTPRequest: 300 * time.Millisecond, TimeoutHTTPKeepAlive: 200 * time.Millisecond}
	addr, o := startFront(t, fe, balancer.Global{})
	const get = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct {
		name  string
		sends string
		want  []byte // exact reply; nil means one 200 then a silent close
	}{
		{"nothing sent", "", page408},
		{"part of a request line", "GET /a HT", page408},
		{"head without its blank line", "GET /a HTTP/1.1\r\nHost: a\r\n", page408},
		{"head trickled past the limit", "trickle", page408},
		{"idle after a response", get, nil},
		{"a second request begun", get + "GET /b HTTP/1.1\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			var raw []byte
			if tt.sends == "trickle" {
				raw = trickle(t, addr, "GET /a HTTP/1.1\r\nHost: a\r\nX-Slow: "+strings.Repeat("s", 20), 50*time.Millisecond)
			} else {
				raw = exchange(t, addr, tt.sends)
			}
			if tt.want != nil {
				if !bytes.Equal(raw, tt.want) {
					t.Fatalf("reply %q, want HAProxy's 408 page", raw)
				}
				if elapsed := time.Since(start); elapsed < fe.TimeoutHTTPRequest {
					t.Errorf("408 after %v, before timeout http-request %v", elapsed, fe.TimeoutHTTPRequest)
				}
				return
			}
			got := parseReplies(t, raw[:bytes.LastIndex(raw, []byte("ok /a"))+len("ok /a")])
			if len(got) != 1 || got[0].status != 200 {
				t.Fatalf("replies %+v, want one 200:\n%s", got, raw)
			}
			rest := raw[bytes.LastIndex(raw, []byte("ok /a"))+len("ok /a"):]
			switch {
			case strings.HasSuffix(tt.sends, "\r\n\r\n") && len(rest) != 0:
				t.Errorf("idle keep-alive connection got %q before closing, want a silent close", rest)
			case !strings.HasSuffix(tt.sends, "\r\n\r\n") && !bytes.Equal(rest, page408):
				t.Errorf("begun second request got %q, want HAProxy's 408 page", rest)
			}
		})
	}
	for _, r := range o.requests() {
		if r != `GET /a body=""` {
			t.Errorf("origin saw %q", r)
		}
	}
}

// requestLineCase is a request whose start line or Host HAProxy checks.
type requestLineCase struct {
	name    string
	request string
	status  int
	origin  []string
}

// requestLineCases are absolute-form targets against Host, OPTIONS * and
// malformed heads.
var requestLineCases = []requestLineCase{
	{"absolute form, other host", "GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
	{"absolute form, other port", "GET http://a:81/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
	{"absolute form, same host", "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", 200, []string{`GET http://a/x body=""`}},
	{"absolute form, default port", "GET http://A:80/x HTTP/1.1\r\nHost: a\r\n\r\n", 200, []string{`GET http://A/x body=""`}},
	{"absolute form, default port in both", "GET https://a:443/x HTTP/1.1\r\nHost: a:443\r\n\r\n", 200, []string{`GET https://a/x body=""`}},
	{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 200, []string{`OPTIONS * body=""`}},
	{"missing host", "GET / HTTP/1.1\r\n\r\n", 400, nil},
	{"malformed request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, nil},
}

// trickle writes head one byte at a time, pausing between bytes, as a
// slow client does, and returns what the server sent until it closed. It
// stops writing once the server has closed.
func trickle(t *testing.T, addr, head string, pause time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for i := range len(head) {
			if _, err := io.WriteString(c, head[i:i+1]); err != nil {
				return
			}
			time.Sleep(pause)
		}
	}()
	return readUntilClose(t, c)
}

// TestHalfClosed checks what a client that closes its side gets: a
// response to each complete request, and HAProxy's 400 page for a request
// cut short or for a new connection closed without a byte.
func TestHalfClosed(t *testing.T) {
	addr, o := startFront(t, fastKeepAlive, balancer.Global{})
	const get = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	tests := []struct {
		name, sends string
		replies     []int
		exact400    bool
	}{
		{"nothing sent", "", []int{400}, true},
		{"part of a head", "GET /a HTTP/1.1\r\nHo", []int{400}, true},
		{"a complete request", get, []int{200}, false},
		{"a request and part of the next", get + "GET /b", []int{200, 400}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := exchangeHalfClosed(t, addr, tt.sends)
			var statuses []int
			for _, r := range parseReplies(t, raw) {
				statuses = append(statuses, r.status)
			}
			if fmt.Sprint(statuses) != fmt.Sprint(tt.replies) {
				t.Fatalf("replies %v, want %v:\n%s", statuses, tt.replies, raw)
			}
			if tt.exact400 && !bytes.Equal(raw, page400) {
				t.Errorf("reply is not HAProxy's 400 page:\n%q", raw)
			}
		})
	}
	for _, r := range o.requests() {
		if r != `GET /a body=""` {
			t.Errorf("origin saw %q", r)
		}
	}
}

// exchangeHalfClosed writes raw bytes, closes the writing side, and
// returns everything the server sends until it closes.
func exchangeHalfClosed(t *testing.T, addr, raw string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	return readUntilClose(t, c)
}

// TestRequestLine checks absolute-form targets against Host and that
// OPTIONS * reaches the origin.
func TestRequestLine(t *testing.T) {
	addr, o := startFront(t, fastKeepAlive, balancer.Global{})
	tests := requestLineCases
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(o.requests())
			raw := exchange(t, addr, tt.request)
			got := parseReplies(t, raw)
			if len(got) != 1 || got[0].status != tt.status {
				t.Fatalf("replies %+v, want one %d:\n%s", got, tt.status, raw)
			}
			if tt.status == 400 && !bytes.Equal(raw, page400) {
				t.Errorf("reply is not HAProxy's 400 page:\n%q", raw)
			}
			if seen := o.requests()[before:]; fmt.Sprint(seen) != fmt.Sprint(tt.origin) {
				t.Errorf("origin saw %q, want %q", seen, tt.origin)
			}
		})
	}
}
