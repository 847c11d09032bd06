package balancer

import "net/http"

// headerBytes is the size of h on the wire: "Name: value\r\n" per value.
func headerBytes(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// requestHeadBytes is the size of r's head as the client sent it: request
// line, Host and the other headers, blank line.
func requestHeadBytes(r *http.Request) int64 {
	n := int64(len(r.Method)+len(r.RequestURI)+len(r.Proto)+4) + headerBytes(r.Header) + 2
	if r.Host != "" {
		n += int64(len("Host: ") + len(r.Host) + 2)
	}
	return n
}

// responseHeadBytes is the size of a response head with status (three
// digits) and h: status line, headers, blank line. It does not allocate.
func responseHeadBytes(status int, h http.Header) int64 {
	return int64(len("HTTP/1.1 000 ")+len(http.StatusText(status))+2) + headerBytes(h) + 2
}
