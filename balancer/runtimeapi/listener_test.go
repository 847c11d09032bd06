package runtimeapi

import (
	"context"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tether/balancer"
)

const testCfg = `
global
    stats timeout 10s

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

backend be
    balance roundrobin
    cookie SRV insert indirect nocache dynamic
    dynamic-cookie-key secret
    server s1 127.0.0.1:18081
    server s2 127.0.0.1:18082 cookie c2 weight 10

frontend fe
    bind 127.0.0.1:18080
    default_backend be
`

// listenTest starts a listener on a UNIX socket in a temp dir.
func listenTest(t *testing.T, sock balancer.StatsSocket, g balancer.Global) (*Listener, string) {
	t.Helper()
	b, _ := newTestBalancer(t, testCfg)
	d := NewDispatcher(b, DispatcherOptions{})
	if sock.Address == "" {
		sock.Address = filepath.Join(t.TempDir(), "s.sock")
	}
	l, err := Listen(context.Background(), sock, d, g)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, sock.Address
}

func dialUnix(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// readUntil reads from c until the output ends with suffix.
func readUntil(t *testing.T, c net.Conn, suffix string) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for !strings.HasSuffix(b.String(), suffix) {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			t.Fatalf("read until %q: got %q, %v", suffix, b.String(), err)
		}
	}
	return b.String()
}

func TestSocketFraming(t *testing.T) {
	_, path := listenTest(t, balancer.StatsSocket{Level: balancer.LevelAdmin}, balancer.Global{})
	tests := []struct {
		name, send, want string
	}{
		{"one command", "show cli level\n", "admin\n\n"},
		{"semicolons", "show cli level;get weight be/s2\n", "admin\n\n10 (initial 10)\n\n"},
		{"pipelined lines", "show cli level\nshow cli level\n", "admin\n\nadmin\n\n"},
		{"crlf", "show cli level\r\n", "admin\n\n"},
		{"prompt", "prompt\nshow cli level\nprompt\nshow cli level\n", "\n> admin\n\n> \nadmin\n\n"},
		{"quit", "prompt\nshow cli level\nquit\nshow cli level\n", "\n> admin\n\n> "},
		{"silent success", "set weight be/s1 1\n", "\n"},
		{"message without newline", "set weight be/s1 5x\n", "Trailing garbage in weight string\n"},
		{"severity number", "set severity-output number;get weight be/zz;show cli level\n", "\n[3]: No such server.\n\n[6]: admin\n\n"},
		{"severity string", "set severity-output string;get weight be/zz\n", "\n[err]: No such server.\n\n"},
		{"lower level", "user;show cli level;set weight be/s1 1\n", "\nuser\n\nPermission denied\n\n"},
		{"payload", "show cli level <<\nignored line\n\n", "admin\n\n"},
		{"too long", strings.Repeat("x", maxCommandBytes) + "\n", ""},
		{"unterminated", "show cli level", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawExec(t, path, tt.send); got != tt.want {
				t.Errorf("reply = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSocketLevelAndSeverityOption(t *testing.T) {
	_, path := listenTest(t, balancer.StatsSocket{Level: balancer.LevelUser, SeverityOutput: "number"}, balancer.Global{})
	got := rawExec(t, path, "show cli level;operator;set server be/s1 state drain\n")
	want := "[6]: user\n\n[3]: Permission denied\n\n[3]: Permission denied\n\n"
	if got != want {
		t.Fatalf("reply = %q, want %q", got, want)
	}
	_, path = listenTest(t, balancer.StatsSocket{}, balancer.Global{})
	if got := rawExec(t, path, "show cli level\n"); got != "operator\n\n" {
		t.Fatalf("default level: %q, want operator", got)
	}
}

// TestIdleClientDropped checks that a client that says nothing is dropped
// at the stats timeout and gives its slot back: with stats maxconn 1, a
// second client is served once the first has been dropped.
func TestIdleClientDropped(t *testing.T) {
	const timeout = 300 * time.Millisecond
	_, path := listenTest(t, balancer.StatsSocket{}, balancer.Global{StatsTimeout: timeout, StatsMaxConn: 1})
	idle := dialUnix(t, path)
	start := time.Now()
	// The second client is queued behind the idle one.
	got := rawExec(t, path, "show cli level\n")
	if got != "operator\n\n" {
		t.Fatalf("queued client got %q", got)
	}
	if waited := time.Since(start); waited < timeout/2 {
		t.Fatalf("queued client served after %v, before the idle one timed out", waited)
	}
	n, err := idle.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("idle client: read %d bytes, err %v; want the connection closed", n, err)
	}
}

// TestMaxConnQueues checks that extra clients wait, as with HAProxy's
// stats maxconn, and are served when a slot frees.
func TestMaxConnQueues(t *testing.T) {
	_, path := listenTest(t, balancer.StatsSocket{}, balancer.Global{StatsMaxConn: 1})
	first := dialUnix(t, path)
	if _, err := io.WriteString(first, "prompt\n"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, first, "\n> ")
	done := make(chan string, 1)
	go func() {
		c, err := net.Dial("unix", path)
		if err != nil {
			done <- err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "show cli level\n")
		out, _ := io.ReadAll(c)
		done <- string(out)
	}()
	select {
	case got := <-done:
		t.Fatalf("second client served while the only slot was taken: %q", got)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := io.WriteString(first, "quit\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got != "operator\n\n" {
			t.Fatalf("second client got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second client not served after the first quit")
	}
}

func TestUnixSocketFile(t *testing.T) {
	dir := t.TempDir()
	b, _ := newTestBalancer(t, testCfg)
	d := NewDispatcher(b, DispatcherOptions{})
	ctx := context.Background()

	// A regular file is never replaced.
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(ctx, balancer.StatsSocket{Address: file}, d, balancer.Global{}); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if data, _ := os.ReadFile(file); string(data) != "keep" {
		t.Fatalf("regular file changed: %q", data)
	}

	// A socket in use is refused; a stale one is replaced.
	path := filepath.Join(dir, "s.sock")
	l1, err := Listen(ctx, balancer.StatsSocket{Address: path, Mode: 0o660}, d, balancer.Global{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("socket mode = %v, %v; want socket 0660", fi.Mode(), err)
	}
	if _, err := Listen(ctx, balancer.StatsSocket{Address: path}, d, balancer.Global{}); err == nil {
		t.Fatal("Listen took over a socket in use")
	}
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l2, err := Listen(ctx, balancer.StatsSocket{Address: path}, d, balancer.Global{})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer l2.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("default mode = %v, want 0600", fi.Mode().Perm())
	}
	if got := rawExec(t, path, "show cli level\n"); got != "operator\n\n" {
		t.Fatalf("reply %q", got)
	}
}

func TestTCPListenerAndClient(t *testing.T) {
	l, _ := listenTest(t, balancer.StatsSocket{Address: "ipv4@127.0.0.1:0", Level: balancer.LevelAdmin}, balancer.Global{})
	ctx := context.Background()
	c, err := Dial(ctx, "ipv4@"+l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Exec(ctx, "set severity-output number;get weight be/zz;get weight be/s2")
	if err != nil {
		t.Fatal(err)
	}
	if want := "\n[3]: No such server.\n\n10 (initial 10)\n\n"; got != want {
		t.Fatalf("Exec = %q, want %q", got, want)
	}
	text, failed := SplitSeverity(got)
	if !failed || text != "\nNo such server.\n\n10 (initial 10)\n\n" {
		t.Fatalf("SplitSeverity = %q, %v", text, failed)
	}
	if _, err := Dial(ctx, "ipv4@127.0.0.1:1"); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
}

// TestCloseStopsConnections checks that Close ends open sessions.
func TestCloseStopsConnections(t *testing.T) {
	l, path := listenTest(t, balancer.StatsSocket{}, balancer.Global{})
	c := dialUnix(t, path)
	if _, err := io.WriteString(c, "prompt\n"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "\n> ")
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a client was connected")
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("client still connected after Close: %d, %v", n, err)
	}
}
