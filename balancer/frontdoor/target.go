package frontdoor

import (
	"net"
	"net/http"
	"strings"
)

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
