package compat

// The hostile-client differential tests: a client that sends a smuggling
// form, an oversized or odd request, or stalls, against HAProxy and the
// tether binary on the same configuration (hostileConfig: timeout client
// 400ms, server 500ms, http-request 300ms, tunnel 500ms). A class reads
// "client ANSWER, conn AFTERWARDS, origin REQUESTS NOTES, canaries ok";
// see hostile_harness_test.go.
//
// HAProxy 2.6.12 (Debian 12), observed by running each case:
//
//	CL and TE with a smuggled request   200, conn closed after the response; the origin
//	                                    gets the POST alone, chunked, Content-Length
//	                                    removed: "POST /h/cl-te HTTP/1.1\r\nhost:
//	                                    origin.test\r\ntransfer-encoding: chunked\r\n\r\n
//	                                    0\r\n\r\n"; the smuggled GET is never run
//	differing duplicate Content-Length  400, conn closed, origin nothing
//	Transfer-Encoding chunked, identity 400, conn closed, origin nothing
//	17 KB request header                400 (over tune.bufsize), conn closed, origin nothing
//	absolute-form URI with another Host 400, conn closed, origin nothing
//	OPTIONS *                           forwarded: the origin's 200, conn usable
//	slow header                         408 (timeout http-request), conn closed
//	slow body                           504 (timeout server, not client), conn closed;
//	                                    the origin got the head and 10 of 100 body
//	                                    bytes, then its connection closed
//	client not reading a large response 200 truncated: timeout client aborts both
//	                                    sides, the origin's write fails
//	space before the colon of           400, conn closed, origin nothing
//	Transfer-Encoding
//	Upgrade to a silent origin          504 (timeout server), conn usable
//	idle tunnel                         101, then both sides closed by the proxy
//	                                    (timeout tunnel)
//	client half-closes a tunnel         101; the FIN reaches the origin, which stays
//	                                    silent: both sides closed after timeout
//	                                    server-fin (100ms), not timeout tunnel (10s)
//	origin half-closes a tunnel         101, the FIN reaches the client, then the
//	                                    tunnel is closed at once: the client's next
//	                                    write meets a reset, the origin sees the close

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientDifferences are the cases in which Tether ends a client otherwise
// than HAProxy on purpose, each with the reason.
var clientDifferences = map[string]string{
	"slow body": "a body that stalls past timeout client gets 408 before the origin sees a partial " +
		"request; HAProxy forwards the head and part of the body, then answers 504 on timeout server",
}

// hostileClientCase is one misbehaving client: the bytes it sends (it may
// stop half-way and wait) and how it reads.
type hostileClientCase struct {
	name    string
	request string
	method  string       // of the request, to read the response; GET when empty
	script  originScript // the origin's answer; a plain 200 when nil
	// notReading leaves the response unread until the origin is done.
	notReading bool
	// tunnel waits, after the answer, for the proxy to close the
	// connection, and reports whether it did; then whether a write meets a
	// reset (the connection closed, not only half-closed).
	tunnel bool
	// halfClose shuts the client's sending side once the tunnel is open.
	halfClose bool
	// backend holds lines of the case's own for its backend.
	backend string
	// awaitOrigin waits after the answer until the origin has recorded a
	// request, which it does only when a cut request body ends.
	awaitOrigin bool
	// exactBytes puts the bytes the origin received in the class, header
	// names in lower case (HAProxy sends them so, Go canonicalises them).
	exactBytes bool
}

// plainAnswer is the origin's answer to a request that reaches it.
func plainAnswer(c *originConn, r *originRequest) bool {
	_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	return err == nil
}

// largeBody is the size of the response a client does not read: more than
// every socket buffer between the origin and the client holds.
const largeBody = 32 << 20

// writeLargeBody sends largeBody bytes and notes whether the proxy aborted
// the transfer or let it stall until the origin gave up.
func writeLargeBody(c *originConn, _ *originRequest) bool {
	c.SetWriteDeadline(time.Now().Add(originHoldLimit))
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", largeBody)
	chunk := make([]byte, 64<<10)
	for sent := 0; sent < largeBody; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.o.note("write stalled until the origin gave up")
			} else {
				c.o.note("write aborted by proxy")
			}
			return false
		}
	}
	c.o.note("all written")
	return true
}

// silentTunnel accepts the upgrade and then says nothing, noting whether
// the proxy closed the tunnel.
func silentTunnel(c *originConn, _ *originRequest) bool {
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
	if c.waitPeerClose(originHoldLimit) {
		c.o.note("tunnel closed by proxy")
	} else {
		c.o.note("tunnel held open")
	}
	return false
}

// silentAfterFIN accepts the upgrade, waits for the client's FIN to come
// through, then stays silent with its side open longer than the client
// waits.
func silentAfterFIN(c *originConn, _ *originRequest) bool {
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
	if !c.waitPeerClose(originHoldLimit) {
		c.o.note("no FIN")
		return false
	}
	c.o.note("FIN passed on")
	time.Sleep(answerLimit + time.Second) // silent and open, as scripted
	return false
}

// halfCloseTunnel accepts the upgrade, half-closes at once and notes
// whether the proxy then closed the connection.
func halfCloseTunnel(c *originConn, _ *originRequest) bool {
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
	c.Conn.(*net.TCPConn).CloseWrite()
	if c.waitPeerClose(originHoldLimit) {
		c.o.note("tunnel closed by proxy")
	} else {
		c.o.note("tunnel held open")
	}
	return false
}

const smuggledBody = "0\r\n\r\nGET /h/smuggled HTTP/1.1\r\nHost: origin.test\r\n\r\n"

var hostileClientCases = []hostileClientCase{
	{name: "CL and TE with a smuggled request", method: http.MethodPost, exactBytes: true,
		request: fmt.Sprintf("POST /h/cl-te HTTP/1.1\r\nHost: origin.test\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s", len(smuggledBody), smuggledBody)},
	{name: "differing duplicate Content-Length", method: http.MethodPost, exactBytes: true,
		request: "POST /h/dup-cl HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
	{name: "Transfer-Encoding chunked, identity", method: http.MethodPost, exactBytes: true,
		request: "POST /h/te-identity HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	{name: "17 KB request header",
		request: "GET /h/big-header HTTP/1.1\r\nHost: origin.test\r\nX-Big: " + strings.Repeat("a", 17<<10) + "\r\n\r\n"},
	{name: "absolute-form URI with another Host",
		request: "GET http://other.test/h/absolute HTTP/1.1\r\nHost: origin.test\r\n\r\n"},
	{name: "OPTIONS *", method: http.MethodOptions,
		request: "OPTIONS * HTTP/1.1\r\nHost: origin.test\r\n\r\n"},
	{name: "slow header",
		request: "GET /h/slow-header HTTP/1.1\r\nHost: origin.test\r\n"},
	{name: "slow body", method: http.MethodPost, awaitOrigin: true,
		request: "POST /h/slow-body HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 100\r\n\r\n0123456789"},
	{name: "client not reading a large response", notReading: true, script: writeLargeBody,
		request: "GET /h/large HTTP/1.1\r\nHost: origin.test\r\n\r\n"},
	{name: "space before the colon of Transfer-Encoding", method: http.MethodPost, exactBytes: true,
		request: fmt.Sprintf("POST /h/te-space HTTP/1.1\r\nHost: origin.test\r\nContent-Length: %d\r\nTransfer-Encoding : chunked\r\n\r\n%s", len(smuggledBody), smuggledBody)},
	{name: "Upgrade to a silent origin", script: slowAnswer,
		request: "GET /h/ws-silent HTTP/1.1\r\nHost: origin.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
	{name: "idle tunnel", tunnel: true, script: silentTunnel,
		request: "GET /h/ws HTTP/1.1\r\nHost: origin.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
	{name: "client half-closes a tunnel", tunnel: true, halfClose: true, script: silentAfterFIN,
		backend: "    timeout tunnel 10s\n    timeout server-fin 100ms\n",
		request: "GET /h/ws-fin HTTP/1.1\r\nHost: origin.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
	{name: "origin half-closes a tunnel", tunnel: true, script: halfCloseTunnel,
		backend: "    timeout tunnel 10s\n",
		request: "GET /h/ws-server-fin HTTP/1.1\r\nHost: origin.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
}

// dialSmallWindow connects with a small receive buffer, so that a client
// that does not read stops the transfer early.
func dialSmallWindow(t *testing.T, addr string) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{conn: c, br: bufio.NewReader(c)}
}

// waitClose waits up to limit for the proxy to close the connection.
func (c *rawClient) waitClose(limit time.Duration) string {
	c.conn.SetReadDeadline(time.Now().Add(limit))
	defer c.conn.SetReadDeadline(time.Time{})
	var buf [512]byte
	n, err := c.br.Read(buf[:])
	switch {
	case n > 0:
		return "data"
	case endOf(err, "closed") == "no response":
		return "held open"
	}
	return "closed"
}

// writeProbe writes to a connection the proxy half-closed, until a write
// fails (the proxy closed it, and answered with a reset) or limit passes.
func (c *rawClient) writeProbe(limit time.Duration) string {
	ok := pollUntil(limit, func() bool {
		_, err := c.conn.Write([]byte("x"))
		return err != nil
	})
	if ok {
		return "meets a reset"
	}
	return "goes through"
}

// lowerHeaderNames returns a request head with its header names in lower
// case.
func lowerHeaderNames(head []byte) string {
	lines := strings.SplitAfter(string(head), "\n")
	for i := 1; i < len(lines); i++ {
		if name, rest, ok := strings.Cut(lines[i], ":"); ok {
			lines[i] = strings.ToLower(name) + ":" + rest
		}
	}
	return strings.Join(lines, "")
}

// runHostileClientCase plays one case against one proxy and returns its
// class.
func runHostileClientCase(t *testing.T, w *hostileWorld, c hostileClientCase) string {
	t.Helper()
	addr, o := w.binds[c.name], w.origins[c.name]
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	var cl *rawClient
	if c.notReading {
		cl = dialSmallWindow(t, addr)
	} else {
		cl = dialRaw(t, addr)
	}
	cl.send(c.request)
	if c.notReading {
		pollUntil(answerLimit, func() bool { return len(o.requests()) > 0 })
		o.waitScripts(answerLimit)
	}
	a := cl.read(method, answerLimit)
	class := "client " + a.String()
	conn := "n/a"
	switch {
	case c.tunnel && a.Status == http.StatusSwitchingProtocols:
		if c.halfClose {
			cl.conn.(*net.TCPConn).CloseWrite()
		}
		end := cl.waitClose(answerLimit)
		class += " then " + end
		if end == "closed" && !c.halfClose {
			class += ", then a write " + cl.writeProbe(answerLimit)
		}
	case a.complete():
		conn = cl.probe("probe")
	}
	cl.conn.Close()
	if c.awaitOrigin {
		pollUntil(time.Second, func() bool { return len(o.requests()) > 0 })
	}
	o.waitScripts(answerLimit)
	origin := o.class()
	if c.exactBytes {
		var reqs []string
		for _, r := range o.requests() {
			reqs = append(reqs, fmt.Sprintf("%q", lowerHeaderNames(r.Head)+string(r.RawBody)))
		}
		origin = "[" + strings.Join(reqs, ", ") + "]"
	}
	canaries, details := runCanaries(t, addr, w.proxy)
	if details != "" {
		t.Logf("%s: %s: canaries: %s", w.proxy, c.name, details)
	}
	return fmt.Sprintf("%s, conn %s, origin %s, canaries %s", class, conn, origin, canaries)
}

// TestHostileClientMatchesHAProxy runs each misbehaving client against
// HAProxy and the tether binary and compares the outcome classes.
func TestHostileClientMatchesHAProxy(t *testing.T) {
	specs := make([]hostileCaseSpec, len(hostileClientCases))
	for i, c := range hostileClientCases {
		script := c.script
		if script == nil {
			script = plainAnswer
		}
		specs[i] = hostileCaseSpec{name: c.name, script: script, backend: c.backend}
	}
	haproxy, tether := startHostileWorlds(t, specs)
	for _, c := range hostileClientCases {
		t.Run(c.name, func(t *testing.T) {
			want := runHostileClientCase(t, haproxy, c)
			got := runHostileClientCase(t, tether, c)
			compareClasses(t, clientDifferences, c.name, want, got)
		})
	}
}
