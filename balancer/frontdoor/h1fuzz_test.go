package frontdoor

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"tether/balancer"
)

// FuzzConnectionLoop sends arbitrary bytes on a connection and half-closes
// it: the server must answer with well-formed responses only (or none),
// end the connection, and go on serving others.
func FuzzConnectionLoop(f *testing.F) {
	for _, c := range smugglingCases {
		f.Add(c.request)
	}
	for _, c := range requestLineCases {
		f.Add(c.request)
	}
	f.Add("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n")
	f.Add("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /abort HTTP/1.1\r\nHost: a\r\n\r\n")
	addr := serveFront(f, balancer.Frontend{TimeoutClient: 2 * time.Second, TimeoutHTTPKeepAlive: 100 * time.Millisecond}, balancer.Global{}, http.HandlerFunc(echoHandler))
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			io.WriteString(c, raw)
			c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		if err != nil && !isReset(err) {
			t.Fatalf("the connection did not end: %v (read %q)", err, out)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for {
			if _, err := br.Peek(1); err != nil {
				break
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("malformed response in %q: %v", out, err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil && resp.Request == nil {
				// A body cut short is how an aborted response ends.
				break
			}
		}
		// The server still serves a well-formed request.
		if got := exchange(t, addr, "GET /canary HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !bytes.Contains(got, []byte("GET /canary")) {
			t.Fatalf("canary got %q after %q", got, raw)
		}
	})
}
