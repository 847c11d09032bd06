package frontdoor

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"tether/balancer"
)

// tlsState is what a TLS server tracks besides net/http: the client
// socket it accepts on, and the connections net/http does not know of
// (those in their handshake, and HTTP/2 ones).
type tlsState struct {
	h2 *http2.Server

	mu       sync.Mutex
	ln       net.Listener
	closed   bool
	conns    map[net.Conn]struct{}
	draining bool
	// idle is signalled when conns becomes empty while draining.
	idle chan struct{}
}

// tlsClientConn is a clientConn over TLS: net/http takes the TLS state of
// its requests from ConnectionState.
type tlsClientConn struct {
	*clientConn
	tls *tls.Conn
}

// ConnectionState returns the connection's TLS state.
func (c *tlsClientConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// h2Conn is an HTTP/2 client connection: it counts its bytes and
// requests, and closes once.
type h2Conn struct {
	*tls.Conn
	counters Counters
	requests atomic.Int64
	closed   atomic.Bool
}

func (c *h2Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.counters != nil {
		c.counters.Transferred(n, 0)
	}
	return n, err
}

func (c *h2Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 && c.counters != nil {
		c.counters.Transferred(0, n)
	}
	return n, err
}

func (c *h2Conn) Close() error {
	if c.closed.CompareAndSwap(false, true) && c.counters != nil {
		c.counters.ConnClosed()
	}
	return c.Conn.Close()
}

// Requests returns how many requests (streams) of the connection reached
// the handler (balancer.ClientConn).
func (c *h2Conn) Requests() int64 { return c.requests.Load() }

// serveTLS accepts connections on ln and terminates TLS on each in its own
// goroutine, bounded by timeout client as in HAProxy: an HTTP/1.x connection then
// goes to net/http, through the same checks as a clear-text one; one that
// negotiated h2 by ALPN is served by the HTTP/2 server with the same
// handler.
func (s *Server) serveTLS(ln net.Listener) error {
	st := &tlsState{h2: &http2.Server{}, conns: make(map[net.Conn]struct{})}
	if err := http2.ConfigureServer(s.Server, st.h2); err != nil {
		return err
	}
	st.ln = ln
	s.tlsMu.Lock()
	if s.tlsClosed {
		s.tlsMu.Unlock()
		return http.ErrServerClosed
	}
	s.tlsState = st
	s.tlsMu.Unlock()
	q := newConnQueue(ln.Addr())
	served := make(chan error, 1)
	go func() { served <- s.Server.Serve(q) }()
	for {
		raw, err := ln.Accept()
		if err != nil {
			q.Close()
			<-served
			if st.isClosed() {
				return http.ErrServerClosed
			}
			return err
		}
		if s.Counters != nil {
			s.Counters.ConnAccepted()
		}
		if !st.track(raw) {
			raw.Close()
			if s.Counters != nil {
				s.Counters.ConnClosed()
			}
			continue
		}
		go s.handshake(st, raw, q)
	}
}

// handshake terminates TLS on raw and hands the connection on.
func (s *Server) handshake(st *tlsState, raw net.Conn, q *connQueue) {
	tc := tls.Server(raw, s.TLS)
	accepted := time.Now()
	raw.SetDeadline(accepted.Add(s.timeouts.Client))
	if err := tc.Handshake(); err != nil {
		st.untrack(raw)
		raw.Close()
		if s.Counters != nil {
			s.Counters.ConnClosed()
		}
		return
	}
	raw.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS {
		s.serveH2(st, raw, tc)
		return
	}
	st.untrack(raw)
	cc := &tlsClientConn{clientConn: &clientConn{Conn: tc, writeGrace: s.timeouts.Client, counters: s.Counters,
		accepted: accepted, ready: accepted, timed: timesRequests(s.Counters)}, tls: tc}
	if cc.timed {
		// Th: the handshake is part of the first request's time.
		cc.ready = time.Now()
	}
	if !q.offer(cc) {
		cc.Close()
	}
}

// serveH2 serves an HTTP/2 connection until it ends.
func (s *Server) serveH2(st *tlsState, raw net.Conn, tc *tls.Conn) {
	c := &h2Conn{Conn: tc, counters: s.Counters}
	defer st.untrack(raw)
	defer c.Close()
	next := s.Server.Handler
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		next.ServeHTTP(w, r)
	})
	ctx := balancer.WithClientConn(context.Background(), c)
	st.h2.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: s.Server, Handler: h})
}

// track records a connection net/http does not know of; it returns false
// once the server is closed.
func (st *tlsState) track(c net.Conn) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false
	}
	st.conns[c] = struct{}{}
	return true
}

func (st *tlsState) untrack(c net.Conn) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.conns, c)
	if st.draining && len(st.conns) == 0 && st.idle != nil {
		close(st.idle)
		st.idle = nil
		st.draining = false
	}
}

func (st *tlsState) isClosed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.closed
}

// closeListener stops accepting connections.
func (st *tlsState) closeListener() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.closed {
		st.closed = true
		st.ln.Close()
	}
}

// stop closes the client socket; with force it also closes every tracked
// connection. It returns a channel closed once no tracked connection is
// left.
func (st *tlsState) stop(force bool) <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.closed {
		st.closed = true
		st.ln.Close()
	}
	if force {
		for c := range st.conns {
			c.Close()
		}
	}
	if len(st.conns) == 0 {
		done := make(chan struct{})
		close(done)
		return done
	}
	st.draining = true
	if st.idle == nil {
		st.idle = make(chan struct{})
	}
	return st.idle
}

// Shutdown stops accepting, lets HTTP/2 connections finish their streams
// (net/http sends them GOAWAY) and waits for every connection to end, up
// to ctx, as http.Server.Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error {
	st := s.closeTLS()
	if st != nil {
		st.closeListener()
	}
	err := s.Server.Shutdown(ctx)
	if st == nil {
		return err
	}
	select {
	case <-st.stop(false):
	case <-ctx.Done():
		return errors.Join(err, ctx.Err())
	}
	return err
}

// Close closes the server and every connection at once, as
// http.Server.Close does.
func (s *Server) Close() error {
	st := s.closeTLS()
	if st != nil {
		st.stop(true)
	}
	return s.Server.Close()
}

// closeTLS marks the server closed and returns its TLS state, nil for a
// clear-text server or one not serving yet.
func (s *Server) closeTLS() *tlsState {
	s.tlsMu.Lock()
	defer s.tlsMu.Unlock()
	s.tlsClosed = true
	return s.tlsState
}

// connQueue is the listener net/http serves TLS connections from once
// their handshake is done.
type connQueue struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{conns: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

// Accept waits for the next connection.
func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

// Close stops the queue; it closes no connection.
func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

// Addr returns the client socket's address.
func (q *connQueue) Addr() net.Addr { return q.addr }

// offer hands c to net/http; it returns false once the queue is closed.
func (q *connQueue) offer(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.done:
		return false
	}
}
