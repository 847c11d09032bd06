package balancer

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestHugeResponseHeadersBounded has an origin send an endless header
// block (up to 256 MB): the balancer must answer 502 after reading no more
// than its header limit, and its memory must not grow with the block. It
// logs the bytes allocated and the peak RSS.
func TestHugeResponseHeadersBounded(t *testing.T) {
	const total = 256 << 20
	line := "X-Filler: " + strings.Repeat("f", 1000) + "\r\n"
	sent := make(chan int, 1)
	o := startRawOrigin(t, func(c *rawConn, req *http.Request) bool {
		n := 0
		c.bw.WriteString("HTTP/1.1 200 OK\r\n")
		for n < total {
			if _, err := c.bw.WriteString(line); err != nil {
				break
			}
			n += len(line)
		}
		c.bw.Flush()
		sent <- n
		return false
	})
	h := newHarness(t, rawBackend(o), nil)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := peakRSS()

	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	c.Write([]byte("GET /huge HTTP/1.1\r\nHost: t\r\n\r\n"))
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read status: %v", err)
	}
	n := <-sent

	runtime.ReadMemStats(&after)
	rssAfter := peakRSS()
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("origin sent %d MB of headers; status %q; allocated %.1f MB; heap in use %.1f -> %.1f MB; peak RSS %d -> %d MB",
		n>>20, strings.TrimSpace(status), float64(allocated)/(1<<20), float64(before.HeapInuse)/(1<<20), float64(after.HeapInuse)/(1<<20), rssBefore>>10, rssAfter>>10)
	if !strings.HasPrefix(status, "HTTP/1.1 502 ") {
		t.Fatalf("status %q, want 502", status)
	}
	if allocated > 16<<20 {
		t.Fatalf("allocated %d MB while rejecting the header block", allocated>>20)
	}
}

// peakRSS returns the process's peak resident set size in KB (VmHWM), or 0
// where /proc does not tell.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			for _, ch := range strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")) {
				kb = kb*10 + int64(ch-'0')
			}
			return kb
		}
	}
	return 0
}
