package frontdoor

import (
	"net"
	"net/http"
	"strings"

	"tether/balancer"
)

// CheckRequests returns a handler that applies HAProxy's request checks
// before next sees a request:
//   - a chunked request on a connection that also carried a Content-Length
//     header line is served as chunked (net/http already drops the
//     Content-Length) and its connection closed after the response, as RFC
//     9112 section 6.1 asks and HAProxy does;
//   - an HTTP/1.0 request on a connection that carried Transfer-Encoding
//     is refused with 400: its framing is faulty (RFC 9112 section 6.1);
//   - an absolute-form request target whose authority differs from the
//     Host header is refused with 400, and the scheme's default port is
//     dropped from it;
//   - no request is served on a connection after a response that closed it;
//   - an HTTP/1.0 client gets an HTTP/1.1 status line, with "Connection:
//     close" when its connection ends after the response, as from HAProxy.
//
// The checks need the connection state that Server.Serve attaches; a
// request served by another server passes through unchecked. The handler is
// safe for concurrent use.
func CheckRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := balancer.ClientConnOf(r.Context()).(*clientConn)
		if c == nil {
			next.ServeHTTP(w, r)
			return
		}
		if c.closing.Load() {
			// Bytes read after a response that ended the connection: they
			// are no request of this client's, and get no answer.
			c.replied.Store(true)
			panic(http.ErrAbortHandler)
		}
		c.handlerStarted()
		defer c.handlerDone()
		c.http10.Store(r.ProtoMajor == 1 && r.ProtoMinor == 0)
		if r.ProtoMajor == 1 && r.ProtoMinor == 0 && c.sawTransferEncoding.Load() {
			refuse(w, c)
			return
		}
		if isAbsoluteForm(r.RequestURI) {
			if host := c.lastHost(); host != "" && !sameAuthority(r.URL.Scheme, r.URL.Host, host) {
				refuse(w, c)
				return
			}
			dropDefaultPort(r)
		}
		if r.ContentLength < 0 && len(r.TransferEncoding) > 0 && c.sawContentLength.Load() {
			c.closing.Store(true)
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers HAProxy's 400 page and closes the connection.
func refuse(w http.ResponseWriter, c *clientConn) {
	c.closing.Store(true)
	c.refused(http.StatusBadRequest, false)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h := w.Header()
		h.Set("Connection", "close")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadRequest)
		w.Write(page400[len(page400)-90:])
		return
	}
	defer conn.Close()
	c.replied.Store(true)
	conn.Write(page400) // conn is c: the bytes are counted
}

// isAbsoluteForm reports whether a request target is in absolute form
// (RFC 9112 section 3.2.2).
func isAbsoluteForm(target string) bool {
	return !strings.HasPrefix(target, "/") && strings.Contains(target, "://")
}

// sameAuthority reports whether an absolute-form target's authority and a
// Host header value name the same host and port, ignoring case and the
// scheme's default port, as HAProxy compares them.
func sameAuthority(scheme, authority, host string) bool {
	return strings.EqualFold(withoutDefaultPort(scheme, authority), withoutDefaultPort(scheme, host))
}

// dropDefaultPort removes the scheme's default port from an absolute-form
// target and from Host, as HAProxy's scheme-based normalization does
// before forwarding.
func dropDefaultPort(r *http.Request) {
	authority := withoutDefaultPort(r.URL.Scheme, r.URL.Host)
	if authority == r.URL.Host {
		return
	}
	prefix := r.URL.Scheme + "://" + r.URL.Host
	if len(r.RequestURI) >= len(prefix) && strings.EqualFold(r.RequestURI[:len(prefix)], prefix) {
		r.RequestURI = r.RequestURI[:len(r.URL.Scheme)+3] + authority + r.RequestURI[len(prefix):]
	}
	r.URL.Host = authority
	r.Host = withoutDefaultPort(r.URL.Scheme, r.Host)
}

func withoutDefaultPort(scheme, hostport string) string {
	h, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if (port == "80" && strings.EqualFold(scheme, "http")) || (port == "443" && strings.EqualFold(scheme, "https")) {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}
