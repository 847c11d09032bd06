package balancer

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzHostileOrigin answers one request with arbitrary bytes, then sends
// requests from other users through the same balancer: whatever the origin
// sent, each of them must get its own response.
func FuzzHostileOrigin(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + smuggled,
		"HTTP/1.1 204 No Content\r\n\r\n" + smuggled,
		"HTTP/1.1 304 Not Modified\r\n\r\n" + smuggled,
		"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n" + smuggled,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggled,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n" + smuggled,
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n" + smuggled,
		"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok" + smuggled,
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n" + smuggled,
		smuggled + smuggled,
	} {
		f.Add([]byte(seed), false, true)
		f.Add([]byte(seed), true, true)
		f.Add([]byte(seed), false, false)
	}
	var answer atomic.Pointer[[]byte]
	var keepOpen atomic.Bool
	o := startRawOrigin(f, func(c *rawConn, req *http.Request) bool {
		if req.URL.Path == "/hostile" {
			c.send(string(*answer.Load()))
			return keepOpen.Load()
		}
		c.send(echoResponse(req))
		return true
	})
	be := rawBackend(o)
	be.TimeoutServer = 500 * time.Millisecond
	b, err := New(Config{Frontends: []Frontend{{Name: "fe", DefaultBackend: "b"}}, Backends: []Backend{be}}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(b.Close)
	hd, _ := b.Handler("fe")
	fe := httptest.NewServer(hd)
	f.Cleanup(fe.Close)

	f.Fuzz(func(t *testing.T, raw []byte, head, open bool) {
		if len(raw) > 4096 {
			return
		}
		answer.Store(&raw)
		keepOpen.Store(open)
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		// Warm the pool so the hostile answer lands on a pooled connection.
		checkCanaries(t, fe.URL, "warm", 1)
		fetch(fe.URL, method, "/hostile", "user=attacker", nil)
		checkCanaries(t, fe.URL, "after", 2)
	})
}
