package balancer

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"tether/balancer/sockio"
)

// serverLive holds what outlives table swaps for one server: counters,
// the connection pool and the health checker's state.
type serverLive struct {
	cur, max, sessions, bytesIn, bytesOut         atomic.Int64
	connErrors, respErrors, retries, redispatches atomic.Int64
	cliAborts, srvAborts                          atomic.Int64 // cli_abrt, srv_abrt
	lbTotal, checksFailed, downs                  atomic.Int64
	responses                                     [6]atomic.Int64
	sticky                                        stickyLive
	lastSession                                   atomic.Int64 // unix nanoseconds
	downSince                                     atomic.Int64 // unix nanoseconds, 0 while up
	downtime                                      atomic.Int64 // accumulated nanoseconds
	pool                                          atomic.Pointer[connPool]
	check                                         atomic.Pointer[CheckResult]
	// requests counts the responses the server sent (req_tot).
	requests atomic.Int64
	// checkNow asks the health checker for an immediate check, after
	// traffic saw a connection failure.
	checkNow chan struct{}
	// slots is the server's maxconn queueing state.
	slots serverSlots
	// insert is the server's Set-Cookie line, once made.
	insert atomic.Pointer[insertLine]
}

func newServerLive() *serverLive {
	return &serverLive{checkNow: make(chan struct{}, 1)}
}

// countAnswer counts a response the server sent and the client got (at
// least its status): req_tot and hrsp_*. A response Tether refused and
// replaced by its own error page is not the server's answer.
func (l *serverLive) countAnswer(status int) {
	l.requests.Add(1)
	l.responses[classIndex(status)].Add(1)
}

// poolFor returns the connection pool made with ps, replacing the
// current one (and closing its idle connections) when the server's
// address, timeouts, TLS or pool settings changed.
func (l *serverLive) poolFor(ps poolSettings) *connPool {
	for {
		p := l.pool.Load()
		if p != nil && p.poolSettings == ps {
			return p
		}
		np := newConnPool(ps)
		if l.pool.CompareAndSwap(p, np) {
			if p != nil {
				p.closeIdle()
			}
			return np
		}
	}
}

// errConnect marks a failure to establish a connection to a server, the
// only failure HAProxy retries.
type errConnect struct{ err error }

func (e *errConnect) Error() string { return "connect: " + e.err.Error() }
func (e *errConnect) Unwrap() error { return e.err }

// errClientBody marks a failure to read the request body from the client:
// the client's error, not the server's.
type errClientBody struct{ err error }

func (e *errClientBody) Error() string { return "read request body: " + e.err.Error() }
func (e *errClientBody) Unwrap() error { return e.err }

// errNoResponse marks a server that closed or reset the connection before
// a complete response head, without a timeout and without sending bytes
// that are no response.
type errNoResponse struct{ err error }

func (e *errNoResponse) Error() string { return "no response: " + e.err.Error() }
func (e *errNoResponse) Unwrap() error { return e.err }

// errServerTimeout marks a server that did not answer within timeout server.
var errServerTimeout = errors.New("server timeout")

// poolSettings are what a server's connections are made and kept with.
type poolSettings struct {
	addr           string
	connectTimeout time.Duration
	serverTimeout  time.Duration
	// tls, when not nil, makes every connection TLS; connections are
	// reused only for requests sending the same SNI.
	tls *upstreamTLS
	// maxIdle is pool-max-conn (-1: no limit) and purgeDelay
	// pool-purge-delay (0: no idle connection kept).
	maxIdle    int
	purgeDelay time.Duration
}

// connPool keeps idle keep-alive connections to one server address and
// tracks the connections in use so they can be shut down.
type connPool struct {
	poolSettings

	mu   sync.Mutex
	idle []*upConn
	// active is the ring of connections in use (a sentinel), kept
	// without a map so that taking and returning a connection holds the
	// lock only for a few pointer writes.
	active  upConn
	nactive int
	closed  bool
	// maxUsed is the most connections in use at once since the last
	// purge, and estNeed the estimate of how many the server needs,
	// from which purge decides how many idle ones to close.
	maxUsed, estNeed int
	// nextPurge is when purge is next due.
	nextPurge time.Time
}

func newConnPool(ps poolSettings) *connPool {
	p := &connPool{poolSettings: ps, nextPurge: time.Now().Add(ps.purgeDelay)}
	p.active.prev, p.active.next = &p.active, &p.active
	return p
}

// addActive records c as in use; p.mu is held.
func (p *connPool) addActive(c *upConn) {
	c.prev, c.next = &p.active, p.active.next
	p.active.next.prev = c
	p.active.next = c
	p.nactive++
	p.maxUsed = max(p.maxUsed, p.nactive)
	p.estNeed = max(p.estNeed, p.nactive)
}

// removeActive forgets c as in use, if it was; p.mu is held.
func (p *connPool) removeActive(c *upConn) {
	if c.prev == nil {
		return
	}
	c.prev.next, c.next.prev = c.next, c.prev
	c.prev, c.next = nil, nil
	p.nactive--
}

// upConn is one HTTP/1.1 connection to a server.
type upConn struct {
	pool *connPool
	// prev and next link the connection into its pool's ring of
	// connections in use (guarded by the pool's lock).
	prev, next *upConn
	nc         net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	// reused reports whether the connection served a request before.
	reused bool
	// connected is when the connection was established, its TLS
	// handshake included (HAProxy's end of Tc).
	connected time.Time
	// tls is the connection's TLS side and sni the server name it sent,
	// for a TLS connection.
	tls *tls.Conn
	sni string
	// readErr is the last error reading from the server, which tells a
	// body the server cut short from one it framed wrongly; nread counts
	// the bytes read for the current request. Both are reset per request.
	readErr error
	nread   int64
	// order is the current response's header names in the server's
	// order (reused along the connection).
	order []string
	// sk is the socket of a clear-text connection (nil over TLS);
	// deferWrite asks Write to keep its bytes in deferred, written by the
	// next Read with sk.WriteThenRead.
	sk         *sockio.Sock
	deferWrite bool
	deferred   []byte
	// lim is the body reader of a response with a Content-Length, kept
	// here so reading a response allocates none.
	lim lengthBody
	// rc and peekFn check an idle connection before reuse (see idleClean);
	// peekN and peekErr hold the last check's result.
	rc      syscall.RawConn
	peekFn  func(fd uintptr) bool
	peekBuf [1]byte
	peekN   int
	peekErr error
}

// Write writes to the connection; each wait is bounded by timeout server
// (the socket's limits). With deferWrite set, p is kept for the next
// Read to write (the last write of a request: its buffer is not touched
// until then).
func (c *upConn) Write(p []byte) (int, error) {
	if c.deferWrite && c.sk != nil && len(p) > 0 {
		c.deferWrite = false
		c.deferred = p
		return len(p), nil
	}
	n, err := c.nc.Write(p)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = errServerTimeout
		}
	}
	return n, err
}

// Read reads from the connection; each wait is bounded by timeout server
// (the socket's limits). A request whose write was deferred is written
// first, in the same call.
func (c *upConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if w := c.deferred; w != nil {
		c.deferred = nil
		_, n, err = c.sk.WriteThenRead(w, p)
	} else {
		n, err = c.nc.Read(p)
	}
	c.nread += int64(n)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = errServerTimeout
		}
		c.readErr = err
	}
	return n, err
}

var bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
var bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 8<<10) }}

// get returns an idle connection (one that sent sni, over TLS) or dials a
// new one. An idle connection on which the server sent anything, or which
// it closed, is closed and the next one taken: bytes the server sent
// unasked must never be read as the answer to another request.
func (p *connPool) get(sni string) (*upConn, error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		for n > 0 && p.idle[n-1].sni != sni {
			n--
		}
		if n == 0 {
			p.mu.Unlock()
			return p.dial(sni)
		}
		c := p.idle[n-1]
		p.idle = slices.Delete(p.idle, n-1, n)
		p.addActive(c)
		p.mu.Unlock()
		if c.reusable() {
			c.takeBuffers()
			return c, nil
		}
		p.discard(c)
	}
}

// reusable reports whether an idle connection may carry a request: the
// server sent nothing and did not close it.
func (c *upConn) reusable() bool {
	if c.tls == nil {
		return c.idleClean()
	}
	// crypto/tls may hold bytes already read from the socket: a read that
	// returns at once tells. A timed-out read leaves the connection usable.
	c.tls.SetReadDeadline(time.Now())
	_, err := c.tls.Read(c.peekBuf[:])
	c.tls.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dial connects to the server, with a TLS handshake sending sni for a TLS
// pool; the handshake counts as part of the connection, within timeout
// connect, as in HAProxy.
func (p *connPool) dial(sni string) (*upConn, error) {
	d := net.Dialer{Timeout: p.connectTimeout}
	start := time.Now()
	nc, err := d.Dial("tcp", p.addr)
	if err != nil {
		return nil, &errConnect{err: err}
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	// Every read and write waits at most timeout server, with no timer
	// set unless it has to wait.
	sk := sockio.New(nc)
	sk.SetReadLimits(time.Time{}, p.serverTimeout)
	sk.SetWriteLimits(time.Time{}, p.serverTimeout)
	c := &upConn{pool: p, nc: sk, sk: sk}
	if p.tls != nil {
		tc := tls.Client(sk, p.tls.config(sni))
		if p.connectTimeout > 0 {
			tc.SetDeadline(start.Add(p.connectTimeout))
		}
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, &errConnect{err: fmt.Errorf("TLS handshake: %w", err)}
		}
		tc.SetDeadline(time.Time{})
		c.nc, c.tls, c.sni, c.sk = tc, tc, sni, nil
	} else if rc := sk.RawConn(); rc != nil {
		c.rc = rc
		c.peekFn = c.peek
	}
	c.connected = time.Now()
	c.takeBuffers()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return nil, &errConnect{err: errors.New("server connections were shut down")}
	}
	p.addActive(c)
	p.mu.Unlock()
	return c, nil
}

// put returns a connection whose response was read completely. A
// connection holding unread bytes (the server sent more than the response
// it framed) is closed instead.
func (p *connPool) put(c *upConn) {
	if c.br.Buffered() > 0 || c.bw.Buffered() > 0 {
		p.discard(c)
		return
	}
	c.giveBuffers()
	c.reused = true
	c.nc.SetReadDeadline(time.Time{})
	p.mu.Lock()
	p.removeActive(c)
	if p.closed || p.purgeDelay == 0 || p.maxIdle >= 0 && len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		c.close()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// discard closes a connection that cannot be reused.
func (p *connPool) discard(c *upConn) {
	p.mu.Lock()
	p.removeActive(c)
	p.mu.Unlock()
	c.close()
}

func (c *upConn) close() {
	c.nc.Close()
	c.giveBuffers()
}

// takeBuffers gives a connection taken into use its read and write
// buffers. An idle connection holds none: they go back to the shared
// pools with each response, so that the next request, on whichever
// connection, takes buffers still in the processor's cache, and a pool
// of idle connections costs no buffer memory.
func (c *upConn) takeBuffers() {
	c.br = bufReaders.Get().(*bufio.Reader)
	c.br.Reset(c)
	c.bw = bufWriters.Get().(*bufio.Writer)
	c.bw.Reset(c)
}

// giveBuffers returns the buffers, which hold no unread or unsent byte.
func (c *upConn) giveBuffers() {
	c.lim = lengthBody{} // it reads from br
	if c.br != nil {
		c.br.Reset(nil)
		bufReaders.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		bufWriters.Put(c.bw)
		c.bw = nil
	}
}

// purgeIfDue purges the pool if its purge delay has passed at now, and
// returns when the next purge is due. A pool that keeps no idle
// connection (pool-purge-delay 0) has none to purge.
func (p *connPool) purgeIfDue(now time.Time) time.Time {
	if p.purgeDelay <= 0 {
		return now.Add(maxPurgeWait)
	}
	p.mu.Lock()
	due := !now.Before(p.nextPurge)
	if due {
		p.nextPurge = now.Add(p.purgeDelay)
	}
	next := p.nextPurge
	p.mu.Unlock()
	if due {
		p.purge()
	}
	return next
}

// purge closes half of the connections beyond what the server needed
// lately, the least recently used idle ones first, as HAProxy does each
// pool-purge-delay: a burst leaves its connections open for the next one,
// and they go over a few periods once traffic is lower. The number idle
// is never above the most in use at once, so it is bounded by the
// frontends' maxconn between purges.
func (p *connPool) purge() {
	p.mu.Lock()
	exceed := p.nactive + len(p.idle) - max(p.maxUsed, p.estNeed)
	p.estNeed = max((p.estNeed+p.maxUsed)/2, p.maxUsed)
	p.maxUsed = p.nactive
	var stale []*upConn
	if n := min((exceed+1)/2, len(p.idle)); n > 0 {
		// Taken from the end, the idle list's start is the least recent.
		stale = slices.Clone(p.idle[:n])
		p.idle = slices.Delete(p.idle, 0, n)
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
}

// closeIdle closes idle connections; active ones finish their request.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// shutdown closes every connection, idle or in use, and refuses new ones.
func (p *connPool) shutdown() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	active := make([]*upConn, 0, p.nactive)
	for c := p.active.next; c != &p.active; c = c.next {
		active = append(active, c)
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	for _, c := range active {
		c.nc.Close()
	}
}

// activeCount returns the number of connections in use.
func (p *connPool) activeCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nactive
}

// isHopHeader reports whether the header (canonical name) is removed when
// forwarding, as RFC 9110 section 7.6.1 says. Proxy-Authorization is
// forwarded: it is meant for the origin behind a proxy chain.
func isHopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// writeHeaders writes the request's header lines but the framing ones:
// in the order the client sent them when its connection knows it (as
// HAProxy forwards them), then those added on the way sorted by name;
// sorted by name otherwise, so that identical requests reach the server
// identical. Host is r.Host; an HTTP/1.0 request without one gets none.
func writeHeaders(bw *bufio.Writer, r *http.Request, hdr http.Header, http10 bool) {
	hostLine := r.Host != "" || !http10
	writeHost := func() {
		if hostLine {
			bw.WriteString("Host: ")
			bw.WriteString(r.Host)
			bw.WriteString("\r\n")
			hostLine = false
		}
	}
	writeValues := func(k string, values []string) {
		for _, v := range values {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	var order []string
	if oc, ok := ClientConnOf(r.Context()).(OrderedHeaders); ok {
		order = oc.HeaderOrder()
	}
	var stack [32]string
	rest := stack[:0]
	if order == nil {
		writeHost()
	}
	listed := 0 // the names in order that hdr has, each listed once
	for _, k := range order {
		vv, ok := hdr[k]
		if ok {
			listed++
		}
		if k == "Host" {
			writeHost()
		} else if passedOn(k) {
			writeValues(k, vv)
		}
	}
	writeHost()
	if listed == len(hdr) {
		// Nothing was added on the way: no need to look through hdr.
		return
	}
	for k := range hdr {
		if passedOn(k) && (order == nil || !slices.Contains(order, k)) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	for _, k := range rest {
		writeValues(k, hdr[k])
	}
}

// passedOn reports whether a header goes to the server as it is:
// not a hop-by-hop one, nor Host or Content-Length, which are rewritten.
func passedOn(k string) bool {
	return !isHopHeader(k) && k != "Host" && k != "Content-Length"
}

// writeRequest writes r to c, as HTTP/1.0 if r is and as HTTP/1.1 otherwise,
// with the given headers
// (already rewritten by persistence) and r's body. An upgrade request
// keeps its Upgrade header and asks for the upgrade.
func writeRequest(c *upConn, r *http.Request, hdr http.Header, xff forwardedHeader, upgrade bool) error {
	bw := c.bw
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	// Like HAProxy, an HTTP/1.0 request goes on as HTTP/1.0, asking the
	// server to keep the connection, and without a Host it did not have.
	http10 := r.ProtoMajor == 1 && r.ProtoMinor == 0
	if http10 {
		bw.WriteString(" HTTP/1.0\r\n")
		if !upgrade {
			bw.WriteString("Connection: keep-alive\r\n")
		}
	} else {
		bw.WriteString(" HTTP/1.1\r\n")
	}
	writeHeaders(bw, r, hdr, http10)
	if upgrade {
		bw.WriteString("Connection: Upgrade\r\n")
		for _, v := range hdr["Upgrade"] {
			bw.WriteString("Upgrade: ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if xff.name != "" {
		bw.WriteString(xff.name)
		bw.WriteString(": ")
		bw.WriteString(xff.value)
		bw.WriteString("\r\n")
	}
	chunked := false
	switch {
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n")
	case r.ContentLength < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		chunked = true
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
	if r.ContentLength != 0 && r.Body != nil {
		if err := copyBody(bw, r.Body, chunked); err != nil {
			return err
		}
	}
	if !upgrade {
		// The request's last bytes leave with the wait for the answer.
		c.deferWrite = true
	}
	err := bw.Flush()
	c.deferWrite = false
	return err
}

func copyBody(bw *bufio.Writer, body io.Reader, chunked bool) error {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	for {
		n, err := body.Read(*buf)
		if err != nil && err != io.EOF {
			return &errClientBody{err: err}
		}
		if n > 0 {
			if chunked {
				bw.WriteString(strconv.FormatInt(int64(n), 16))
				bw.WriteString("\r\n")
			}
			if _, werr := bw.Write((*buf)[:n]); werr != nil {
				return werr
			}
			if chunked {
				bw.WriteString("\r\n")
			}
		}
		if err == io.EOF {
			if chunked {
				bw.WriteString("0\r\n\r\n")
			}
			return nil
		}
	}
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
