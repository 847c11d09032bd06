package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

	"tether/balancer/connlimit"
	"tether/balancer/e2etest"
	"tether/balancer/runtimeapi"
)

// TestFloodUnderFDLimit runs the real binary with 256 file descriptors and
// floods its frontend with more clients than the descriptors allow: first
// idle connections, then requests held open by a slow origin, so that each
// accepted client also holds a server connection. The global maxconn
// derived from the limit keeps descriptors free: exactly maxconn clients
// are accepted, the Runtime API answers `show info` throughout, its socket
// file stays, nothing runs out of descriptors, and every held request is
// served once the origin answers.
func TestFloodUnderFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	const fdLimit, flood, held = 256, 400, 200
	prlimit := e2etest.RequireProgram(t, "prlimit")
	bin := tetherBinary(t)
	var (
		inflight, maxInflight atomic.Int64
		release               = make(chan struct{})
	)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for m := maxInflight.Load(); n > m && !maxInflight.CompareAndSwap(m, n); m = maxInflight.Load() {
			}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "s1")
	}))
	t.Cleanup(origin.Close)
	dir := t.TempDir()
	f := fixture{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), db: filepath.Join(dir, "tether.db"), sock: filepath.Join(dir, "admin.sock"), frontend: freeAddr(t)}
	cfg := fmt.Sprintf("global\n    stats socket %s mode 600 level admin\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\n"+
		"frontend fe\n    bind %s\n    default_backend be\n\nbackend be\n    server s1 %s\n", f.sock, f.frontend, origin.Listener.Addr())
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs e2etest.Buffer
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

	// One frontend bind and one stats socket with room for its 10
	// clients, console off.
	plan, err := connlimit.PlanMaxConn(0, fdLimit, connlimit.Sockets{Listeners: 2, Pollers: 1, AdminClients: 10})
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
	// Requests held by the slow origin: each accepted client holds two
	// descriptors, and the ones beyond maxconn wait in the backlog.
	replies := make(chan error, held)
	for range held {
		c, err := net.DialTimeout("tcp", f.frontend, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: flood\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		go func() {
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				replies <- err
				return
			}
			body, err := io.ReadAll(resp.Body)
			if err == nil && (resp.StatusCode != http.StatusOK || string(body) != "s1") {
				err = fmt.Errorf("status %d, body %q", resp.StatusCode, body)
			}
			replies <- err
		}()
	}
	for deadline := time.Now().Add(20 * time.Second); inflight.Load() < int64(plan.MaxConn); time.Sleep(20 * time.Millisecond) {
		showInfo(fmt.Sprintf("while %d requests reach the origin", inflight.Load()))
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests reached the origin, want maxconn %d\n%s", inflight.Load(), plan.MaxConn, logs.String())
		}
	}
	for i := range 5 {
		if n := currConns(showInfo(fmt.Sprintf("with maxconn requests held (round %d)", i))); n != plan.MaxConn {
			t.Fatalf("CurrConns %d with every slot held, want %d", n, plan.MaxConn)
		}
	}
	// Every Runtime API client the stats socket admits still gets a
	// descriptor: interactive sessions stay open together.
	admins := make([]net.Conn, runtimeapi.DefaultStatsMaxConn)
	for i := range admins {
		c, err := net.DialTimeout("unix", f.sock, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "prompt\n"); err != nil {
			t.Fatal(err)
		}
		admins[i] = c
	}
	for i, c := range admins {
		if out, err := readUntil(c, "> "); err != nil {
			t.Fatalf("admin client %d of %d with maxconn requests held: %q, %v\n%s", i+1, len(admins), out, err, logs.String())
		}
	}
	for i, c := range admins {
		if _, err := io.WriteString(c, "show info\n"); err != nil {
			t.Fatal(err)
		}
		if out, err := readUntil(c, "\n> "); err != nil || !strings.Contains(out, "Name: ") {
			t.Fatalf("admin client %d: show info = %q, %v", i+1, out, err)
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)); err == nil {
		t.Logf("%d admin sessions open, %d requests held, %d at the origin, tether holds %d descriptors of %d", len(admins), held, inflight.Load(), len(fds), fdLimit)
	}
	for _, c := range admins {
		c.Close()
	}
	close(release)
	for i := range held {
		select {
		case err := <-replies:
			if err != nil {
				t.Fatalf("held request %d: %v\n%s", i, err, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d held requests answered", i, held)
		}
	}
	if m := maxInflight.Load(); m > int64(plan.MaxConn) {
		t.Errorf("%d requests at the origin at once, above maxconn %d", m, plan.MaxConn)
	}
	showInfo("after the held requests")

	if out := logs.String(); strings.Contains(out, "too many open files") {
		t.Errorf("tether ran out of descriptors despite maxconn:\n%s", out)
	}
}

// readUntil reads from c until what it read ends with suffix.
func readUntil(c net.Conn, suffix string) (string, error) {
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.HasSuffix(b.String(), suffix) {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), err
		}
	}
	return b.String(), nil
}
