package balancer

import (
	"context"
	"net/http"
)

// ClientConn is what the server in front of the proxy handler knows about
// the client connection a request arrived on. Its methods must be safe for
// concurrent use and cheap.
type ClientConn interface {
	// Requests returns how many requests of the connection reached the
	// handler, the current one included.
	Requests() int64
}

// clientConnKey is the context key of a request's ClientConn.
type clientConnKey struct{}

// WithClientConn returns a copy of ctx that carries c. A server sets it
// once per connection (http.Server.ConnContext), so that the proxy can
// answer as HAProxy does where the answer depends on the connection.
func WithClientConn(ctx context.Context, c ClientConn) context.Context {
	return context.WithValue(ctx, clientConnKey{}, c)
}

// ClientConnOf returns the ClientConn that ctx carries, or nil.
func ClientConnOf(ctx context.Context) ClientConn {
	c, _ := ctx.Value(clientConnKey{}).(ClientConn)
	return c
}

// keptAliveRequest reports whether r is not the first request of its
// client connection, as far as the server in front says (a request whose
// server says nothing counts as a first one).
func keptAliveRequest(r *http.Request) bool {
	c := ClientConnOf(r.Context())
	return c != nil && c.Requests() > 1
}
