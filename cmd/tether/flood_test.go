package main

import (
	"context"
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
	"syscall"
	"testing"
	"time"

	"tether/balancer/connlimit"
	"tether/balancer/e2etest"
	"tether/balancer/runtimeapi"
)

// syncBuffer collects a child process's output for concurrent reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFloodUnderFDLimit runs the real binary with 256 file descriptors and
// floods its frontend with idle client connections, more than the
// descriptors allow. The global maxconn derived from the limit keeps
// descriptors free, so the Runtime API answers `show info` throughout, its
// socket file stays, nothing runs out of descriptors, and requests are
// served again once the flood ends.
func TestFloodUnderFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	const fdLimit, flood = 256, 400
	prlimit := e2etest.RequireProgram(t, "prlimit")
	bin := filepath.Join(t.TempDir(), "tether")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f := newFixture(t, 1)
	var logs syncBuffer
	cmd := exec.Command(prlimit, fmt.Sprintf("--nofile=%d:%d", fdLimit, fdLimit), bin, "serve", "-f", f.cfg, "-db", f.db, "-console", "")
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
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

	// One frontend bind and one stats socket, console off.
	plan, err := connlimit.PlanMaxConn(0, fdLimit, connlimit.Sockets{Listeners: 2, Pollers: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("global=%d derived_from_fd_limit=true ulimit_n=%d", plan.MaxConn, fdLimit)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("start-up log does not say %q:\n%s", want, logs.String())
		}
	}

	showInfo := func(when string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := runtimeapi.Dial(ctx, f.sock)
		if err != nil {
			t.Fatalf("%s: Runtime API unreachable: %v\n%s", when, err, logs.String())
		}
		out, err := c.Exec(ctx, "show info")
		if err != nil || !strings.Contains(out, "Name: ") {
			t.Fatalf("%s: show info = %q, %v\n%s", when, out, err, logs.String())
		}
		if _, err := os.Lstat(f.sock); err != nil {
			t.Fatalf("%s: socket file: %v", when, err)
		}
		if want := fmt.Sprintf("Maxconn: %d\n", plan.MaxConn); !strings.Contains(out, want) {
			t.Fatalf("%s: show info lacks %q:\n%s", when, want, out)
		}
		return out
	}
	currConns := func(info string) int {
		_, rest, _ := strings.Cut(info, "CurrConns: ")
		n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]))
		return n
	}

	// The flood: idle connections that send nothing. Those beyond maxconn
	// wait in the kernel's backlog; once that is full, dials time out.
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", f.frontend, 2*time.Second)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
		if i%50 == 0 {
			showInfo(fmt.Sprintf("after %d flood connections", i))
		}
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	if len(conns) <= plan.MaxConn {
		t.Fatalf("only %d flood connections established; the flood must exceed maxconn %d", len(conns), plan.MaxConn)
	}
	// Exactly maxconn of them are accepted, the rest wait.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := currConns(showInfo(fmt.Sprintf("during the flood (%d connections)", len(conns))))
		if n > plan.MaxConn {
			t.Fatalf("CurrConns %d above maxconn %d", n, plan.MaxConn)
		}
		if n == plan.MaxConn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CurrConns stays at %d during the flood, want maxconn %d", n, plan.MaxConn)
		}
	}
	// The server holds maxconn of them, and descriptors to spare.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
	if err == nil {
		t.Logf("%d flood connections established, maxconn %d, tether holds %d descriptors of %d", len(conns), plan.MaxConn, len(fds), fdLimit)
		if len(fds) < plan.MaxConn {
			t.Errorf("tether holds %d descriptors, fewer than maxconn %d: the flood was not accepted", len(fds), plan.MaxConn)
		}
	}

	for _, c := range conns {
		c.Close()
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + f.frontend + "/")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "s1" {
				break
			}
			err = fmt.Errorf("status %d, body %q", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no normal request served after the flood: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := currConns(showInfo("after the flood"))
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CurrConns stays at %d after the flood, want 0", n)
		}
	}
	if out := logs.String(); strings.Contains(out, "too many open files") {
		t.Errorf("tether ran out of descriptors despite maxconn:\n%s", out)
	}
}
