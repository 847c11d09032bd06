// Package rules evaluates HAProxy's ACLs and conditions: "acl NAME FETCH
// [flags] VALUES…" lines and the "if"/"unless" conditions of rules such as
// use_backend and http-request, with the fetches and matching methods real
// configurations use. A condition is parsed once per configuration and
// evaluated for every request without allocating.
package rules

import (
	"net/http"
	"net/netip"
	"strings"
)

// Request is what conditions read from one HTTP request.
type Request struct {
	Method string
	// Target is the request target as received: "/path?query",
	// "http://host/path" or "*".
	Target string
	// Host is the Host header (the authority of an absolute target).
	Host string
	// Header holds the request's other headers, with canonical keys.
	Header http.Header
	// Version is the protocol version without "HTTP/": "1.0", "1.1", "2.0".
	Version string
	Src     netip.Addr
	DstPort int
	// TLS reports a TLS connection; SNI is the name the client sent.
	TLS bool
	SNI string
}

// path returns the path of the target: what follows the authority of an
// absolute target, up to the query.
func (r *Request) path() string {
	t := r.Target
	if i := strings.Index(t, "://"); i >= 0 && !strings.HasPrefix(t, "/") {
		rest := t[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return ""
		}
		t = rest[j:]
	}
	if i := strings.IndexByte(t, '?'); i >= 0 {
		t = t[:i]
	}
	return t
}

// query returns what follows the first '?' of the target, or "" and false.
func (r *Request) query() (string, bool) {
	if i := strings.IndexByte(r.Target, '?'); i >= 0 {
		return r.Target[i+1:], true
	}
	return "", false
}

// eachHeader calls fn with each value of the header named by key (a
// canonical key); split cuts each line at commas, as HAProxy's hdr()
// does. It stops when fn returns true, and reports whether it did.
func (r *Request) eachHeader(key string, split bool, fn func(string) bool) bool {
	if key == "Host" && r.Host != "" {
		return fn(r.Host)
	}
	for _, line := range r.Header[key] {
		if !split {
			if fn(line) {
				return true
			}
			continue
		}
		for line != "" {
			v, rest, _ := strings.Cut(line, ",")
			if fn(strings.TrimSpace(v)) {
				return true
			}
			line = rest
		}
	}
	return false
}

// urlParam returns the value of the first query parameter named name.
func (r *Request) urlParam(name string, delim byte) (string, bool) {
	q, ok := r.query()
	if !ok {
		return "", false
	}
	for q != "" {
		var kv string
		if i := strings.IndexByte(q, delim); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, ""
		}
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// eachCookie calls fn with the value of every cookie named name in the
// Cookie headers, until fn returns true.
func (r *Request) eachCookie(name string, fn func(string) bool) bool {
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var c string
			if i := strings.IndexAny(line, ";,"); i >= 0 {
				c, line = line[:i], line[i+1:]
			} else {
				c, line = line, ""
			}
			k, v, ok := strings.Cut(strings.TrimSpace(c), "=")
			if ok && k == name && fn(v) {
				return true
			}
		}
	}
	return false
}
