package frontdoor

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"tether/balancer"
	"tether/balancer/sockio"
)

// setupH2 prepares the HTTP/2 server of a TLS server.
func (s *Server) setupH2() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h2 != nil {
		return nil
	}
	s.h2base = &http.Server{
		Handler:     s.handler,
		IdleTimeout: s.timeouts.HTTPKeepAlive,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.h2 = &http2.Server{}
	return http2.ConfigureServer(s.h2base, s.h2)
}

// handshaking is a TLS connection in its handshake: Shutdown closes it as
// an idle one.
type handshaking struct {
	nc     net.Conn
	closed atomic.Bool
}

func (h *handshaking) closeIfIdle() bool {
	if h.closed.CompareAndSwap(false, true) {
		h.nc.Close()
	}
	return true
}

func (h *handshaking) forceClose() { h.closeIfIdle() }

// handshake terminates TLS on nc, bounded by timeout client as in HAProxy,
// and serves the connection: HTTP/2 when the client negotiated h2 by ALPN,
// HTTP/1.x otherwise.
func (s *Server) handshake(nc net.Conn) {
	hs := &handshaking{nc: nc}
	if !s.track(hs) {
		s.closed(nc)
		return
	}
	sk := sockio.New(nc)
	tc := tls.Server(sk, s.TLS)
	accepted := time.Now()
	sk.SetDeadline(accepted.Add(s.timeouts.Client))
	err := tc.Handshake()
	s.untrack(hs)
	if err != nil || hs.closed.Load() {
		s.closed(nc)
		return
	}
	sk.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS {
		s.serveH2(tc)
		return
	}
	ready := accepted
	if s.timed {
		// Th: the handshake is part of the first request's time.
		ready = time.Now()
	}
	c := s.newH1Conn(sk, tc, tc, accepted, ready)
	if !s.track(c) {
		c.closeConn()
		return
	}
	c.serve()
}

// closed closes a connection that served nothing and counts its close.
func (s *Server) closed(nc net.Conn) {
	nc.Close()
	if s.Counters != nil {
		s.Counters.ConnClosed()
	}
}

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

// closeIfIdle leaves an HTTP/2 connection to the GOAWAY Shutdown sends.
func (c *h2Conn) closeIfIdle() bool { return false }

func (c *h2Conn) forceClose() { c.Close() }

// Requests returns how many requests (streams) of the connection reached
// the handler (balancer.ClientConn).
func (c *h2Conn) Requests() int64 { return c.requests.Load() }

// serveH2 serves an HTTP/2 connection until it ends.
func (s *Server) serveH2(tc *tls.Conn) {
	c := &h2Conn{Conn: tc, counters: s.Counters}
	if !s.track(c) {
		c.Close()
		return
	}
	defer s.untrack(c)
	defer c.Close()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		s.handler.ServeHTTP(w, r)
	})
	ctx := balancer.WithClientConn(context.Background(), c)
	s.h2.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: s.h2base, Handler: h})
}
