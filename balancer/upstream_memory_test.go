package balancer

import (
	"net"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"sync"
	"testing"
)

// TestIdleServerConnectionsHoldLittleMemory opens 500 server connections
// at once (the origin answers only once every request arrived) and
// measures the heap their closing frees once they are idle in the pool:
// a socket and its bookkeeping, no buffer (26.6 kB each when the 16 kB
// read and 8 kB write buffers stayed with the connection).
func TestIdleServerConnectionsHoldLittleMemory(t *testing.T) {
	const n = 500
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveHeldBack(ln, &arrived, release)
	ap := netip.MustParseAddrPort(ln.Addr().String())
	be := Backend{Name: "servers", Servers: []Server{{Name: "s1", Address: ap.Addr().String(), Port: int(ap.Port()), PortSet: true, Weight: 1}}}
	bal, err := New(Config{Frontends: []Frontend{{Name: "fe", DefaultBackend: "servers"}}, Backends: []Backend{be}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()
	h, _ := bal.Handler("fe")
	var done sync.WaitGroup
	for range n {
		done.Add(1)
		go func() {
			defer done.Done()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			if w.Code != 200 {
				t.Errorf("status %d", w.Code)
			}
		}()
	}
	arrived.Wait()
	close(release)
	done.Wait()

	pool := bal.tab.Load().byName["servers"].servers.chunks[0][0].live.pool.Load()
	if len(pool.idle) != n {
		t.Fatalf("%d idle server connections, want %d", len(pool.idle), n)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := ms.HeapInuse
	pool.closeIdle()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	each := (float64(held) - float64(ms.HeapInuse)) / n
	t.Logf("an idle server connection holds %.1f kB of heap", each/1e3)
	if each > 8e3 {
		t.Errorf("an idle server connection holds %.1f kB of heap, want no buffer (under 8 kB)", each/1e3)
	}
}

// serveHeldBack answers each connection's requests with a 5-byte
// response, the first ones only once arrived is done and release closed.
// It keeps a 256-byte buffer per connection and no more: the test counts
// what closing the balancer's connections frees, the origin's side
// included.
func serveHeldBack(ln net.Listener, arrived *sync.WaitGroup, release chan struct{}) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 256)
			for first := true; ; first = false {
				if n, err := c.Read(buf); err != nil || n == 0 {
					return
				}
				if first {
					arrived.Done()
					<-release
				}
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
			}
		}()
	}
}
