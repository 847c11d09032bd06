package frontdoor

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tether/balancer"
)

// TestUnfinishedHeadersMemory opens 300 connections that each send 1 MB of
// request header without ever ending it, and logs the process's peak RSS
// growth. The frontdoor server refuses each head at the header limit, so
// the growth stays small; TETHER_MEMORY_BASELINE=1 also measures a plain
// net/http server for comparison (about 1.2 GB).
//
//	go test -run TestUnfinishedHeadersMemory -v ./balancer/frontdoor/
func TestUnfinishedHeadersMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 300 MB over loopback")
	}
	const clients, headerBytes = 300, 1 << 20
	// tether serve collects garbage at GOGC=400; measure under the same.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	fe := balancer.Frontend{TimeoutClient: 30 * time.Second}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

	t.Run("frontdoor", func(t *testing.T) {
		srv := New(fe, balancer.Global{}, ok, slog.New(slog.DiscardHandler))
		growth := peakGrowth(t, clients, headerBytes, srv.Serve, srv.Close, false)
		t.Logf("frontdoor: %d clients x %d-byte unfinished header: peak RSS +%d MB", clients, headerBytes, growth>>20)
		if growth > 100<<20 {
			t.Errorf("peak RSS grew by %d MB, want under 100 MB", growth>>20)
		}
	})
	if os.Getenv("TETHER_MEMORY_BASELINE") != "1" {
		return
	}
	t.Run("plain net/http", func(t *testing.T) {
		srv := &http.Server{Handler: ok, ReadHeaderTimeout: fe.TimeoutClient, IdleTimeout: fe.TimeoutClient}
		growth := peakGrowth(t, clients, headerBytes, srv.Serve, srv.Close, true)
		t.Logf("plain net/http server: %d clients x %d-byte unfinished header: peak RSS +%d MB", clients, headerBytes, growth>>20)
	})
}

// peakGrowth serves on a loopback listener, runs the clients and returns
// the peak RSS growth over the RSS before they started. With held, the
// server is expected to keep reading every header, and the clients stay
// connected until it has read them all; otherwise each client waits for
// the server to answer and close.
func peakGrowth(t *testing.T, clients, headerBytes int, serve func(net.Listener) error, closeServer func() error, held bool) int64 {
	t.Helper()
	runtime.GC()
	base := rss(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: ln}
	served := make(chan error, 1)
	go func() { served <- serve(counted) }()

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v := rss(t); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	payload := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", headerBytes))
	var wg sync.WaitGroup
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Write(payload)
			if !held {
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				reply, _ := io.ReadAll(c)
				if !bytes.HasPrefix(reply, []byte("HTTP/1.1 400 ")) {
					t.Errorf("reply %q, want a 400", reply)
				}
			}
		}()
	}
	if held {
		deadline := time.Now().Add(60 * time.Second)
		for counted.read.Load() < int64(clients*headerBytes) {
			if time.Now().After(deadline) {
				t.Fatalf("the server read %d bytes of %d", counted.read.Load(), clients*headerBytes)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if v := rss(t); v > peak.Load() {
			peak.Store(v)
		}
	}
	for _, c := range conns {
		if held {
			c.Close()
		}
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	close(stopSampling)
	<-sampled
	closeServer()
	<-served
	return peak.Load() - base
}

// countingListener counts the bytes the server reads.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, read: &l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// rss returns the process's resident set size in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
