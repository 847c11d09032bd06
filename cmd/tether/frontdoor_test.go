package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// HAProxy 2.6's error replies, as it writes them.
const (
	haproxy400 = "HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n" +
		"<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n"
	haproxy408 = "HTTP/1.1 408 Request Time-out\r\nContent-length: 110\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n" +
		"<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n"
)

// TestServeFrontendRefusesHostileClients runs "tether serve" and checks
// that its frontend answers hostile clients as HAProxy does: 408 when the
// request head is late (timeout http-request defaults to timeout client),
// 400 for a head beyond tune.bufsize minus tune.maxrewrite, a close after
// a request framed by both Content-Length and chunked, and OPTIONS *
// forwarded to the origin.
func TestServeFrontendRefusesHostileClients(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %q", r.Method, r.RequestURI, body))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	origin.Config.DisableGeneralOptionsHandler = true
	origin.Start()
	t.Cleanup(origin.Close)
	originSaw := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := seen
		seen = nil
		return out
	}

	dir := t.TempDir()
	f := fixture{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), db: filepath.Join(dir, "tether.db"), sock: filepath.Join(dir, "admin.sock"), frontend: freeAddr(t)}
	cfg := fmt.Sprintf("global\n    stats socket %s mode 600 level admin\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 300ms\n    timeout server 5s\n\n"+
		"frontend fe\n    bind %s\n    default_backend be\n\nbackend be\n    server s1 %s\n", f.sock, f.frontend, origin.Listener.Addr())
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := f.serve(t)
	defer stop()

	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	const head = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n"
	tooLarge := strings.Replace(head, "X-Pad: ", "X-Pad: "+strings.Repeat("p", 15361-len(head)), 1)
	tests := []struct {
		name      string
		sends     string
		wantReply string // exact reply, or its prefix when wantOrigin is set
		wantSeen  []string
	}{
		{"nothing sent", "", haproxy408, nil},
		{"header block beyond 15360 bytes", tooLarge, haproxy400, nil},
		{"content-length and chunked", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
			"HTTP/1.1 200 OK\r\nConnection: close\r\n", []string{`POST /a ""`}},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\n", []string{`OPTIONS * ""`}},
		{"absolute form naming another host", "GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n", haproxy400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.frontend)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tt.sends)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var reply bytes.Buffer
			if _, err := io.Copy(&reply, c); err != nil && !strings.Contains(err.Error(), "connection reset") {
				t.Fatalf("read the reply: %v", err)
			}
			if tt.wantSeen == nil && reply.String() != tt.wantReply {
				t.Errorf("reply %q, want %q", reply.String(), tt.wantReply)
			}
			if tt.wantSeen != nil && (!strings.HasPrefix(reply.String(), tt.wantReply) || strings.Count(reply.String(), "HTTP/1.1 ") != 1) {
				t.Errorf("reply %q, want one response starting %q", reply.String(), tt.wantReply)
			}
			if got := originSaw(); fmt.Sprint(got) != fmt.Sprint(tt.wantSeen) {
				t.Errorf("origin saw %q, want %q", got, tt.wantSeen)
			}
		})
	}
}
