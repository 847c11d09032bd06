package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestServeMemoryUnderHostilePeers runs the real binary and measures its
// resident memory while 300 clients each send 1 MB of a request header
// they never finish, then while a server answers with a 1 GB header
// block. Both are refused at tune.bufsize's limit (400, 502), so memory
// stays bounded; the test logs the process's RSS and its peak.
// TETHER_MEMORY_BINARY=PATH measures another build instead, an older one
// for comparison.
//
//	go test -run TestServeMemoryUnderHostilePeers -v ./cmd/tether/
func TestServeMemoryUnderHostilePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 300 MB over loopback")
	}
	const (
		clients, clientHeader = 300, 1 << 20
		serverHeader          = 1 << 30
		// maxGrowth is far below what either flood cost without limits
		// (about 1.2 GB each), and far above what the limits leave.
		maxGrowth = 200 << 20
	)
	origin, sent := startHugeHeaderOrigin(t, serverHeader)
	dir := t.TempDir()
	f := fixture{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), db: filepath.Join(dir, "tether.db"), sock: filepath.Join(dir, "admin.sock"), frontend: freeAddr(t)}
	cfg := fmt.Sprintf("global\n    stats socket %s mode 600 level admin\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\n"+
		"frontend fe\n    bind %s\n    default_backend be\n\nbackend be\n    server s1 %s\n", f.sock, f.frontend, origin)
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("TETHER_MEMORY_BINARY")
	if bin == "" {
		bin = tetherBinary(t)
	}
	cmd := exec.Command(bin, "serve", "-f", f.cfg, "-db", f.db, "-console", "")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitSocket(t, f.sock, done)
	pid := cmd.Process.Pid
	if status := rawRequest(t, f.frontend, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		t.Fatalf("warm-up request: %q", status)
	}
	start := procMemory(t, pid, "VmRSS")
	t.Logf("tether at rest: RSS %d MB", start>>20)

	t.Run("unfinished request headers", func(t *testing.T) {
		before := procMemory(t, pid, "VmRSS")
		peak := sampleRSS(t, pid, func() {
			head := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", clientHeader))
			var wg sync.WaitGroup
			for range clients {
				c, err := net.Dial("tcp", f.frontend)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.Write(head)
					c.SetReadDeadline(time.Now().Add(30 * time.Second))
					reply, _ := io.ReadAll(c)
					if !bytes.HasPrefix(reply, []byte("HTTP/1.1 400 ")) {
						t.Errorf("reply %.80q, want a 400", reply)
					}
				}()
			}
			wg.Wait()
		})
		t.Logf("%d clients x %d MB unfinished header: RSS %d MB before, peak %d MB (+%d MB over rest)", clients, clientHeader>>20, before>>20, peak>>20, (peak-start)>>20)
		if peak-start > maxGrowth {
			t.Errorf("RSS grew by %d MB, want under %d MB", (peak-start)>>20, maxGrowth>>20)
		}
	})
	t.Run("1 GB response header", func(t *testing.T) {
		var status string
		before := procMemory(t, pid, "VmRSS")
		peak := sampleRSS(t, pid, func() {
			status = rawRequest(t, f.frontend, "GET /huge HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		})
		n := <-sent
		t.Logf("server offered %d MB of header, sent %d KB before the close; client got %q; RSS %d MB before, peak %d MB (+%d MB over rest)", serverHeader>>20, n>>10, status, before>>20, peak>>20, (peak-start)>>20)
		if !strings.HasPrefix(status, "HTTP/1.1 502 ") {
			t.Errorf("status %q, want 502", status)
		}
		if peak-start > maxGrowth {
			t.Errorf("RSS grew by %d MB, want under %d MB", (peak-start)>>20, maxGrowth>>20)
		}
	})
	t.Logf("tether's peak RSS over the whole run (VmHWM): %d MB", procMemory(t, pid, "VmHWM")>>20)
}

// startHugeHeaderOrigin starts a server that answers /huge with a header
// block of size bytes, written until the proxy stops reading, and other
// paths with "ok". It reports how many bytes each /huge answer sent.
func startHugeHeaderOrigin(t *testing.T, size int) (string, <-chan int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan int, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	line := []byte("X-Filler: " + strings.Repeat("f", 1000) + "\r\n")
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.URL.Path != "/huge" {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
						continue
					}
					n, _ := io.WriteString(c, "HTTP/1.1 200 OK\r\n")
					for n < size {
						m, err := c.Write(line)
						n += m
						if err != nil {
							break
						}
					}
					sent <- n
					return
				}
			}()
		}
	}()
	return ln.Addr().String(), sent
}

// rawRequest sends request on a new connection and returns the status
// line of the answer.
func rawRequest(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(c, request)
	status, _ := bufio.NewReader(c).ReadString('\n')
	return status
}

// sampleRSS runs work while sampling the resident memory of process pid
// every 10 ms, and returns the largest value seen.
func sampleRSS(t *testing.T, pid int, work func()) int64 {
	t.Helper()
	var peak atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if v := procMemory(t, pid, "VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	work()
	close(stop)
	<-stopped
	if v := procMemory(t, pid, "VmRSS"); v > peak.Load() {
		peak.Store(v)
	}
	return peak.Load()
}

// procMemory returns a field of /proc/PID/status given in kB (VmRSS,
// VmHWM), in bytes.
func procMemory(t *testing.T, pid int, field string) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc/%d/status: %v", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Errorf("parse %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Errorf("no %s in /proc/%d/status", field, pid)
	return 0
}
