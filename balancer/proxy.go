package balancer

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"tether/balancer/rules"
)

// HAProxy 2.6's built-in error pages, the only statuses "deny_status"
// accepts.
var errorPages = map[int]string{
	200: "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n",
	400: "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n",
	401: "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
	403: "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n",
	404: "<html><body><h1>404 Not Found</h1>\nThe resource could not be found.\n</body></html>\n",
	405: "<html><body><h1>405 Method Not Allowed</h1>\nA request was made of a resource using a request method not supported by that resource\n</body></html>\n",
	407: "<html><body><h1>407 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
	408: "<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n",
	410: "<html><body><h1>410 Gone</h1>\nThe resource is no longer available and will not be available again.\n</body></html>\n",
	413: "<html><body><h1>413 Payload Too Large</h1>\nThe request entity exceeds the maximum allowed.\n</body></html>\n",
	425: "<html><body><h1>425 Too Early</h1>\nYour browser sent early data.\n</body></html>\n",
	429: "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n",
	500: "<html><body><h1>500 Internal Server Error</h1>\nAn internal server error occurred.\n</body></html>\n",
	501: "<html><body><h1>501 Not Implemented</h1>\n.The server does not support the functionality required to fulfill the request.\n</body></html>\n",
	502: "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n",
	503: "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
	504: "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n",
}

// errorPageLengths are the Content-Length values of errorPages.
var errorPageLengths = func() map[int][]string {
	m := make(map[int][]string, len(errorPages))
	for code, page := range errorPages {
		m[code] = []string{strconv.Itoa(len(page))}
	}
	return m
}()

// writeError answers with HAProxy's page for code and its headers: a
// Content-Length, no Date, HAProxy's reason phrase where the writer can
// send one.
func writeError(w http.ResponseWriter, code int) {
	if code < 500 {
		// The request was not read to its end: the connection cannot
		// carry another one.
		w.Header()["Connection"] = []string{"close"}
	}
	writePage(w, code)
}

// pageHeaderOrder is the order of the header lines of HAProxy's pages.
var pageHeaderOrder = []string{"Content-Length", "Cache-Control", "Connection", "Content-Type"}

// writePage answers with HAProxy's built-in page for code.
func writePage(w http.ResponseWriter, code int) {
	h := w.Header()
	h["Content-Length"] = errorPageLengths[code]
	h["Date"] = nil
	h["Cache-Control"] = []string{"no-cache"}
	h["Content-Type"] = []string{"text/html"}
	setHeaderOrder(w, pageHeaderOrder)
	writeStatus(w, code, pageReason(code))
	io.WriteString(w, errorPages[code])
}

// frontendHandler serves one frontend's traffic.
type frontendHandler struct {
	b    *Balancer
	name string
}

// Handler returns the proxy handler of the named frontend. The handler is
// safe for concurrent use and follows every change applied later.
func (b *Balancer) Handler(frontend string) (http.Handler, error) {
	if _, ok := b.tab.Load().frontends[frontend]; !ok {
		return nil, errors.New("no such frontend: " + frontend)
	}
	return &frontendHandler{b: b, name: frontend}, nil
}

func (h *frontendHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := h.b.tab.Load()
	fe := t.frontends[h.name]
	if fe == nil {
		writeError(w, http.StatusServiceUnavailable)
		return
	}
	fl := fe.live
	fl.requests.Add(1)
	if !fl.connCounted.Load() {
		// No server reports connections: each request is a session.
		fl.sessions.Add(1)
		storeMax(&fl.max, fl.cur.Add(1))
		defer fl.cur.Add(-1)
	}
	var tr requestTrace
	logged := h.b.frontendLogs(fe)
	if logged {
		tr.timed, tr.start = true, time.Now()
		tr.captureRequest(fe, r)
	}
	abort := h.serve(w, r, t, fe, &tr)
	if logged {
		h.b.logRequest(t, fe, w, r, &tr)
	}
	if abort {
		// Close the client connection without ending the response, so
		// the client sees it cut short instead of complete.
		panic(http.ErrAbortHandler)
	}
}

// serve runs the frontend's rules and proxies r to its backend, recording
// the outcome in tr. abort asks the caller to close the client connection
// without ending the response.
func (h *frontendHandler) serve(w http.ResponseWriter, r *http.Request, t *table, fe *frontendRT, tr *requestTrace) (abort bool) {
	fl := fe.live
	if r.ContentLength > 0 && !fl.connCounted.Load() {
		fl.bytesIn.Add(r.ContentLength)
	}
	var rq rules.Request
	if len(fe.routes)+len(fe.reqRules) > 0 {
		rq = requestView(r)
	}
	if len(fe.reqRules) > 0 {
		if status := runRequestRules(fe.reqRules, w, r, &rq); status != 0 {
			fl.responses[classIndex(status)].Add(1)
			// A deny is the proxy's refusal, any other answer local
			// processing.
			cause := byte('L')
			if status >= 400 {
				cause = 'P'
			}
			tr.end(cause, 'R', status)
			return false
		}
	}
	be := t.byName[fe.backendFor(&rq)]
	if be == nil {
		fl.responses[4].Add(1)
		writeError(w, http.StatusServiceUnavailable)
		tr.end('S', 'C', http.StatusServiceUnavailable)
		return false
	}
	cs := newClientSide(w, fe.cfg.TimeoutClient)
	status, abort := h.b.serveBackend(w, r, be, fe, t.cfg.Global.HeaderLimit(), cs, tr)
	// What the server still sends after the handler must make progress
	// within timeout client too.
	cs.writing()
	if status != 0 {
		fl.responses[classIndex(status)].Add(1)
	}
	return abort
}

// requestView returns what conditions read from r.
func requestView(r *http.Request) rules.Request {
	rq := rules.Request{Method: r.Method, Target: r.RequestURI, Host: r.Host, Header: r.Header, Version: protoVersion(r)}
	if r.TLS != nil {
		rq.TLS, rq.SNI = true, r.TLS.ServerName
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		rq.Src = ap.Addr()
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		rq.DstPort = la.Port
	}
	return rq
}

// backendFor returns the backend a request goes to: that of the first
// use_backend rule whose condition holds on rq, else the default backend.
func (fe *frontendRT) backendFor(rq *rules.Request) string {
	for i := range fe.routes {
		rt := &fe.routes[i]
		if rt.cond == nil || rt.cond.Match(rq) {
			rt.hits.Add(1)
			return rt.backend
		}
	}
	return fe.backend
}

// protoVersion returns a request's HTTP version as HAProxy's req.ver does.
func protoVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "2.0"
	case r.ProtoMinor == 0:
		return "1.0"
	}
	return "1.1"
}

// classIndex maps a status to its ResponseClasses index.
func classIndex(code int) int {
	if code >= 100 && code < 600 {
		return code/100 - 1
	}
	return 5
}

// serveBackend proxies r to a server of be and returns the status sent (0
// when none was). abort asks the caller to close the client connection without ending the response.
// limit bounds the response header block; cs enforces timeout client. tr
// records the outcome for the access log.
func (b *Balancer) serveBackend(w http.ResponseWriter, r *http.Request, be *backendRT, fe *frontendRT, limit int, cs clientSide, tr *requestTrace) (status int, abort bool) {
	tr.backend = be
	bl := be.live
	bl.requests.Add(1)
	bl.sessions.Add(1)
	storeMax(&bl.max, bl.cur.Add(1))
	defer bl.cur.Add(-1)

	now := b.now().Unix()
	client := clientAddr(r)
	var p persistence
	if be.ck != nil {
		p = be.ck.readRequestCookies(r, be, now)
		tr.cookieReq, tr.cookieRes = "NVDIEO"[p.state], 'N'
		switch p.state {
		case ckInvalid:
			bl.sticky.invalid.Add(1)
		case ckExpired, ckOld:
			bl.sticky.expired.Add(1)
		}
		if p.grace != 0 {
			countGrace(p, bl, client, now)
		}
	}
	srv := p.server
	if srv == nil {
		srv = be.pick(client, nil)
		if srv != nil {
			// lbtot counts the servers the algorithm chose, as HAProxy's
			// cum_lbconn: not cookie routes nor retries on one server.
			srv.live.lbTotal.Add(1)
			bl.lbTotal.Add(1)
		}
		if srv != nil && p.state == ckDown && p.downServer != nil {
			bl.sticky.redispatched.Add(1)
			p.downServer.live.sticky.redispatched.Add(1)
		}
	}
	// slot is the server whose maxconn slot this request holds, if any.
	var slot *serverLive
	switch {
	case srv == nil && be.saturated():
		// Every server is saturated: wait in the backend's queue.
		if srv = be.acquireAt(r, nil, &tr.queue); srv == nil {
			// Timed out in the queue: a connection error, as HAProxy
			// counts it.
			if r.Context().Err() == nil {
				bl.connErrors.Add(1)
			}
			bl.responses[4].Add(1)
			writeError(w, http.StatusServiceUnavailable)
			tr.end('s', 'Q', http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable, false
		}
		slot = srv.live
	case srv == nil:
		// HAProxy counts the 503 of a backend without a usable server
		// as a connection error of the backend.
		bl.noServer.Add(1)
		bl.connErrors.Add(1)
		bl.responses[4].Add(1)
		writeError(w, http.StatusServiceUnavailable)
		tr.end('S', 'C', http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable, false
	case srv.cfg.MaxConn > 0:
		queued := srv
		if srv = be.acquireAt(r, srv, &tr.queue); srv == nil {
			if r.Context().Err() == nil {
				queued.live.connErrors.Add(1)
				bl.connErrors.Add(1)
			}
			bl.responses[4].Add(1)
			writeError(w, http.StatusServiceUnavailable)
			tr.server = queued
			tr.end('s', 'Q', http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable, false
		}
		slot = srv.live
	}
	tr.mark(&tr.waited)
	if slot != nil {
		defer func() {
			if slot != nil {
				be.live.queue.release(slot)
			}
		}()
	}
	xff := forwardedFor(fe.xff, be.xff, client, r.Header)
	// An Upgrade request goes on a connection of its own, which becomes
	// a tunnel on a 101 answer.
	upgrade := isUpgrade(r)

	r.Body = cs.body(r)
	retries := be.cfg.Retries
	if retries < 0 {
		retries = 0
	}
	hdr, vals := w.Header(), headerValues(w)
	var (
		resp upstreamResponse
		conn *upConn
		err  error
	)
	for attempt := 0; ; attempt++ {
		tr.retries = int32(attempt)
		if attempt > 0 {
			// As in HAProxy, Tc is the last attempt's: the failed ones
			// and the waits between them count in Tw.
			tr.mark(&tr.waited)
		}
		resp, conn, err = b.roundTrip(r, be, srv, xff, hdr, vals, limit, upgrade, tr)
		if err == nil {
			break
		}
		var ce *errConnect
		if !errors.As(err, &ce) || attempt >= retries || r.Context().Err() != nil {
			break
		}
		if redispatchNow(be, srv, p.server == srv, attempt+1, retries) {
			if next := be.pick(client, srv); next != nil && next != srv {
				if slot != nil {
					be.live.queue.release(slot)
					slot = nil
				}
				if next.cfg.MaxConn > 0 {
					if next = be.acquire(r, next); next == nil {
						break
					}
					slot = next.live
				}
				srv.live.redispatches.Add(1)
				bl.redispatches.Add(1)
				next.live.lbTotal.Add(1)
				bl.lbTotal.Add(1)
				if p.server == srv {
					srv.live.sticky.redispatched.Add(1)
					bl.sticky.redispatched.Add(1)
					// HAProxy's log then reports the cookie's server
					// as down.
					tr.cookieReq = 'D'
				}
				srv = next
				p.server = nil // the client gets the new server's cookie
				tr.redispatched = true
				continue
			}
		}
		// An attempt followed by another server counts as a redispatch
		// only, one followed by the same server as a retry (wretr).
		srv.live.retries.Add(1)
		bl.retries.Add(1)
		// HAProxy's turn-around: wait before retrying the same server.
		wait := time.Second
		if tc := be.cfg.TimeoutConnect; tc > 0 && tc < wait {
			wait = tc
		}
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
		}
	}
	sl := srv.live
	tr.server = srv
	if err != nil {
		var closed *errNoResponse
		if errors.As(err, &closed) && keptAliveRequest(r) {
			// Like HAProxy, close a kept-alive client connection without
			// a word when the server closed before answering: the client
			// may send the request again on a new connection if it can
			// (RFC 9112 section 9.3.1), which a 502 would prevent. The
			// backend's req_tot, as HAProxy's, counts requests that got a
			// status.
			bl.requests.Add(-1)
			sl.respErrors.Add(1)
			bl.respErrors.Add(1)
			sl.srvAborts.Add(1)
			bl.srvAborts.Add(1)
			tr.end('S', 'H', 0)
			return 0, true
		}
		return exchangeFailed(w, r, err, sl, bl, tr)
	}
	defer sl.cur.Add(-1)
	tr.mark(&tr.answered)
	if tr.timed {
		tr.captureResponse(fe, hdr)
	}

	if p.server == srv {
		sl.sticky.pinned.Add(1)
		bl.sticky.pinned.Add(1)
	}
	// http-response rules run before the persistence cookie is added, as
	// in HAProxy.
	runResponseRules(fe.resRules, hdr)
	if be.ck != nil {
		cacheable := be.ck.cfg.NoCache && responseCacheable(r, resp.status, hdr)
		var inserted bool
		if inserted, tr.cookieRes = be.ck.processResponseCookies(hdr, r, srv, &p, now, cacheable, vals); inserted {
			sl.sticky.newSessions.Add(1)
			bl.sticky.newSessions.Add(1)
		}
		if p.reissued {
			sl.sticky.reissued.Add(1)
			bl.sticky.reissued.Add(1)
		}
	}
	if resp.status == http.StatusSwitchingProtocols {
		in, out, err := tunnel(w, conn, resp, hdr, tunnelTimeoutsFor(fe.cfg, be.cfg))
		conn.pool.discard(conn)
		sl.bytesIn.Add(in)
		bl.bytesIn.Add(in)
		sl.bytesOut.Add(out)
		bl.bytesOut.Add(out)
		sl.countAnswer(resp.status)
		code := resp.status
		if err != nil {
			// The client connection cannot carry a tunnel (HTTP/2).
			code = http.StatusBadGateway
			clear(hdr)
			writeError(w, code)
		}
		bl.responses[classIndex(code)].Add(1)
		tr.bytes = in + out
		tr.end(0, 0, code)
		return code, false
	}
	// bout counts the response forwarded, head included.
	head := responseHeadBytes(resp.status, hdr)
	setHeaderOrder(w, conn.order)
	n, sent, readErr, writeErr := copyResponse(w, cs, resp.status, resp.reason, resp.body, resp.contentLength, conn.br.Buffered)
	if sent || readErr == nil {
		n += head
	}
	sl.bytesOut.Add(n)
	bl.bytesOut.Add(n)
	tr.bytes = n
	switch {
	case readErr != nil:
		// The server cut the body short or framed it wrongly.
		conn.pool.discard(conn)
		code := http.StatusBadGateway
		tr.term = [2]byte{'S', 'D'}
		switch {
		case errors.Is(readErr, errServerTimeout):
			code = http.StatusGatewayTimeout
			tr.term[0] = 's'
			fallthrough
		case conn.readErr == nil && !errors.Is(readErr, io.ErrUnexpectedEOF):
			sl.respErrors.Add(1)
			bl.respErrors.Add(1)
		default:
			// A body the server cut short is both, as in HAProxy.
			sl.respErrors.Add(1)
			bl.respErrors.Add(1)
			sl.srvAborts.Add(1)
			bl.srvAborts.Add(1)
		}
		if sent {
			// The client got the server's status and part of its body.
			sl.countAnswer(resp.status)
			bl.responses[classIndex(resp.status)].Add(1)
			tr.status = resp.status
			return resp.status, true
		}
		// Nothing was sent yet: the client gets an error instead.
		clear(hdr)
		bl.responses[classIndex(code)].Add(1)
		writeError(w, code)
		tr.status, tr.bytes = code, 0
		return code, false
	case writeErr != nil:
		// The client went away: the rest of the body stays unread.
		conn.pool.discard(conn)
		sl.cliAborts.Add(1)
		bl.cliAborts.Add(1)
		sl.countAnswer(resp.status)
		bl.responses[classIndex(resp.status)].Add(1)
		tr.end('C', 'D', resp.status)
		return resp.status, true
	}
	sl.countAnswer(resp.status)
	bl.responses[classIndex(resp.status)].Add(1)
	tr.status = resp.status
	if resp.close || upgrade {
		conn.pool.discard(conn)
	} else {
		// The body was read to its end: the connection can serve again
		// unless the server sent more than the response.
		conn.pool.put(conn)
	}
	return resp.status, false
}

// exchangeFailed answers a request whose exchange with the server failed
// before a response could be forwarded, counts the failure on whichever
// side caused it, and returns what serveBackend returns.
func exchangeFailed(w http.ResponseWriter, r *http.Request, err error, sl *serverLive, bl *backendLive, tr *requestTrace) (status int, abort bool) {
	var (
		ce   *errConnect
		body *errClientBody
		ne   net.Error
	)
	code := http.StatusBadGateway
	switch {
	case errors.As(err, &body):
		switch {
		case errors.As(body.err, &ne) && ne.Timeout():
			// The client did not send its body within timeout client.
			sl.cliAborts.Add(1)
			bl.cliAborts.Add(1)
			code = http.StatusRequestTimeout
			tr.term = [2]byte{'c', 'D'}
		case errors.Is(body.err, io.ErrUnexpectedEOF) || errors.As(body.err, &ne):
			// The client went away in the middle of its body.
			sl.cliAborts.Add(1)
			bl.cliAborts.Add(1)
			tr.end('C', 'D', 0)
			return 0, true
		default:
			// A malformed body is the client's error, not the server's.
			code = http.StatusBadRequest
			tr.term = [2]byte{'P', 'D'}
		}
		tr.status = code
		// The client is still there, whatever its request's context says
		// after the failed read.
		bl.responses[classIndex(code)].Add(1)
		writeError(w, code)
		return code, false
	case errors.As(err, &ce):
		sl.connErrors.Add(1)
		bl.connErrors.Add(1)
		code = http.StatusServiceUnavailable
		tr.term = [2]byte{'S', 'C'}
		tr.upstream = upstreamNone // no connection: no Tc
		select {
		case sl.checkNow <- struct{}{}:
		default:
		}
	case errors.Is(err, errServerTimeout):
		sl.respErrors.Add(1)
		bl.respErrors.Add(1)
		code = http.StatusGatewayTimeout
		tr.term = [2]byte{'s', 'H'}
	default:
		sl.respErrors.Add(1)
		bl.respErrors.Add(1)
		// The server answered what is not HTTP, or closed first.
		tr.term = [2]byte{'P', 'H'}
		var closed *errNoResponse
		if errors.As(err, &closed) {
			tr.term[0] = 'S'
		}
	}
	tr.status = code
	bl.responses[classIndex(code)].Add(1)
	if r.Context().Err() == nil {
		writeError(w, code)
	}
	return code, false
}

// redispatchNow applies HAProxy's stream_choose_redispatch rule after a
// failed connection attempt (attempt counts from 1).
func redispatchNow(be *backendRT, srv *serverRT, direct bool, attempt, retries int) bool {
	if !be.cfg.Redispatch {
		return false
	}
	if !srv.running() || srv.op != OpRunning {
		return true
	}
	interval := be.cfg.RedispatchInterval
	switch {
	case interval > 0:
		if attempt%interval == 0 {
			return true
		}
	case interval < 0:
		if attempt%(retries+1+interval) == 0 {
			return true
		}
	}
	return !direct && be.usableCount > 1 && be.cfg.Balance != Source
}

// roundTrip sends r to srv and reads the response headers, of at most
// limit bytes. An upgrade request goes on a new connection, never a pooled
// one. On success the server's in-flight counter has been incremented and
// the caller owns conn.
func (b *Balancer) roundTrip(r *http.Request, be *backendRT, srv *serverRT, xff forwardedHeader, dst http.Header, vals *[]string, limit int, upgrade bool, tr *requestTrace) (upstreamResponse, *upConn, error) {
	var resp upstreamResponse
	addr := srv.dialAddr()
	if addr == "" {
		return resp, nil, &errConnect{err: errors.New("server has no address")}
	}
	sl := srv.live
	maxIdle, purgeDelay := srv.cfg.IdlePool.Limits()
	pool := sl.poolFor(poolSettings{
		addr: addr, connectTimeout: orDefault(be.cfg.TimeoutConnect, 5*time.Second), serverTimeout: be.cfg.TimeoutServer,
		tls: srv.trafficTLS(), maxIdle: maxIdle, purgeDelay: purgeDelay,
	})
	sni := ""
	if pool.tls != nil {
		sni = pool.tls.serverName(r)
	}
	sl.sessions.Add(1)
	sl.lastSession.Store(b.now().UnixNano())
	storeMax(&sl.max, sl.cur.Add(1))
	for try := 0; ; try++ {
		var c *upConn
		var err error
		if upgrade {
			c, err = pool.dial(sni)
		} else {
			c, err = pool.get(sni)
		}
		if err != nil {
			sl.cur.Add(-1)
			return resp, nil, err
		}
		if c.reused {
			tr.upstream = upstreamReused
		} else {
			tr.upstream, tr.connected = upstreamNew, c.connected
		}
		c.readErr, c.nread = nil, 0
		// Like HAProxy without option abortonclose, a client that goes
		// away does not abort the request to the server.
		err = writeRequest(c, r, r.Header, xff, upgrade)
		// closed records that the server's side of the connection failed
		// (a write, or a read before the response head was complete).
		var closed bool
		if err == nil {
			resp, err = readUpstreamResponse(c, r.Method, upgrade, limit, dst, vals)
			closed = c.readErr != nil && !errors.Is(err, errBadResponse)
		} else {
			var body *errClientBody
			closed = !errors.As(err, &body)
		}
		if err == nil {
			// bin counts the request forwarded, head included.
			in := requestHeadBytes(r) + max(r.ContentLength, 0)
			sl.bytesIn.Add(in)
			be.live.bytesIn.Add(in)
			return resp, c, nil
		}
		pool.discard(c)
		// A reused connection that failed before the server answered a
		// byte was most likely closed by the server while idle: send the
		// request again, but only when repeating it is harmless, and never
		// after a timeout (the server may be working on it). The next
		// connection may be another idle one the server closed at the
		// same moment (a server going away closes them all), so this is
		// allowed a few times, as HAProxy's retries are.
		if c.reused && try < maxReusedReplays && c.nread == 0 && replayable(r) && !errors.Is(err, errServerTimeout) && r.Context().Err() == nil {
			continue
		}
		sl.cur.Add(-1)
		if closed && !errors.Is(err, errServerTimeout) {
			err = &errNoResponse{err: err}
		}
		return resp, nil, err
	}
}

// copyResponse sends the status and streams a response body to the
// client, flushing when the origin pauses so streamed responses reach the
// client promptly. The status is sent with the first part of the body, so
// a body that fails at once is reported before anything was sent (sent
// false). A body of known length that arrived whole is left for the server
// to send with the headers in one write. Each write must complete within
// cs's timeout. readErr is the server's failure, writeErr the client's.
func copyResponse(w http.ResponseWriter, cs clientSide, status int, reason string, body io.Reader, length int64, pending func() int) (total int64, sent bool, readErr, writeErr error) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	flusher, _ := w.(http.Flusher)
	for {
		n, err := body.Read(*buf)
		if !sent {
			// Take in what already arrived before answering, as HAProxy
			// parses a whole buffer first: a body broken within it is a
			// 502, not a truncated response.
			for err == nil && n < len(*buf) && pending() > 0 {
				var m int
				m, err = body.Read((*buf)[n:])
				n += m
			}
			if err != nil && err != io.EOF {
				return total, false, err, nil
			}
		}
		if !sent && (n > 0 || err == io.EOF) {
			writeStatus(w, status, reason)
			sent = true
		}
		if n > 0 {
			cs.writing()
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return total, sent, nil, werr
			}
			total += int64(n)
			if flusher != nil && n < len(*buf) && err == nil && total != length {
				flusher.Flush()
			}
		}
		if err == io.EOF {
			return total, sent, nil, nil
		}
		if err != nil {
			return total, sent, err, nil
		}
	}
}

// maxReusedReplays bounds how many times a safe request is sent again
// after reused connections failed before any answer.
const maxReusedReplays = 3

// replayable reports whether a request may be sent a second time after the
// server may have seen it: a safe method without a body (RFC 9110 9.2.1).
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody)
	}
	return false
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// clientAddr returns the client's IP address.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func isUpgrade(r *http.Request) bool {
	if firstValue(r.Header, "Upgrade") == "" {
		return false
	}
	for _, v := range r.Header["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
