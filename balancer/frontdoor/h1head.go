package frontdoor

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// parsedHead is a parsed HTTP/1.x request head, checked as HAProxy 2.6
// checks one.
type parsedHead struct {
	method, target string
	major, minor   int
	header         http.Header
	// order is the header names (canonical) in the order they first
	// appear, Host included, as HAProxy forwards them.
	order []string
	// values is the backing array of the header's values.
	values []string
	host   string
	// contentLength is the body's length, -1 for a chunked body.
	contentLength int64
	chunked       bool
	// close says the connection ends after the response: the client asked
	// for it, an HTTP/1.0 client did not ask to keep it, or the request
	// was framed both by Content-Length and by chunked Transfer-Encoding
	// (RFC 9112 section 6.1).
	close bool
	// keepAlive10 says an HTTP/1.0 client asked to keep the connection.
	keepAlive10 bool
	// expectContinue says the client waits for "100 Continue".
	expectContinue bool
}

// headEnd returns the length of the request head at the start of b (up to
// and including the empty line that ends it), or -1 when b holds no
// complete head. Lines end with LF, optionally preceded by CR.
func headEnd(b []byte, from int) int {
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// parseHead parses the request head in s (which headEnd delimited),
// listing the header names in the order they came. It returns false for
// a head HAProxy refuses with 400.
//
// The header map, the values' backing array and the order slice of reuse
// (nil for none) are emptied and filled again, so that a connection's
// requests share them.
func parseHead(s string, reuse *parsedHead) (parsedHead, bool) {
	if reuse == nil {
		reuse = &parsedHead{}
	}
	clear(reuse.header)
	h := parsedHead{header: reuse.header, order: reuse.order[:0]}
	line, rest, ok := cutLine(s)
	if !ok {
		return h, false
	}
	method, rl, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rl, " ")
	if !ok1 || !ok2 || method == "" || target == "" || !isToken(method) || !validTarget(target) {
		return h, false
	}
	switch version {
	case "HTTP/1.1":
		h.major, h.minor = 1, 1
	case "HTTP/1.0":
		h.major, h.minor = 1, 0
	default:
		return h, false
	}
	h.method, h.target = method, target

	// Count the lines first so that the values share one backing array.
	lines := strings.Count(rest, "\n")
	if h.header == nil {
		h.header = make(http.Header, lines)
	}
	h.values = reuse.values[:0]
	if cap(h.values) < lines {
		h.values = make([]string, 0, lines)
	}
	var lastKey string
	hosts, lengths, encodings := 0, "", 0
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return h, false
		}
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// An obsolete line folding continues the previous value.
			if lastKey == "" {
				return h, false
			}
			vv := h.header[lastKey]
			v := strings.Trim(line, " \t")
			if !validValue(v) {
				return h, false
			}
			if vv[len(vv)-1] == "" {
				vv[len(vv)-1] = v
			} else if v != "" {
				vv[len(vv)-1] += " " + v
			}
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return h, false
		}
		key := textproto.CanonicalMIMEHeaderKey(line[:colon])
		v := strings.Trim(line[colon+1:], " \t")
		if !validValue(v) {
			return h, false
		}
		h.values = append(h.values, v)
		vv := h.header[key]
		if vv == nil {
			n := len(h.values)
			h.header[key] = h.values[n-1 : n : n]
			h.order = append(h.order, key)
		} else {
			h.header[key] = append(vv, v)
		}
		lastKey = key
	}
	for key, vv := range h.header {
		switch key {
		case "Host":
			hosts = len(vv)
		case "Transfer-Encoding":
			encodings = len(vv)
		case "Content-Length":
			for _, v := range vv {
				l, ok := contentLengthValue(v)
				if !ok || (lengths != "" && l != lengths) {
					return h, false
				}
				lengths = l
			}
		}
	}

	if hosts > 1 || (hosts == 0 && h.minor == 1) {
		return h, false
	}
	if hosts == 1 {
		h.host = h.header["Host"][0]
		if !httpguts.ValidHostHeader(h.host) {
			return h, false
		}
		delete(h.header, "Host")
	}
	if encodings > 0 {
		if encodings > 1 || h.minor == 0 || !strings.EqualFold(h.header["Transfer-Encoding"][0], "chunked") {
			return h, false
		}
		h.chunked, h.contentLength = true, -1
		if lengths != "" {
			delete(h.header, "Content-Length")
			h.close = true
		}
	} else if lengths != "" {
		n, err := strconv.ParseInt(lengths, 10, 64)
		if err != nil {
			return h, false
		}
		h.contentLength = n
		if len(h.header["Content-Length"]) > 1 {
			h.header["Content-Length"] = h.header["Content-Length"][:1]
		}
		h.header["Content-Length"][0] = lengths
	}
	for _, v := range h.header["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			switch tok = strings.TrimSpace(tok); {
			case strings.EqualFold(tok, "close"):
				h.close = true
			case strings.EqualFold(tok, "keep-alive"):
				h.keepAlive10 = h.minor == 0
			}
		}
	}
	if h.minor == 0 && !h.keepAlive10 {
		h.close = true
	}
	if h.minor == 1 {
		for _, v := range h.header["Expect"] {
			if strings.EqualFold(strings.TrimSpace(v), "100-continue") {
				h.expectContinue = true
			}
		}
	}
	return h, true
}

// cutLine returns the first line of s without its line end, and the rest.
// A CR anywhere but before the LF makes the line invalid (ok false).
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return "", "", false
	}
	line, rest = s[:i], s[i+1:]
	line = strings.TrimSuffix(line, "\r")
	return line, rest, strings.IndexByte(line, '\r') < 0
}

// contentLengthValue returns the value of one Content-Length line: digits,
// or a comma-separated list of the same digits, which HAProxy merges.
func contentLengthValue(v string) (string, bool) {
	first := ""
	for _, part := range strings.Split(v, ",") {
		part = strings.Trim(part, " \t")
		if part == "" || strings.TrimLeft(part, "0123456789") != "" {
			return "", false
		}
		if first != "" && part != first {
			return "", false
		}
		first = part
	}
	return first, true
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// validTarget reports whether a request target has no control bytes or
// spaces.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// validValue reports whether a header value has no control bytes but
// horizontal tabs.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// requestURL parses a request target as net/http's server does (a URL
// for "*" only with OPTIONS), into u when it can.
func requestURL(method, target string, u *url.URL) (*url.URL, bool) {
	if target == "*" {
		if method != http.MethodOptions {
			return nil, false
		}
		*u = url.URL{Path: "*"}
		return u, true
	}
	if path, query, hasQuery := strings.Cut(target, "?"); plainPath(path) {
		// What url.ParseRequestURI makes of it, without its allocation.
		*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
		return u, true
	}
	parsed, err := url.ParseRequestURI(target)
	return parsed, err == nil
}

// plainPath reports whether p is an origin-form path that URL parsing
// leaves as it is: no escapes, and no byte the URL would escape again.
func plainPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !pathByte[p[i]] {
			return false
		}
	}
	return true
}

// pathByte says which bytes a path may hold unescaped for plainPath.
var pathByte = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~$&+,/:;=@") {
		t[c] = true
	}
	return t
}()
