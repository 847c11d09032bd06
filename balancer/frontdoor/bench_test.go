package frontdoor

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"tether/balancer"
)

// BenchmarkKeepAliveRequest measures one request and its response on a
// kept-alive loopback connection through the connection loop, with a
// handler that answers a small body: the server's own cost per request
// (parsing, the request and writer, the write) plus loopback I/O.
func BenchmarkKeepAliveRequest(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := New(balancer.Frontend{}, balancer.Global{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		io.WriteString(w, "hello")
	}), nil)
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	req := []byte("GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nCookie: SERVER_USED=0123456789abcdef\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		// The client side reads raw bytes up to the body, so that the
		// allocations counted are the server's.
		n := 0
		for !bytes.HasSuffix(buf[:n], []byte("\r\n\r\nhello")) {
			m, err := c.Read(buf[n:])
			if err != nil {
				b.Fatal(err)
			}
			n += m
		}
	}
}
