// Package frontdoor is the client-facing HTTP server of a frontend, with
// HAProxy 2.6's rules for hostile or broken clients: the request header
// block is bounded by tune.bufsize minus tune.maxrewrite, timeout
// http-request answers 408 and closes, timeout http-keep-alive closes
// silently, a request framed both by Content-Length and by chunked
// Transfer-Encoding is served once and its connection closed, an
// absolute-form URI naming another authority than Host is refused, and
// "OPTIONS *" reaches the handler. Requests the server refuses itself are
// answered with HAProxy's own error pages, byte for byte.
//
// HTTP/1.x is served by the package's own connection loop (h1conn): one
// goroutine per connection, reading and writing with direct system calls,
// no buffer held while a connection waits for its next request, requests
// and response writers reused along a connection. A server with a TLS
// configuration terminates TLS on the connections it accepts and serves
// HTTP/2 to clients that negotiate it by ALPN through golang.org/x/net/http2,
// with the same handler; others speak HTTP/1.x as on a clear-text bind.
package frontdoor

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"tether/balancer"
	"tether/balancer/sockio"
)

// DefaultClientTimeout stands in for timeout client when a frontend sets
// none, so that no client connection is held forever.
const DefaultClientTimeout = 60 * time.Second

// HAProxy 2.6's error replies, as it writes them.
var (
	page400 = []byte("HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n" +
		"<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n")
	page408 = []byte("HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n" +
		"<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n")
)

// Timeouts are a frontend's client-side timeouts with HAProxy's defaults
// applied.
type Timeouts struct {
	// Client is timeout client (DefaultClientTimeout when unset).
	Client time.Duration
	// HTTPRequest is timeout http-request, defaulting to Client.
	HTTPRequest time.Duration
	// HTTPKeepAlive is timeout http-keep-alive, defaulting to HTTPRequest.
	HTTPKeepAlive time.Duration
}

// TimeoutsOf returns fe's effective client-side timeouts.
func TimeoutsOf(fe balancer.Frontend) Timeouts {
	t := Timeouts{Client: fe.TimeoutClient, HTTPRequest: fe.TimeoutHTTPRequest, HTTPKeepAlive: fe.TimeoutHTTPKeepAlive}
	if t.Client <= 0 {
		t.Client = DefaultClientTimeout
	}
	if t.HTTPRequest <= 0 {
		t.HTTPRequest = t.Client
	}
	if t.HTTPKeepAlive <= 0 {
		t.HTTPKeepAlive = t.HTTPRequest
	}
	return t
}

// Counters receives what the server sees outside the handler, so that the
// frontend's statistics count it as HAProxy does. balancer.FrontendEvents
// implements it. Its methods must be safe for concurrent use and cheap.
type Counters interface {
	// ConnAccepted is called once per accepted connection, ConnClosed
	// once when it is closed.
	ConnAccepted()
	ConnClosed()
	// Refused is called when the server answers a request itself with
	// status (400 or 408) instead of passing it to the handler.
	Refused(status int)
	// Transferred is called with the bytes read from (in) or written to
	// (out) a client connection, after each read or write.
	Transferred(in, out int)
}

// refusalLogger is implemented by Counters that write the access-log line
// of a request the server refuses itself (balancer.FrontendEvents does).
type refusalLogger interface {
	LogRefusal(balancer.Refusal)
}

// timesRequests reports whether counters ask for the times of each
// request (balancer.FrontendEvents.TimesRequests: the frontend logs).
func timesRequests(counters Counters) bool {
	tc, ok := counters.(interface{ TimesRequests() bool })
	return ok && tc.TimesRequests()
}

// Server is one frontend's HTTP server. Shutdown and Close are safe to
// call from any goroutine.
type Server struct {
	handler   http.Handler
	timeouts  Timeouts
	headLimit int
	log       *slog.Logger
	// Counters, when set before Serve, receives accepted connections,
	// bytes and refused requests.
	Counters Counters
	// TLS, when set before Serve, makes the server terminate TLS with this
	// configuration (see tlsbind). A handshake must end within timeout
	// client, as in HAProxy.
	TLS *tls.Config

	// timed says the counters want each request's times (access logs).
	timed bool
	// h2 serves HTTP/2 connections; h2base carries its settings and sends
	// GOAWAY on Shutdown.
	h2     *http2.Server
	h2base *http.Server

	inPool, outPool sync.Pool
	requests        sync.Pool
	inShutdown      atomic.Bool
	// parker holds long-idle HTTP/1.1 connections without a goroutine;
	// nil where it is not available.
	parker *parker

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[trackedConn]struct{}
}

// trackedConn is a client connection Shutdown and Close must end.
type trackedConn interface {
	// closeIfIdle closes the connection if it serves no request and
	// reports whether it did.
	closeIfIdle() bool
	// forceClose closes the connection at once.
	forceClose()
}

// New returns the server of frontend fe, handing accepted requests to h.
//
// A request header block (start line, headers and the blank line) larger
// than g.HeaderLimit() bytes is answered with HAProxy's 400 page. The
// limit counts raw bytes; HAProxy counts its internal representation,
// which costs about 90 bytes plus 4 per header line, so it refuses
// somewhat earlier (about 15270 raw bytes for a two-header request at the
// default 15360).
//
// timeout http-request bounds the first request's head from accept and a
// later one's from its first byte; when it expires before a head is
// complete the client gets HAProxy's 408 page. timeout http-keep-alive
// bounds the wait for a later request's first byte: an idle connection
// is closed silently. A client that half-closes its side ends its
// connection once the response is written, so timeout client-fin never
// applies.
func New(fe balancer.Frontend, g balancer.Global, h http.Handler, log *slog.Logger) *Server {
	s := &Server{
		handler:   h,
		timeouts:  TimeoutsOf(fe),
		headLimit: g.HeaderLimit(),
		log:       log,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[trackedConn]struct{}),
	}
	inSize := max(s.headLimit+1, 4096)
	s.inPool.New = func() any { b := make([]byte, inSize); return &b }
	s.outPool.New = func() any { b := make([]byte, 0, outBufferSize); return &b }
	s.requests.New = func() any { return new(requestState) }
	return s
}

// Buffers travel with the pointer the pool made them with, so that giving
// one back allocates nothing.
func (s *Server) getIn() *[]byte { return s.inPool.Get().(*[]byte) }

func (s *Server) putIn(b *[]byte) { s.inPool.Put(b) }

func (s *Server) getOut() *[]byte { return s.outPool.Get().(*[]byte) }

func (s *Server) putOut(b *[]byte) {
	*b = (*b)[:0]
	s.outPool.Put(b)
}

// Serve accepts connections on ln until the server is shut down, when it
// returns http.ErrServerClosed, as http.Server.Serve does.
func (s *Server) Serve(ln net.Listener) error {
	s.timed = timesRequests(s.Counters)
	if s.TLS != nil {
		if err := s.setupH2(); err != nil {
			return err
		}
	}
	if !s.trackListener(ln) {
		return http.ErrServerClosed
	}
	if !s.startParker() {
		s.untrackListener(ln)
		return http.ErrServerClosed
	}
	defer s.untrackListener(ln)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if s.Counters != nil {
			s.Counters.ConnAccepted()
		}
		if s.TLS != nil {
			go s.handshake(nc)
			continue
		}
		sk := sockio.New(nc)
		c := s.newH1Conn(sk, sk, nil, time.Now(), time.Time{})
		c.ready = c.accepted
		if !s.track(c) {
			c.closeConn()
			continue
		}
		go c.serve()
	}
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

// startParker starts the server's parker; it returns false once the
// server is shut down.
func (s *Server) startParker() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	if s.parker == nil {
		s.parker = newParker(s.log)
	}
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
}

// track records a connection; it returns false once the server is shut
// down.
func (s *Server) track(c trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// stop marks the server shut down, closes its listeners and the
// connections its parker holds.
func (s *Server) stop() {
	s.mu.Lock()
	s.inShutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	p := s.parker
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// connList returns the tracked connections.
func (s *Server) connList() []trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]trackedConn, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	return list
}

// closeIdle closes the idle connections and returns how many are left.
func (s *Server) closeIdle() int {
	for _, c := range s.connList() {
		c.closeIfIdle()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting, closes idle connections, lets HTTP/2
// connections finish their streams (they are sent GOAWAY) and waits for
// every connection to end, up to ctx, as http.Server.Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	var err error
	if s.h2base != nil {
		err = s.h2base.Shutdown(ctx)
	}
	wait := time.Millisecond
	for {
		if s.closeIdle() == 0 {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// Close closes the server and every connection at once, as
// http.Server.Close does.
func (s *Server) Close() error {
	s.stop()
	for _, c := range s.connList() {
		c.forceClose()
	}
	if s.h2base != nil {
		return s.h2base.Close()
	}
	return nil
}
