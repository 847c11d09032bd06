// Package frontdoor builds the client-facing HTTP server of a frontend with
// HAProxy 2.6's rules for hostile or broken clients: the request header
// block is bounded by tune.bufsize minus tune.maxrewrite, timeout
// http-request answers 408 and closes, timeout http-keep-alive closes
// silently, a request framed both by Content-Length and by chunked
// Transfer-Encoding is served once and its connection closed, an
// absolute-form URI naming another authority than Host is refused, and
// "OPTIONS *" reaches the handler. Requests the server refuses itself are
// answered with HAProxy's own error pages, byte for byte.
//
// A server with a TLS configuration terminates TLS on the connections it
// accepts and serves HTTP/2 to clients that negotiate it by ALPN, with the
// same handler; others speak HTTP/1.x as on a clear-text bind.
package frontdoor

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"tether/balancer"
)

// DefaultClientTimeout stands in for timeout client when a frontend sets
// none, so that no client connection is held forever.
const DefaultClientTimeout = 60 * time.Second

// goHeaderSlack is what net/http reads beyond Server.MaxHeaderBytes before
// it refuses a request head (its initialReadLimitSize adds 4096).
const goHeaderSlack = 4096

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

// Server is one frontend's HTTP server. Serve wraps every accepted
// connection to apply the rules above; the embedded http.Server is safe to
// Shutdown or Close from any goroutine.
type Server struct {
	*http.Server
	timeouts Timeouts
	// Counters, when set before Serve, receives accepted connections and
	// refused requests.
	Counters Counters
	// TLS, when set before Serve, makes the server terminate TLS with this
	// configuration (see tlsbind). A handshake must end within timeout
	// client, as in HAProxy.
	TLS *tls.Config

	tlsMu     sync.Mutex
	tlsClosed bool
	tlsState  *tlsState
}

// New returns the server of frontend fe, handing accepted requests to h.
//
// A request header block (start line, headers and the blank line) larger
// than g.HeaderLimit() bytes is answered with HAProxy's 400 page, not
// net/http's 431: HAProxy 2.6 answers 400 to a header block that does not
// fit its buffer. The limit counts raw bytes; HAProxy counts its internal
// representation, which costs about 90 bytes plus 4 per header line, so it
// refuses somewhat earlier (about 15270 raw bytes for a two-header request
// at the default 15360). A pipelined head that net/http had already
// buffered with the previous request may exceed the limit by up to the
// 4096 bytes of its read buffer.
//
// timeout http-request is net/http's ReadHeaderTimeout; when it expires
// before a head is complete the client gets HAProxy's 408 page. timeout
// http-keep-alive is its IdleTimeout: an idle connection is closed
// silently. A client that half-closes its side ends its connection once
// the response is written, so timeout client-fin never applies.
func New(fe balancer.Frontend, g balancer.Global, h http.Handler, log *slog.Logger) *Server {
	s := &Server{timeouts: TimeoutsOf(fe)}
	maxHeader := g.HeaderLimit() - goHeaderSlack
	if maxHeader < 1 {
		// net/http treats 0 as its 1 MB default; 1 is its smallest limit.
		maxHeader = 1
	}
	s.Server = &http.Server{
		Handler: CheckRequests(h),
		// net/http starts this deadline at accept for the first request and
		// once the next request's first bytes arrived for later ones.
		ReadHeaderTimeout:            s.timeouts.HTTPRequest,
		IdleTimeout:                  s.timeouts.HTTPKeepAlive,
		MaxHeaderBytes:               maxHeader,
		DisableGeneralOptionsHandler: true,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			switch cc := c.(type) {
			case *clientConn:
				return balancer.WithClientConn(ctx, cc)
			case *tlsClientConn:
				return balancer.WithClientConn(ctx, cc.clientConn)
			}
			return ctx
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// Serve accepts connections on ln until the server is shut down, as
// http.Server.Serve does.
func (s *Server) Serve(ln net.Listener) error {
	if s.TLS != nil {
		return s.serveTLS(ln)
	}
	return s.Server.Serve(&listener{Listener: ln, writeGrace: s.timeouts.Client, counters: s.Counters})
}

// listener wraps every accepted connection in a clientConn.
type listener struct {
	net.Listener
	writeGrace time.Duration
	counters   Counters
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.counters != nil {
		l.counters.ConnAccepted()
	}
	now := time.Now()
	return &clientConn{Conn: c, writeGrace: l.writeGrace, counters: l.counters, accepted: now, ready: now, timed: timesRequests(l.counters)}, nil
}

// timesRequests reports whether counters ask for the times of each
// request (balancer.FrontendEvents.TimesRequests: the frontend logs).
func timesRequests(counters Counters) bool {
	tc, ok := counters.(interface{ TimesRequests() bool })
	return ok && tc.TimesRequests()
}
