package frontdoor

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tether/balancer"
)

// maxScannedLine is how much of a header line the scanner keeps when the
// line spans two reads: enough for the names it looks for and a host name.
const maxScannedLine = 320

// clientConn is an accepted client connection as net/http sees it. It
// notices what net/http hides from a handler (the raw header names read,
// a read deadline expiring before a request head was complete) and swaps
// net/http's own error replies for HAProxy's.
//
// net/http never runs two reads at once on a connection; the fields shared
// with the handler's goroutine are atomics or guarded by mu.
type clientConn struct {
	net.Conn
	// writeGrace bounds the write of an error page at close to a client
	// that may not read.
	writeGrace time.Duration
	// counters, if not nil, counts the connection, its bytes and the
	// requests refused here.
	counters Counters
	// accepted is when the connection was accepted, ready when its
	// handshakes ended (accepted for a clear-text connection).
	accepted, ready time.Time
	// timed says the frontend logs: the connection then notes when each
	// request's first byte arrives and when its response ended (unix
	// nanoseconds, 0 for none yet), for the log's timers.
	timed               bool
	firstByte, answered atomic.Int64
	// closed records that Close ran once.
	closed atomic.Bool

	// inHandler is set while a handler runs for a request of this connection.
	inHandler atomic.Bool
	// handled counts requests that reached the handler.
	handled atomic.Int64
	// idleBytes counts bytes read since the last handler returned (or
	// since accept): a next request head has begun.
	idleBytes atomic.Int64
	// deadlinesSinceHandler counts the future read deadlines net/http set
	// since the last handler returned: the first bounds the keep-alive
	// idle wait, the second the next request head (server.go, conn.serve).
	deadlinesSinceHandler atomic.Int64
	// emptyFin records that the client closed its side before sending a
	// single byte on a new connection, which HAProxy answers with 400.
	emptyFin atomic.Bool
	// headFin records that the client closed its side after bytes of a
	// next request, as the count of handled requests then plus one (0
	// for never): a head cut short, which HAProxy answers with 400 too
	// (CR--), unless that request reached the handler after all (net/http
	// may read on while the handler starts).
	headFin atomic.Int64
	// fin records, the same way, that the client closed its side while
	// no handler ran: a head net/http refuses then was cut short, even
	// one it had read with the previous request.
	fin atomic.Int64
	// expired records that a read hit its deadline while a request head
	// was expected and had begun (or was the connection's first).
	expired atomic.Bool
	// replied records that the client got its last bytes (an error page,
	// or nothing after a response that closed the connection).
	replied atomic.Bool
	// closing records that the connection must serve no further request.
	closing atomic.Bool
	// http10 records that the request being answered is HTTP/1.0: its
	// response head is rewritten as HAProxy writes it (see http10Head).
	http10 atomic.Bool

	// sawContentLength and sawTransferEncoding record that a line read on
	// this connection started with that header name. They are sticky: a
	// request head may arrive in the same read as the previous request, so
	// no read can be attributed to one request.
	sawContentLength    atomic.Bool
	sawTransferEncoding atomic.Bool

	// line holds the start of a line left unfinished by the previous read;
	// lineOpen says whether one is pending. Only the reading goroutine
	// touches them.
	line     [maxScannedLine]byte
	lineLen  int
	lineOpen bool

	mu      sync.Mutex
	host    [maxScannedLine]byte // the value of the last Host line read
	hostLen int
}

func (c *clientConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if c.counters != nil {
			c.counters.Transferred(n, 0)
		}
		c.scan(p[:n])
		if !c.inHandler.Load() && c.idleBytes.Add(int64(n)) == int64(n) && c.timed {
			// The first bytes since the last response: a request begins.
			c.firstByte.Store(time.Now().UnixNano())
		}
	}
	if err != nil && !c.inHandler.Load() {
		if err == io.EOF {
			c.fin.Store(c.handled.Load() + 1)
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && c.awaitingHead():
			c.expired.Store(true)
		case err == io.EOF && c.idleBytes.Load() > 0:
			c.headFin.Store(c.handled.Load() + 1)
		case err == io.EOF && c.handled.Load() == 0:
			c.emptyFin.Store(true)
		}
	}
	return n, err
}

// awaitingHead reports whether a read that timed out was waiting for a
// request head, which timeout http-request answers with 408: the first
// request's (its deadline runs from accept), or a later one's once it
// began. An idle keep-alive connection that sent nothing is closed
// silently, as HAProxy does.
func (c *clientConn) awaitingHead() bool {
	return c.handled.Load() == 0 || c.deadlinesSinceHandler.Load() >= 2 || c.idleBytes.Load() > 0
}

// SetReadDeadline counts the deadlines net/http sets between requests.
func (c *clientConn) SetReadDeadline(t time.Time) error {
	if !c.inHandler.Load() && t.After(time.Now()) {
		c.deadlinesSinceHandler.Add(1)
	}
	return c.Conn.SetReadDeadline(t)
}

// Write passes the server's writes through, except net/http's own error
// replies to a request it could not read, which become HAProxy's 400 page
// (or its 408 page when the head was cut short by timeout http-request).
func (c *clientConn) Write(p []byte) (int, error) {
	if !c.inHandler.Load() && isGoRequestError(p) {
		c.closing.Store(true)
		if !c.replied.CompareAndSwap(false, true) {
			return len(p), nil
		}
		page, status := page400, 400
		if c.expired.Load() {
			page, status = page408, 408
		}
		c.refused(status, c.emptyFin.Load() || c.finSinceHandler(&c.fin))
		n, err := c.Conn.Write(page)
		c.wrote(n)
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if c.http10.Load() && bytes.HasPrefix(p, []byte("HTTP/1.0 ")) {
		c.http10.Store(false)
		head := c.http10Head(p)
		n, err := head.WriteTo(c.Conn)
		c.wrote(int(n))
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	n, err := c.Conn.Write(p)
	c.wrote(n)
	return n, err
}

// wrote counts n bytes written to the client.
func (c *clientConn) wrote(n int) {
	if n > 0 && c.counters != nil {
		c.counters.Transferred(0, n)
	}
}

// http10Head returns the write p, which starts net/http's response head to
// an HTTP/1.0 request, as HAProxy 2.6 writes it: an HTTP/1.1 status line,
// and "Connection: close" when the connection ends after the response
// (net/http says so by sending no Connection header to an HTTP/1.0
// client). net/http writes a response head at the start of a write, as it
// flushes its buffer after each response.
func (c *clientConn) http10Head(p []byte) net.Buffers {
	line := bytes.IndexByte(p, '\n') + 1
	head := p
	if end := bytes.Index(p, []byte("\r\n\r\n")); end >= 0 {
		head = p[:end+2]
	}
	if line == 0 {
		return net.Buffers{[]byte("HTTP/1.1"), p[len("HTTP/1.0"):]}
	}
	out := net.Buffers{[]byte("HTTP/1.1"), p[len("HTTP/1.0"):line]}
	if !hasHeaderLine(head[line-2:], "connection") {
		out = append(out, []byte("Connection: close\r\n"))
	}
	return append(out, p[line:])
}

// hasHeaderLine reports whether head, a header block whose lines each
// start after "\r\n", has a line for the lowercase name.
func hasHeaderLine(head []byte, name string) bool {
	for len(head) > 0 {
		i := bytes.Index(head, []byte("\r\n"))
		if i < 0 {
			return false
		}
		head = head[i+2:]
		if len(head) > len(name) && head[len(name)] == ':' && strings.EqualFold(string(head[:len(name)]), name) {
			return true
		}
	}
	return false
}

// Close writes HAProxy's 408 page when timeout http-request expired, or
// its 400 page to a client that closed a new connection without a byte or
// closed in the middle of a request head, then closes the connection.
func (c *clientConn) Close() error {
	page, status := page408, 408
	if !c.expired.Load() {
		page, status = page400, 400
		if !c.clientClosed() {
			page = nil
		}
	}
	if page != nil && c.replied.CompareAndSwap(false, true) {
		c.refused(status, c.clientClosed())
		c.Conn.SetWriteDeadline(time.Now().Add(c.writeGrace))
		n, _ := c.Conn.Write(page)
		c.wrote(n)
	}
	if c.counters != nil && c.closed.CompareAndSwap(false, true) {
		c.counters.ConnClosed()
	}
	return c.Conn.Close()
}

// refused counts a request answered here with status, and logs it when
// the counters also keep the frontend's access log; clientClosed tells
// that the client closed its side before a complete head.
func (c *clientConn) refused(status int, clientClosed bool) {
	if c.counters == nil {
		return
	}
	c.counters.Refused(status)
	if l, ok := c.counters.(refusalLogger); ok {
		l.LogRefusal(balancer.Refusal{
			Status:       status,
			Client:       c.RemoteAddr().String(),
			Accepted:     c.accepted,
			TimedOut:     status == http.StatusRequestTimeout,
			ClientClosed: clientClosed,
			Empty:        c.handled.Load() == 0 && c.idleBytes.Load() == 0,
		})
	}
}

// clientClosed reports whether the client closed its side before a
// complete request head.
func (c *clientConn) clientClosed() bool {
	return c.emptyFin.Load() || c.finSinceHandler(&c.headFin)
}

// finSinceHandler reports whether fin, stamped as headFin is, was
// stamped since the last request reached the handler.
func (c *clientConn) finSinceHandler(fin *atomic.Int64) bool {
	at := fin.Load()
	return at != 0 && at-1 == c.handled.Load()
}

// refusalLogger is implemented by Counters that write the access-log line
// of a request the server refuses itself (balancer.FrontendEvents does).
type refusalLogger interface {
	LogRefusal(balancer.Refusal)
}

// CloseWrite half-closes the connection when it supports it; net/http
// does so before closing after a refused request head.
func (c *clientConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handlerStarted and handlerDone bracket a handler run.
func (c *clientConn) handlerStarted() {
	c.handled.Add(1)
	c.inHandler.Store(true)
}

func (c *clientConn) handlerDone() {
	c.firstByte.Store(0)
	c.idleBytes.Store(0)
	c.deadlinesSinceHandler.Store(0)
	c.inHandler.Store(false)
}

// Requests returns how many requests of the connection reached the
// handler, the current one included (balancer.ClientConn).
func (c *clientConn) Requests() int64 { return c.handled.Load() }

// RequestTimes returns the current request's times
// (balancer.TimedConn).
func (c *clientConn) RequestTimes() balancer.RequestTimes {
	t := balancer.RequestTimes{Accepted: c.accepted, Ready: c.ready}
	if at := c.answered.Load(); at != 0 {
		t.Accepted = time.Unix(0, at)
		t.Ready = t.Accepted
	}
	if at := c.firstByte.Load(); at != 0 {
		t.FirstByte = time.Unix(0, at)
	}
	return t
}

// Answered records when the current request's response ended
// (balancer.TimedConn).
func (c *clientConn) Answered(at time.Time) { c.answered.Store(at.UnixNano()) }

// lastHost returns the value of the last Host header line read.
func (c *clientConn) lastHost() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.host[:c.hostLen])
}

// scan looks at the start of every line in p (and of the line the previous
// read left unfinished) for the header names the checks need. It costs one
// IndexByte per line.
func (c *clientConn) scan(p []byte) {
	if c.lineOpen {
		i := bytes.IndexByte(p, '\n')
		end := i
		if end < 0 {
			end = len(p)
		}
		c.lineLen += copy(c.line[c.lineLen:], p[:end])
		if i < 0 {
			return
		}
		c.examine(c.line[:c.lineLen])
		c.lineOpen, c.lineLen = false, 0
		p = p[i:]
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return
		}
		p = p[i+1:]
		j := bytes.IndexByte(p, '\n')
		if j < 0 {
			c.lineOpen = true
			c.lineLen = copy(c.line[:], p)
			return
		}
		c.examine(p[:j])
		p = p[j:]
	}
}

// examine records what one line (without its LF) says. Only its first
// maxScannedLine bytes count, however the reads cut it.
func (c *clientConn) examine(line []byte) {
	if len(line) == 0 {
		return
	}
	if len(line) > maxScannedLine {
		line = line[:maxScannedLine]
	}
	switch line[0] | 0x20 {
	case 'c':
		if hasPrefixFold(line, "content-length:") {
			c.sawContentLength.Store(true)
		}
	case 't':
		if hasPrefixFold(line, "transfer-encoding:") {
			c.sawTransferEncoding.Store(true)
		}
	case 'h':
		if hasPrefixFold(line, "host:") {
			v := bytes.Trim(line[len("host:"):], " \t\r")
			c.mu.Lock()
			c.hostLen = copy(c.host[:], v)
			c.mu.Unlock()
		}
	}
}

// hasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring case.
func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != prefix[i] {
			return false
		}
	}
	return true
}

// goErrorHeaders is what net/http writes after the status line of a reply
// to a request it could not read (server.go, conn.serve).
const goErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// isGoRequestError reports whether p is one of net/http's own replies to a
// request head it refused: 400 (malformed), 431 (header block too large)
// or 501 (unsupported Transfer-Encoding). A handler's response never has
// this shape: net/http adds Date and a length or chunked framing to those.
func isGoRequestError(p []byte) bool {
	const prefix = "HTTP/1.1 "
	if len(p) < len(prefix)+4 || string(p[:len(prefix)]) != prefix {
		return false
	}
	switch string(p[len(prefix) : len(prefix)+4]) {
	case "400 ", "431 ", "501 ":
	default:
		return false
	}
	i := bytes.Index(p, []byte(goErrorHeaders))
	if i < 0 || bytes.IndexByte(p[:i], '\n') >= 0 {
		return false
	}
	body := p[i+len(goErrorHeaders):]
	return bytes.HasPrefix(body, p[len(prefix):len(prefix)+3]) || string(body) == "Unsupported transfer encoding"
}
