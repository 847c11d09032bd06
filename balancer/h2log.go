package balancer

import "net/http"

// logURI returns the request target an access-log line shows: HAProxy
// logs an HTTP/2 request in absolute form, scheme and authority first,
// as it holds it internally.
func logURI(r *http.Request) string {
	if r.ProtoMajor != 2 || r.Host == "" {
		return r.RequestURI
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host + r.RequestURI
}
