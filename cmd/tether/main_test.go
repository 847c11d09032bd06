package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tether/balancer/runtimeapi"
	"tether/store"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// fixture is a config file over loopback origins, with its socket.
type fixture struct {
	dir, cfg, db, sock, frontend string
}

func newFixture(t *testing.T, servers int) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), db: filepath.Join(dir, "tether.db"), sock: filepath.Join(dir, "admin.sock"), frontend: freeAddr(t)}
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    stats socket %s mode 600 level admin\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout server 5s\n\n", f.sock)
	fmt.Fprintf(&b, "frontend fe\n    bind %s\n    default_backend be\n\nbackend be\n    cookie SRV insert indirect nocache dynamic\n    dynamic-cookie-key k1\n", f.frontend)
	for i := range servers {
		o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "s%d", i+1) }))
		t.Cleanup(o.Close)
		fmt.Fprintf(&b, "    server s%d %s\n", i+1, o.Listener.Addr())
	}
	if err := os.WriteFile(f.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// serve runs "tether serve" in-process until the returned stop is called.
func (f fixture) serve(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "-f", f.cfg, "-db", f.db, "-console", ""}, func(string) string { return "" }, nil, io.Discard, &out)
	}()
	waitSocket(t, f.sock, done)
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v\n%s", err, out.String())
		}
	}
}

// waitSocket waits for the Runtime API at sock to answer. done (buffered)
// receives serve's end: when serve ends first, its result is put back
// for the test's cleanup to find, and the test fails.
func waitSocket(t *testing.T, sock string, done chan error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			// Commands are answered once the starting state is stored.
			cl, err := runtimeapi.Dial(context.Background(), sock)
			if err == nil {
				_, err = cl.Exec(context.Background(), "show cli level")
			}
			if err != nil {
				t.Fatalf("the Runtime API socket does not answer: %v", err)
			}
			return
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the Runtime API socket never came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exec1(t *testing.T, sock, cmd string) string {
	t.Helper()
	c, err := runtimeapi.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Exec(context.Background(), cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

// stableState drops the time-since-last-change column of show servers state.
func stableState(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) > 9 && !strings.HasPrefix(l, "#") {
			f[9] = "-"
		}
		out = append(out, strings.Join(f, " "))
	}
	return strings.Join(out, "\n")
}

func TestRestartKeepsRuntimeChanges(t *testing.T) {
	f := newFixture(t, 3)
	stop := f.serve(t)
	for _, cmd := range []string{
		"set server be/s1 state drain",
		"set server be/s2 weight 42",
		"disable dynamic-cookie backend be",
		"set dynamic-cookie-key backend be rotated",
		"enable dynamic-cookie backend be",
		"add server be/s4 127.0.0.1:9",
		"set server be/s3 state maint",
	} {
		if reply := exec1(t, f.sock, cmd); strings.TrimSpace(reply) != "" && !strings.Contains(reply, "New server registered.") {
			t.Fatalf("%s: %q", cmd, reply)
		}
	}
	before := stableState(exec1(t, f.sock, "show servers state"))
	cookiesBefore := exec1(t, f.sock, "show stat")
	stop()

	stop = f.serve(t)
	defer stop()
	after := stableState(exec1(t, f.sock, "show servers state"))
	if before != after {
		t.Fatalf("show servers state changed across restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if a, b := cookieColumn(cookiesBefore), cookieColumn(exec1(t, f.sock, "show stat")); a != b || !strings.Contains(a, "s4=") {
		t.Fatalf("cookies changed across restart:\n%s\n%s", a, b)
	}
}

// cookieColumn returns "server=cookie" pairs from show stat.
func cookieColumn(stat string) string {
	lines := strings.Split(stat, "\n")
	cols := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	idx := -1
	for i, c := range cols {
		if c == "cookie" {
			idx = i
		}
	}
	var out []string
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if idx >= 0 && len(f) > idx && f[1] != "FRONTEND" && f[1] != "BACKEND" {
			out = append(out, f[1]+"="+f[idx])
		}
	}
	return strings.Join(out, " ")
}

func TestImportExportRoundTrip(t *testing.T) {
	f := newFixture(t, 2)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"import", "-f", f.cfg, "-db", f.db}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatalf("import: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "+ backend be") {
		t.Fatalf("import did not show the new backend:\n%s", out.String())
	}
	var exported bytes.Buffer
	if err := run(context.Background(), []string{"export", "-db", f.db}, func(string) string { return "" }, nil, &exported, io.Discard); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(f.dir, "exported.cfg")
	os.WriteFile(again, exported.Bytes(), 0o600)
	out.Reset()
	if err := run(context.Background(), []string{"import", "-n", "-f", again, "-db", f.db}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "no change\ndry run: nothing written" {
		t.Fatalf("re-importing the export changes things:\n%s\nexport:\n%s", out.String(), exported.String())
	}
	if bin, err := exec.LookPath("haproxy"); err == nil {
		if msg, err := exec.Command(bin, "-c", "-f", again).CombinedOutput(); err != nil {
			t.Fatalf("haproxy -c rejects the export: %v\n%s\n%s", err, msg, exported.String())
		}
	}
}

func TestBrokenConfigNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.cfg")
	os.WriteFile(cfg, []byte("defaults\n    mode http\n\nbackend servers\n    cookie SERVER_USED insert indirect nocache\n    server web1 check cookie web1\n"), 0o600)
	err := run(context.Background(), []string{"serve", "-f", cfg, "-db", filepath.Join(dir, "t.db"), "-console", "", "-socket", ""}, func(string) string { return "" }, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), cfg+":6") {
		t.Fatalf("error %v, want one naming %s:6", err, cfg)
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, "t.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, found, _ := st.LoadState(context.Background()); found {
		t.Fatal("a broken file was half-imported")
	}
}

func TestCookieCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"cookie", "-key", "dynckey", "127.0.0.1:29001", "[::1]:29003"}, nil, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1:29001 edd65e86ae0031ee\n[::1]:29003 8ec090577e7dc44f\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// TestCrashKeepsAcknowledgedChanges kills the real binary with SIGKILL
// while clients stream weight changes over the socket, then restarts it:
// every acknowledged change must be there, and the database intact.
func TestCrashKeepsAcknowledgedChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	bin := tetherBinary(t)
	const clients = 3
	f := newFixture(t, clients)
	// CI runs the full 100 rounds; a plain go test run a dozen.
	rounds := 12
	if os.Getenv("TETHER_E2E") == "require" {
		rounds = 100
	}
	var prev []int // weights acknowledged in the previous round
	for round := range rounds {
		cmd := exec.Command(bin, "serve", "-f", f.cfg, "-db", f.db, "-console", "")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		waitSocket(t, f.sock, done)

		// Check what the previous round acknowledged.
		checkWeights(t, f.sock, round, prev)
		acked := make([]int, clients)
		var wg sync.WaitGroup
		stopAt := time.Now().Add(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for w := 1; time.Now().Before(stopAt); w++ {
					cl, err := runtimeapi.Dial(context.Background(), f.sock)
					if err != nil {
						return
					}
					reply, err := cl.Exec(context.Background(), fmt.Sprintf("set server be/s%d weight %d", c+1, w%256))
					if err != nil || reply != "\n" {
						return
					}
					acked[c] = w % 256
				}
			}()
		}
		wg.Wait()
		cmd.Process.Kill()
		<-done
		prev = acked
	}
	stop := f.serve(t)
	defer stop()
	checkWeights(t, f.sock, rounds, prev)
	st, err := store.Open(context.Background(), f.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rounds of SIGKILL during streamed changes: every acknowledged change survived", rounds)
}

// checkWeights verifies that each server's weight is the last acknowledged
// one of the previous round, or the one in flight when the kill came.
func checkWeights(t *testing.T, sock string, round int, acked []int) {
	t.Helper()
	for c, w := range acked {
		if w == 0 {
			continue
		}
		reply := exec1(t, sock, fmt.Sprintf("get weight be/s%d", c+1))
		got, _ := strconv.Atoi(strings.Fields(reply)[0])
		if got != w && got != (w+1)%256 {
			t.Fatalf("round %d: server s%d has weight %d after the crash; the last acknowledged was %d", round, c+1, got, w)
		}
	}
}
