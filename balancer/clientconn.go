package balancer

import (
	"context"
	"net/http"
	"time"
)

// ClientConn is what the server in front of the proxy handler knows about
// the client connection a request arrived on. Its methods must be safe for
// concurrent use and cheap.
type ClientConn interface {
	// Requests returns how many requests of the connection reached the
	// handler, the current one included.
	Requests() int64
}

// OrderedHeaders is a ClientConn that knows the order of the current
// request's header lines.
type OrderedHeaders interface {
	ClientConn
	// HeaderOrder returns the request's header names (canonical form),
	// each where it first appeared, Host included.
	HeaderOrder() []string
}

// ClientConnKey is the context key of a request's ClientConn, which
// WithClientConn sets. A server with a context type of its own answers
// it with the ClientConn.
type ClientConnKey struct{}

// WithClientConn returns a copy of ctx that carries c. A server sets it
// once per connection (http.Server.ConnContext), so that the proxy can
// answer as HAProxy does where the answer depends on the connection.
func WithClientConn(ctx context.Context, c ClientConn) context.Context {
	return context.WithValue(ctx, ClientConnKey{}, c)
}

// ClientConnOf returns the ClientConn that ctx carries, or nil.
func ClientConnOf(ctx context.Context) ClientConn {
	c, _ := ctx.Value(ClientConnKey{}).(ClientConn)
	return c
}

// keptAliveRequest reports whether r is not the first request of its
// client connection, as far as the server in front says (a request whose
// server says nothing counts as a first one).
func keptAliveRequest(r *http.Request) bool {
	c := ClientConnOf(r.Context())
	return c != nil && c.Requests() > 1
}

// RequestTimes are the moments of a client connection that HAProxy's
// access log measures a request's first timers from.
type RequestTimes struct {
	// Accepted is when the connection was accepted, for its first
	// request, or when the previous response ended, for a later one
	// (HAProxy's accept date, %t).
	Accepted time.Time
	// Ready is when the connection could take the request: its
	// handshakes ended (first request) or the previous response ended.
	// Th runs from Accepted to Ready, Ti from Ready to FirstByte.
	Ready time.Time
	// FirstByte is when the request's first byte arrived; zero when it
	// is unknown (the request came in one read with the previous one).
	FirstByte time.Time
}

// TimedConn is a ClientConn that keeps its requests' RequestTimes. A
// server offers it on connections whose frontend logs (see
// FrontendEvents.TimesRequests).
type TimedConn interface {
	ClientConn
	// RequestTimes returns the current request's times.
	RequestTimes() RequestTimes
	// Answered records when the current request's response ended: the
	// next request's idle time starts there.
	Answered(at time.Time)
}
