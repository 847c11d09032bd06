package balancer

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func parseRaw(raw, method string) (upstreamResponse, http.Header, string, error) {
	c := &upConn{br: bufio.NewReader(strings.NewReader(raw))}
	h := http.Header{}
	resp, err := readUpstreamResponse(c, method, false, Global{}.HeaderLimit(), h, nil)
	if err != nil {
		return resp, h, "", err
	}
	body, err := io.ReadAll(resp.body)
	if err != nil {
		return resp, h, string(body), err
	}
	// What follows the response must be untouched.
	rest, _ := io.ReadAll(c.br)
	return resp, h, string(body) + "|" + string(rest), nil
}

func TestReadUpstreamResponse(t *testing.T) {
	tests := []struct {
		name, raw, method string
		status            int
		length            int64
		close             bool
		body              string
		headers           string // "Key=v1,v2;Key2=v"
		wantErr           bool
	}{
		{name: "content length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhelloNEXT", method: "GET",
			status: 200, length: 5, body: "hello|NEXT", headers: "Content-Length=5;X-A=1,2"},
		{name: "chunked with trailer", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\nNEXT", method: "GET",
			status: 200, length: -1, body: "abcde|NEXT"},
		{name: "interim 100 skipped", raw: "HTTP/1.1 100 Continue\r\nX-I: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", method: "POST",
			status: 201, length: 0, body: "|", headers: "Content-Length=0"},
		{name: "HEAD has no body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nNEXT", method: "HEAD",
			status: 200, length: 10, body: "|NEXT", headers: "Content-Length=10"},
		{name: "304 has no body", raw: "HTTP/1.1 304 Not Modified\r\nEtag: x\r\n\r\nNEXT", method: "GET",
			status: 304, length: 0, body: "|NEXT", headers: "Etag=x"},
		{name: "until close", raw: "HTTP/1.1 200 OK\r\n\r\nall of it", method: "GET",
			status: 200, length: -1, close: true, body: "all of it|"},
		{name: "connection close and hop headers dropped", raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: x\r\nContent-Length: 1\r\n\r\nz", method: "GET",
			status: 200, length: 1, close: true, body: "z|", headers: "Content-Length=1"},
		{name: "HTTP/1.0 closes unless keep-alive", raw: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz", method: "GET",
			status: 200, length: 1, close: true, body: "z|", headers: "Content-Length=1"},
		{name: "HTTP/1.0 keep-alive", raw: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nz", method: "GET",
			status: 200, length: 1, body: "z|", headers: "Content-Length=1"},
		{name: "folded header", raw: "HTTP/1.1 200 OK\r\nX-F: a\r\n b\r\nContent-Length: 0\r\n\r\n", method: "GET",
			status: 200, length: 0, body: "|", headers: "Content-Length=0;X-F=a b"},
		{name: "transfer-encoding beats content-length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n", method: "GET",
			status: 200, length: -1, body: "q|"},
		{name: "conflicting lengths", raw: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", method: "GET", wantErr: true},
		{name: "bad status", raw: "HTTP/1.1 20x OK\r\n\r\n", method: "GET", wantErr: true},
		{name: "not http", raw: "SSH-2.0-x\r\n\r\n", method: "GET", wantErr: true},
		{name: "bad header name", raw: "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", method: "GET", wantErr: true},
		{name: "truncated body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", method: "GET", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, h, body, err := parseRaw(tt.raw, tt.method)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; status %d body %q", resp.status, body)
				}
				if len(h) != 0 && !strings.Contains(tt.name, "truncated") {
					t.Fatalf("headers left after an error: %v", h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != tt.status || resp.contentLength != tt.length || resp.close != tt.close || body != tt.body {
				t.Fatalf("got status %d length %d close %v body %q", resp.status, resp.contentLength, resp.close, body)
			}
			if got := headerString(h); got != tt.headers {
				t.Fatalf("headers %q, want %q", got, tt.headers)
			}
		})
	}
}

func headerString(h http.Header) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		parts = append(parts, k+"="+strings.Join(h[k], ","))
	}
	return strings.Join(parts, ";")
}

func FuzzReadUpstreamResponse(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "GET")
	f.Add("HTTP/1.0 100 x\r\n\r\nHTTP/1.1 204 x\r\n x\r\n\r\n", "HEAD")
	f.Fuzz(func(t *testing.T, raw, method string) {
		resp, h, _, err := parseRaw(raw, method)
		if err == nil && (resp.status < 200 || resp.status > 999) {
			t.Fatalf("accepted status %d", resp.status)
		}
		for k := range h {
			if isHopHeader(k) {
				t.Fatalf("hop-by-hop header %q forwarded", k)
			}
		}
	})
}

// TestResponseHeadReadWholeOrInParts checks that a head found whole in the
// read buffer (its values cut from one string) parses as one that comes a
// byte at a time, and as one whose values go into a slice the writer lends.
func TestResponseHeadReadWholeOrInParts(t *testing.T) {
	raws := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\nx-unusual-name: v\r\n\r\nhi",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\nX-Folded: a\n  b\nContent-Length: 0\n\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length:   3  \r\nX-Empty:\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n1\r\nx\r\n0\r\n\r\n",
	}
	// A writer's lent values slice, reused from one response to the next
	// as the front door reuses it.
	var lent []string
	for _, raw := range raws {
		whole := &upConn{br: bufio.NewReader(strings.NewReader(raw))}
		parts := &upConn{br: bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(raw)), 16)}
		intoLent := &upConn{br: bufio.NewReader(strings.NewReader(raw))}
		var got [3]string
		for i, c := range []*upConn{whole, parts, intoLent} {
			h := http.Header{}
			var vals *[]string
			if c == intoLent {
				clear(lent)
				lent = lent[:0]
				vals = &lent
			}
			resp, err := readUpstreamResponse(c, http.MethodGet, false, Global{}.HeaderLimit(), h, vals)
			got[i] = fmt.Sprint(resp.status, resp.reason, resp.contentLength, resp.close, err, h, c.order)
		}
		if got[0] != got[1] || got[0] != got[2] {
			t.Errorf("%q:\nwhole    %s\nin parts %s\nlent     %s", raw, got[0], got[1], got[2])
		}
	}
}
