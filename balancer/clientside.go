package balancer

import (
	"io"
	"net/http"
	"time"
)

// clientSide enforces timeout client on one request's client connection:
// each read of the request body and each write of the response must make
// progress within the timeout. The zero value enforces nothing.
type clientSide struct {
	dl      deadliner
	timeout time.Duration
	// writesBounded says the writer itself bounds each write by timeout,
	// from the start of each wait: writing has nothing to do.
	writesBounded bool
}

// writeBounder is a ResponseWriter that bounds each write to the client
// by a limit counted from the start of each wait (the front door's
// HTTP/1.x writer, whose limit is the frontend's timeout client).
type writeBounder interface {
	WriteIdleLimit() time.Duration
}

// deadliner sets a client connection's deadlines; http.Server's response
// writers and http.ResponseController have these methods.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// newClientSide returns the clientSide of w for the given timeout; it
// enforces nothing when timeout is 0 or w cannot set deadlines.
func newClientSide(w http.ResponseWriter, timeout time.Duration) clientSide {
	if timeout <= 0 {
		return clientSide{}
	}
	dl, ok := w.(deadliner)
	if !ok {
		if _, wraps := w.(interface{ Unwrap() http.ResponseWriter }); !wraps {
			return clientSide{}
		}
		dl = http.NewResponseController(w)
	}
	wb, bounds := w.(writeBounder)
	return clientSide{dl: dl, timeout: timeout, writesBounded: bounds && wb.WriteIdleLimit() == timeout}
}

// writing gives the next write to the client the timeout to complete.
func (c clientSide) writing() {
	if c.dl != nil && !c.writesBounded {
		c.dl.SetWriteDeadline(time.Now().Add(c.timeout))
	}
}

// body returns r's body wrapped so each read must complete within the
// timeout; a body without content is returned as it is.
func (c clientSide) body(r *http.Request) io.ReadCloser {
	if c.dl == nil || r.Body == nil || r.Body == http.NoBody {
		return r.Body
	}
	return &timedBody{ReadCloser: r.Body, c: c}
}

// timedBody is a request body whose reads are bounded by timeout client.
type timedBody struct {
	io.ReadCloser
	c clientSide
}

func (b *timedBody) Read(p []byte) (int, error) {
	b.c.dl.SetReadDeadline(time.Now().Add(b.c.timeout))
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		// The server keeps reading the connection after the body, to
		// notice a client going away: that read has no deadline.
		b.c.dl.SetReadDeadline(time.Time{})
	case err != nil:
		// The body failed: the server must not wait for the rest of it
		// before closing the connection.
		b.c.dl.SetReadDeadline(time.Unix(1, 0))
	}
	return n, err
}
