package balancer

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

func TestHeadBytesMatchTheWire(t *testing.T) {
	requests := []string{
		"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"POST /a?b=c HTTP/1.1\r\nHost: x:8080\r\nContent-Length: 0\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
		"GET /old HTTP/1.0\r\n\r\n",
	}
	for _, raw := range requests {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatalf("read %q: %v", raw, err)
		}
		if got := requestHeadBytes(r); got != int64(len(raw)) {
			t.Errorf("requestHeadBytes(%q) = %d, want %d", raw, got, len(raw))
		}
	}
	responses := []struct {
		raw    string
		status int
		h      http.Header
	}{
		{"HTTP/1.1 200 OK\r\n\r\n", 200, http.Header{}},
		{"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n", 503,
			http.Header{"Content-Length": {"5"}, "Set-Cookie": {"a=1", "b=2"}}},
	}
	for _, tc := range responses {
		if got := responseHeadBytes(tc.status, tc.h); got != int64(len(tc.raw)) {
			t.Errorf("responseHeadBytes for %q = %d, want %d", tc.raw, got, len(tc.raw))
		}
	}
}
