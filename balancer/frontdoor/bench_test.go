package frontdoor

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"tether/balancer"
)

// BenchmarkKeepAliveRequest measures one request and its response on a
// kept-alive loopback connection through the connection loop, with a
// handler that answers a small body: the server's own cost per request
// (parsing, the request and writer, the write) plus loopback I/O.
func BenchmarkKeepAliveRequest(b *testing.B) {
	c := dialServer(b, balancer.Frontend{}, balancer.Global{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		io.WriteString(w, "hello")
	}))
	req := []byte("GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nCookie: SERVER_USED=0123456789abcdef\r\n\r\n")
	askRepeatedly(b, c, req)
}

// dialServer serves h behind a server of fe until the benchmark ends and
// returns a connection to it.
func dialServer(b *testing.B, fe balancer.Frontend, g balancer.Global, h http.Handler) net.Conn {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := New(fe, g, h, nil)
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// askRepeatedly sends req on c and reads the answer, ending in "hello",
// b.N times. The client side reads raw bytes, so that the allocations
// counted are the server's. Besides time per request it reports the
// process's user and system CPU per request (user-ns/op, sys-ns/op);
// they include the benchmark's client and origin, the same for every
// build.
func askRepeatedly(b *testing.B, c net.Conn, req []byte) {
	buf := make([]byte, 4096)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
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

// BenchmarkProxiedRequest measures a whole proxied request with a valid
// persistence cookie on kept-alive loopback connections: the connection
// loop, the balancer (persistence, selection, the server connection pool)
// and a minimal origin that answers from a fixed buffer.
func BenchmarkProxiedRequest(b *testing.B) { benchmarkProxied(b, true) }

// BenchmarkFirstVisitRequest is BenchmarkProxiedRequest without the
// cookie: the server is chosen in turn and the response gets a
// Set-Cookie.
func BenchmarkFirstVisitRequest(b *testing.B) { benchmarkProxied(b, false) }

func benchmarkProxied(b *testing.B, withCookie bool) {
	origin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer origin.Close()
	go serveFixed(origin, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
	ap := netip.MustParseAddrPort(origin.Addr().String())
	cfg := balancer.Config{
		Frontends: []balancer.Frontend{{Name: "fe", DefaultBackend: "be"}},
		Backends: []balancer.Backend{{
			Name:             "be",
			Cookie:           &balancer.CookieConfig{Name: "SERVER_USED", Mode: balancer.CookieInsert, Indirect: true, NoCache: true, Dynamic: true},
			DynamicCookieKey: "k",
			Servers:          []balancer.Server{{Name: "s1", Address: ap.Addr().String(), Port: int(ap.Port()), PortSet: true, Weight: 1}},
		}},
	}
	bal, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer bal.Close()
	h, _ := bal.Handler("fe")
	c := dialServer(b, cfg.Frontends[0], cfg.Global, h)
	req := "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n"
	if withCookie {
		req += "Cookie: SERVER_USED=" + balancer.DynamicCookie("k", ap.Addr(), int32(ap.Port())) + "\r\n"
	}
	askRepeatedly(b, c, []byte(req+"\r\n"))
}

// serveFixed answers every request head on every connection of ln with
// answer, until ln is closed.
func serveFixed(ln net.Listener, answer string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 4096)
			n := 0
			for {
				m, err := c.Read(buf[n:])
				if err != nil {
					return
				}
				n += m
				for {
					i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
					if i < 0 {
						break
					}
					n = copy(buf, buf[i+4:n])
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}
		}()
	}
}
