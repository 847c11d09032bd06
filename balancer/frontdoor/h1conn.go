package frontdoor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"tether/balancer"
	"tether/balancer/sockio"
)

// Connection states, for Shutdown.
const (
	stateIdle int32 = iota // waiting for a request's first byte
	stateActive
	stateClosed
)

// h1conn serves the HTTP/1.x requests of one client connection, one at a
// time, on the goroutine that runs serve. While it waits for a request it
// holds no buffer (on a clear-text connection); between the first byte of
// a request and the end of its response it holds the read buffer, the
// response buffers and the request's state, all reused for the next
// request.
type h1conn struct {
	srv  *Server
	sock *sockio.Sock
	// src is what requests are read from and responses written to: the
	// sock, or the TLS connection over it.
	src io.ReadWriter
	tls *tls.Conn
	// tlsState is the TLS state every request of the connection carries.
	tlsState   *tls.ConnectionState
	remoteAddr string
	ctx        context.Context
	cancel     context.CancelFunc

	state  atomic.Int32
	closed atomic.Bool

	// in is the read buffer; nil while the connection waits for a request
	// with nothing buffered.
	in    []byte
	inPtr *[]byte // in's pool entry
	r, w  int

	// The current request.
	handled   int64
	accepted  time.Time // accept, or the end of the previous response
	ready     time.Time // the handshake's end, or as accepted
	firstByte time.Time
	anyByte   bool // a byte arrived on the connection
	// idleLeft is what is left of timeout http-keep-alive after waiting
	// idleHandoff on the previous goroutine.
	idleLeft time.Duration
	// resumed says the buffer holds the first bytes of a request that
	// resume read.
	resumed bool
	// parked says the server's parker holds the connection (guarded by
	// the parker's lock), since parkedAt on the parker's clock; detached
	// is what is left of its socket once the parker gave up its net.Conn
	// (see parker.detach).
	parked   bool
	parkedAt time.Duration
	detached *detachedSocket
	// x is the state of the current request, taken from the server's
	// pool for a request and kept while the connection stays busy.
	x              *requestState
	continueNeeded bool
	bodyDone       bool
	hijacked       bool
}

// newH1Conn returns the connection state for the socket sk, read through
// src (sk, or a TLS connection over it).
func (s *Server) newH1Conn(sk *sockio.Sock, src io.ReadWriter, tc *tls.Conn, accepted, ready time.Time) *h1conn {
	c := &h1conn{srv: s, sock: sk, src: src, tls: tc, accepted: accepted, ready: ready}
	if tc != nil {
		cs := tc.ConnectionState()
		c.tlsState = &cs
	}
	c.remoteAddr = sk.RemoteAddr().String()
	c.ctx, c.cancel = context.WithCancel((*connContext)(c))
	return c
}

// connContext is the context a connection's requests derive from, less
// its cancellation: the connection itself, seen as a context.Context
// that carries it (balancer.ClientConnKey) and its local address
// (http.LocalAddrContextKey), which costs no allocation and keeps no
// address alive while the connection is parked.
type connContext h1conn

func (*connContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*connContext) Done() <-chan struct{}       { return nil }
func (*connContext) Err() error                  { return nil }

func (cc *connContext) Value(key any) any {
	switch key {
	case balancer.ClientConnKey{}:
		return (*h1conn)(cc)
	case http.LocalAddrContextKey:
		return cc.sock.LocalAddr()
	}
	return nil
}

func (cc *connContext) String() string { return "frontdoor.connContext(" + cc.remoteAddr + ")" }

// idleHandoff is how long a connection waits for its next request on the
// goroutine that served the previous one. A connection idle longer goes
// on waiting in the server's parker, without a goroutine or a buffer (or,
// without a parker, on a new goroutine, whose stack is small). A TLS
// connection can wait there too: its wait ended in a read from the
// socket, which crypto/tls makes only when it holds no whole record, so
// anything the client sends next arrives on the socket.
const idleHandoff = 50 * time.Millisecond

// What readHead found.
const (
	headRead  = iota // a request head to serve
	headNone         // nothing more: the connection ends
	headLater        // nothing yet: wait parked, or on a new goroutine
)

// serve serves requests until the connection ends.
func (c *h1conn) serve() {
	c.sock.SetWriteLimits(time.Time{}, c.srv.timeouts.Client)
	for {
		switch c.readHead() {
		case headLater:
			// Nothing of the last request is kept while idle, nor the
			// read buffer a TLS connection's wait took.
			c.giveRequestState()
			c.release()
			if p := c.srv.parker; p != nil && p.park(c) {
				return
			}
			go c.resume()
			return
		case headNone:
			c.close()
			return
		}
		if !c.serveRequest() {
			c.close()
			return
		}
	}
}

// clockStart is the origin of parkClock.
var clockStart = time.Now()

// parkClock is the parker's monotonic clock, which keeps a parked
// connection's time in 8 bytes where a time.Time takes 24.
func parkClock() time.Duration { return time.Since(clockStart) }

// resume waits for the next request of a connection that has been idle
// for idleHandoff, on a goroutine that so far used little stack, then
// serves on.
func (c *h1conn) resume() {
	if c.parkedAt != 0 {
		c.idleLeft = max(c.idleLeft-(parkClock()-c.parkedAt), time.Millisecond)
		c.parkedAt = 0
	}
	c.sock.SetReadLimits(time.Time{}, c.idleLeft)
	n, _ := c.readFresh()
	if n == 0 {
		// The client closed, or timeout http-keep-alive: a silent close.
		c.close()
		return
	}
	if c.srv.timed {
		c.firstByte = time.Now()
	}
	c.resumed = true
	c.serve()
}

// readHead waits for and reads the next request head. It answers a head
// it refuses, or one that did not come, as HAProxy does.
func (c *h1conn) readHead() int {
	t := c.srv.timeouts
	first := c.handled == 0
	if c.r == c.w {
		// Wait for the first byte: timeout http-request from accept for
		// the first request, timeout http-keep-alive for later ones.
		handoff := false
		if first {
			c.sock.SetReadLimits(c.accepted.Add(t.HTTPRequest), 0)
		} else {
			wait := t.HTTPKeepAlive
			if wait > idleHandoff {
				wait, handoff = idleHandoff, true
			}
			c.sock.SetReadLimits(time.Time{}, wait)
		}
		if !first {
			// A kept-alive client sends its next request only once it has
			// the response just written: letting the other connections'
			// goroutines run first makes it likelier to be there, which
			// saves a read that finds nothing and a wake-up (about half a
			// read a request at 512 connections, measured with perf stat).
			runtime.Gosched()
		}
		n, err := c.readFresh()
		if n == 0 {
			timedOut := errors.Is(err, os.ErrDeadlineExceeded)
			switch {
			case handoff && timedOut:
				c.idleLeft = t.HTTPKeepAlive - idleHandoff
				return headLater
			case err == io.EOF && first:
				c.refuse(http.StatusBadRequest, true)
			case timedOut && first:
				c.refuse(http.StatusRequestTimeout, false)
			}
			return headNone
		}
		if c.srv.timed {
			c.firstByte = time.Now()
		}
	} else if !c.resumed {
		c.firstByte = time.Time{}
	}
	c.resumed = false
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return headNone
	}
	limit := c.srv.headLimit
	scanned, waitSet := 0, false
	for {
		// HAProxy skips empty lines before a request line.
		for c.r < c.w && (c.in[c.r] == '\r' || c.in[c.r] == '\n') {
			c.r++
		}
		if end := headEnd(c.in[c.r:c.w], scanned); end >= 0 {
			if end > limit || !c.parse(end) {
				c.refuse(http.StatusBadRequest, false)
				return headNone
			}
			return headRead
		}
		if c.w-c.r > limit {
			c.refuse(http.StatusBadRequest, false)
			return headNone
		}
		if c.r > 0 && c.w == len(c.in) {
			c.compact()
		}
		if c.w-c.r > 3 {
			scanned = c.w - c.r - 3
		}
		if !waitSet && !first {
			// timeout http-request runs from the head's first byte.
			from := c.firstByte
			if from.IsZero() {
				from = time.Now()
			}
			c.sock.SetReadLimits(from.Add(t.HTTPRequest), 0)
			waitSet = true
		}
		n, err := c.fill()
		if n == 0 {
			switch {
			case err == io.EOF:
				c.refuse(http.StatusBadRequest, true)
			case errors.Is(err, os.ErrDeadlineExceeded):
				c.refuse(http.StatusRequestTimeout, false)
			}
			return headNone
		}
	}
}

// parse turns the head of end bytes at the read position into the current
// request; it returns false for a head HAProxy refuses.
func (c *h1conn) parse(end int) bool {
	raw := string(c.in[c.r : c.r+end])
	c.r += end
	if c.x == nil {
		c.x = c.srv.requests.Get().(*requestState)
		c.x.resp.c = c
		c.x.withContext = *new(http.Request).WithContext(c.ctx)
	}
	h, ok := parseHead(raw, &c.x.head)
	c.x.head = h
	return ok
}

// serveRequest runs the handler for the current request and finishes its
// response; it returns false when the connection must end.
func (c *h1conn) serveRequest() bool {
	h := &c.x.head
	u, ok := requestURL(h.method, h.target, &c.x.url)
	if !ok {
		c.refuse(http.StatusBadRequest, false)
		return false
	}
	host := h.host
	if isAbsoluteForm(h.target) {
		if h.host != "" && !sameAuthority(u.Scheme, u.Host, h.host) {
			c.refuse(http.StatusBadRequest, false)
			return false
		}
		host = u.Host
	}
	c.handled++
	c.bodyDone = true
	var body io.ReadCloser = http.NoBody
	switch {
	case h.chunked:
		c.x.cbody = chunkedBody{c: c}
		body, c.bodyDone = &c.x.cbody, false
	case h.contentLength > 0:
		c.x.lbody = lengthBody{c: c, remain: h.contentLength}
		body, c.bodyDone = &c.x.lbody, false
	}
	c.continueNeeded = h.expectContinue && !c.bodyDone
	var te []string
	if h.chunked {
		te = chunkedEncoding
	}
	proto := "HTTP/1.1"
	if h.minor == 0 {
		proto = "HTTP/1.0"
	}
	r := &c.x.req
	*r = c.x.withContext
	r.Method, r.URL, r.Proto, r.ProtoMajor, r.ProtoMinor = h.method, u, proto, 1, h.minor
	r.Header, r.Body, r.ContentLength, r.TransferEncoding = h.header, body, h.contentLength, te
	r.Close, r.Host, r.RemoteAddr, r.RequestURI, r.TLS = h.close, host, c.remoteAddr, h.target, c.tlsState
	if h.chunked {
		r.ContentLength = -1
	}
	if isAbsoluteForm(h.target) {
		dropDefaultPort(r)
	}
	c.x.resp.reset(r, h)
	// A body is read within timeout client per read, unless the handler
	// sets its own deadlines.
	c.sock.SetReadLimits(time.Time{}, c.srv.timeouts.Client)
	if !c.run(r) {
		return false
	}
	if c.hijacked {
		return false
	}
	keep := c.x.resp.finish()
	c.sock.SetWriteLimits(time.Time{}, c.srv.timeouts.Client)
	if keep && !c.bodyDone {
		// A client still waiting for "100 Continue" may never send the
		// body: the connection ends instead of waiting for it.
		keep = !c.continueNeeded && c.discardBody(body)
	}
	c.accepted = time.Time{}
	if c.srv.timed {
		c.accepted = c.x.resp.endedAt
	}
	c.ready = c.accepted
	if !keep || c.srv.inShutdown.Load() {
		return false
	}
	if c.r == c.w {
		c.release()
		c.x.resp.release()
	}
	return c.state.CompareAndSwap(stateActive, stateIdle)
}

var chunkedEncoding = []string{"chunked"}

// maxDiscard is how much of an unread request body is read and dropped to
// keep the connection (net/http's figure).
const maxDiscard = 256 << 10

// discardBody reads what the handler left of the request body; it returns
// false when the body is too long or broken, and the connection must end.
func (c *h1conn) discardBody(body io.Reader) bool {
	n, err := io.CopyN(io.Discard, body, maxDiscard+1)
	return n <= maxDiscard && (err == io.EOF || c.bodyDone)
}

// run calls the handler; it returns false when the handler aborted the
// response, or failed, and the connection must end.
func (c *h1conn) run(r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				c.srv.log.Error("panic serving a request", "client", c.remoteAddr, "panic", v)
			}
			if !c.hijacked {
				c.x.resp.abort()
			}
			ok = false
		}
	}()
	c.srv.handler.ServeHTTP(&c.x.resp, r)
	return true
}

// refuse answers status (400 or 408) with HAProxy's page; clientClosed
// tells that the client closed its side before a complete head.
func (c *h1conn) refuse(status int, clientClosed bool) {
	page := page400
	if status == http.StatusRequestTimeout {
		page = page408
	}
	if ct := c.srv.Counters; ct != nil {
		ct.Refused(status)
		if l, ok := ct.(refusalLogger); ok {
			l.LogRefusal(balancer.Refusal{
				Status:       status,
				Client:       c.remoteAddr,
				Accepted:     c.acceptedAt(),
				TimedOut:     status == http.StatusRequestTimeout,
				ClientClosed: clientClosed,
				Empty:        !c.anyByte,
			})
		}
	}
	c.sock.SetWriteLimits(time.Now().Add(c.srv.timeouts.Client), 0)
	c.write(page)
}

// acceptedAt returns when the current request's connection time began.
func (c *h1conn) acceptedAt() time.Time {
	if c.accepted.IsZero() {
		return time.Now()
	}
	return c.accepted
}

// readFresh reads into an empty read buffer; on a clear-text connection
// the buffer is taken only once bytes are there.
func (c *h1conn) readFresh() (int, error) {
	c.r, c.w = 0, 0
	if c.in == nil && c.tls == nil {
		b, n, err := c.sock.ReadFresh(c)
		c.in = b
		c.counted(n)
		c.w = n
		return n, err
	}
	if c.in == nil {
		c.in = c.TakeBuffer()
	}
	return c.fill()
}

// fill reads more bytes after those buffered.
func (c *h1conn) fill() (int, error) {
	n, err := c.src.Read(c.in[c.w:])
	c.counted(n)
	c.w += n
	return n, err
}

func (c *h1conn) counted(n int) {
	if n > 0 {
		c.anyByte = true
		if ct := c.srv.Counters; ct != nil {
			ct.Transferred(n, 0)
		}
	}
}

// requestState is the state of one request of a connection: its head, its
// response writer and its body reader.
type requestState struct {
	head  parsedHead
	resp  h1response
	lbody lengthBody
	cbody chunkedBody
	// req is the request handed to the handler; withContext is an empty
	// request carrying the connection's context, which each request
	// starts from (a request's context can only be set by copying).
	req, withContext http.Request
	url              url.URL
}

// giveRequestState gives the request state back to the server's pool; nothing
// of the last request is kept while the connection is idle.
func (c *h1conn) giveRequestState() {
	if c.x == nil {
		return
	}
	c.x.resp.release()
	header, head := c.x.resp.header, c.x.head
	clear(header)
	clear(head.header)
	clear(head.values[:cap(head.values)])
	*c.x = requestState{}
	c.x.resp.header = header
	c.x.head = parsedHead{header: head.header, order: head.order[:0], values: head.values[:0]}
	c.srv.requests.Put(c.x)
	c.x = nil
}

// TakeBuffer takes a read buffer from the server's pool.
func (c *h1conn) TakeBuffer() []byte {
	c.inPtr = c.srv.getIn()
	return *c.inPtr
}

// GiveBuffer gives the read buffer back.
func (c *h1conn) GiveBuffer([]byte) {
	if c.inPtr != nil {
		c.srv.putIn(c.inPtr)
		c.inPtr = nil
	}
}

// compact moves the buffered bytes to the start of the buffer.
func (c *h1conn) compact() {
	c.w = copy(c.in, c.in[c.r:c.w])
	c.r = 0
}

// release gives the empty read buffer back.
func (c *h1conn) release() {
	if c.in != nil {
		c.GiveBuffer(c.in)
		c.in, c.r, c.w = nil, 0, 0
	}
}

// bodyStarted sends "100 Continue" before the first read of a body whose
// client waits for it.
func (c *h1conn) bodyStarted() {
	if c.continueNeeded {
		c.continueNeeded = false
		if !c.x.resp.wroteHeader {
			c.write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
		}
	}
}

// readBody reads request body bytes: buffered ones first, then from the
// connection.
func (c *h1conn) readBody(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, c.in[c.r:c.w])
		c.r += n
		return n, nil
	}
	if c.in == nil || len(p) >= len(c.in)/2 {
		n, err := c.src.Read(p)
		c.counted(n)
		return n, err
	}
	c.r, c.w = 0, 0
	if _, err := c.fill(); c.w == 0 {
		return 0, err
	}
	n := copy(p, c.in[:c.w])
	c.r = n
	return n, nil
}

// readLine returns the next line of the body's framing without its line
// end, reading more when needed; the line is valid until the next read.
func (c *h1conn) readLine(max int) ([]byte, error) {
	if c.in == nil {
		c.in = c.TakeBuffer()
		c.r, c.w = 0, 0
	}
	scanned := 0
	for {
		for i := c.r + scanned; i < c.w; i++ {
			if c.in[i] == '\n' {
				line := c.in[c.r:i]
				c.r = i + 1
				if n := len(line); n > 0 && line[n-1] == '\r' {
					line = line[:n-1]
				}
				return line, nil
			}
		}
		scanned = c.w - c.r
		if scanned > max {
			return nil, errBadChunk
		}
		if c.w == len(c.in) {
			c.compact()
		}
		n, err := c.fill()
		if n == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// write writes p to the client, counting it.
func (c *h1conn) write(p []byte) error {
	n, err := c.src.Write(p)
	if n > 0 && c.srv.Counters != nil {
		c.srv.Counters.Transferred(0, n)
	}
	return err
}

// close ends the connection once.
func (c *h1conn) close() {
	if c.hijacked {
		return
	}
	c.closeConn()
}

func (c *h1conn) closeConn() {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.state.Store(stateClosed)
	c.cancel()
	c.closeSocket()
	c.release()
	if c.x != nil && !c.hijacked {
		c.x.resp.release()
	}
	c.srv.untrack(c)
	if ct := c.srv.Counters; ct != nil {
		ct.ConnClosed()
	}
}

// closeIfIdle closes the connection if it waits for a request; it reports
// whether it did.
func (c *h1conn) closeIfIdle() bool {
	if p := c.srv.parker; p != nil && p.take(c) {
		c.close()
		return true
	}
	if !c.state.CompareAndSwap(stateIdle, stateClosed) {
		return false
	}
	// The serving goroutine's wait ends with an error and it closes up.
	c.closeSocket()
	return true
}

// closeSocket closes the connection's socket, detached or not (a
// connection whose socket could not be reattached has none).
func (c *h1conn) closeSocket() {
	switch {
	case c.detached != nil:
		c.closeDetached()
	case c.sock != nil:
		c.sock.Close()
	}
}

// forceClose closes the connection's socket whatever it is doing.
func (c *h1conn) forceClose() {
	if p := c.srv.parker; p != nil && p.take(c) {
		c.close()
		return
	}
	c.closeSocket()
}

// Requests returns how many requests of the connection reached the
// handler, the current one included (balancer.ClientConn).
func (c *h1conn) Requests() int64 { return c.handled }

// RequestTimes returns the current request's times (balancer.TimedConn).
func (c *h1conn) RequestTimes() balancer.RequestTimes {
	return balancer.RequestTimes{Accepted: c.accepted, Ready: c.ready, FirstByte: c.firstByte}
}

// HeaderOrder returns the current request's header names in the order
// the client sent them (balancer.OrderedHeaders).
func (c *h1conn) HeaderOrder() []string {
	if c.x == nil {
		return nil
	}
	return c.x.head.order
}

// Answered records when the current request's response ended
// (balancer.TimedConn).
func (c *h1conn) Answered(at time.Time) { c.x.resp.endedAt = at }

// hijack hands the connection to the handler with what is buffered.
func (c *h1conn) hijack() (net.Conn, *bufio.ReadWriter) {
	c.hijacked = true
	hc := &hijackedConn{c: c}
	leftover := c.in[c.r:c.w]
	size := max(len(leftover), 4096)
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(leftover), hc), size)
	if len(leftover) > 0 {
		br.Peek(len(leftover))
	}
	return hc, bufio.NewReadWriter(br, bufio.NewWriter(hc))
}

// hijackedConn is a connection taken over by a handler: it still counts
// its bytes and its close.
type hijackedConn struct {
	c *h1conn
}

func (h *hijackedConn) Read(p []byte) (int, error) {
	n, err := h.c.src.Read(p)
	h.c.counted(n)
	return n, err
}

func (h *hijackedConn) Write(p []byte) (int, error) {
	n, err := h.c.src.Write(p)
	if n > 0 && h.c.srv.Counters != nil {
		h.c.srv.Counters.Transferred(0, n)
	}
	return n, err
}

func (h *hijackedConn) Close() error {
	h.c.closeConn()
	return nil
}

// CloseWrite half-closes the connection.
func (h *hijackedConn) CloseWrite() error {
	if h.c.tls != nil {
		return h.c.tls.CloseWrite()
	}
	return h.c.sock.CloseWrite()
}

func (h *hijackedConn) LocalAddr() net.Addr  { return h.c.sock.LocalAddr() }
func (h *hijackedConn) RemoteAddr() net.Addr { return h.c.sock.RemoteAddr() }
func (h *hijackedConn) SetDeadline(t time.Time) error {
	return h.c.sock.SetDeadline(t)
}
func (h *hijackedConn) SetReadDeadline(t time.Time) error {
	return h.c.sock.SetReadDeadline(t)
}
func (h *hijackedConn) SetWriteDeadline(t time.Time) error {
	return h.c.sock.SetWriteDeadline(t)
}
