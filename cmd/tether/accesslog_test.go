package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// syncWriter is a strings.Builder safe for concurrent writers.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestServeWritesAccessLogToStdout runs "tether serve" on a file with
// "log stdout format raw local0" and "option httplog" and checks that each
// request leaves one HAProxy-style line on standard output, written by the
// time serve returns.
func TestServeWritesAccessLogToStdout(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(origin.Close)
	dir := t.TempDir()
	f := fixture{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), db: filepath.Join(dir, "tether.db"), sock: filepath.Join(dir, "admin.sock"), frontend: freeAddr(t)}
	cfg := fmt.Sprintf("global\n    stats socket %s mode 600 level admin\n    log stdout format raw local0\n\n"+
		"defaults\n    mode http\n    log global\n    option httplog\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n"+
		"frontend web\n    bind %s\n    default_backend app\n\nbackend app\n    cookie SRV insert indirect nocache\n    server s1 %s cookie one\n",
		f.sock, f.frontend, origin.Listener.Addr())
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncWriter
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-f", f.cfg, "-db", f.db, "-console", ""}, func(string) string { return "" }, nil, &stdout, &stderr)
	}()
	waitSocket(t, f.sock, done)

	for _, cookie := range []string{"", "SRV=one"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+f.frontend+"/page?x=1", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	// The timers are milliseconds of this machine's load: only their
	// layout is checked.
	want := []*regexp.Regexp{
		regexp.MustCompile(`^127\.0\.0\.1:\d+ \[[^]]+\] web app/s1 \d+/\d+/\d+/\d+/\d+ 200 \d+ - - --NI \d+/\d+/0/0/0 0/0 "GET /page\?x=1 HTTP/1\.1"$`),
		regexp.MustCompile(`^127\.0\.0\.1:\d+ \[[^]]+\] web app/s1 \d+/\d+/\d+/\d+/\d+ 200 \d+ - - --VN \d+/\d+/0/0/0 0/0 "GET /page\?x=1 HTTP/1\.1"$`),
	}
	var lines []string
	for l := range strings.Lines(stdout.String()) {
		if strings.HasPrefix(l, "127.0.0.1:") {
			lines = append(lines, strings.TrimSuffix(l, "\n"))
		}
	}
	if len(lines) != len(want) {
		t.Fatalf("access-log lines on stdout:\n%s\nwant %d", stdout.String(), len(want))
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d = %s, want it to match %s", i+1, lines[i], re)
		}
	}
}
