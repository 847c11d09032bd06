package frontdoor

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/e2etest"
)

// startHAProxyFront runs haproxy with one frontend over a recording origin
// and returns the frontend's address.
func startHAProxyFront(t *testing.T, bin, timeouts string) (string, *recordingOrigin) {
	t.Helper()
	o := startOrigin(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("defaults\n    mode http\n    timeout connect 1s\n    timeout server 5s\n%s\n"+
		"frontend fe\n    bind %s\n    default_backend be\n\nbackend be\n    server s1 %s\n", timeouts, addr, o.srv.Listener.Addr())
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr, o
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s: %s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outcome is what one raw exchange came to: the statuses the client read
// and the requests the origin served.
func outcome(t *testing.T, addr string, o *recordingOrigin, request string) string {
	t.Helper()
	before := len(o.requests())
	var statuses []int
	for _, r := range parseReplies(t, exchange(t, addr, request)) {
		statuses = append(statuses, r.status)
	}
	return fmt.Sprintf("replies %v, origin %q", statuses, o.requests()[before:])
}

// TestHostileClientsMatchHAProxy sends every smuggling form and request
// line check to HAProxy and to Tether and compares the outcomes. Where
// Tether deliberately answers otherwise, the difference is named.
func TestHostileClientsMatchHAProxy(t *testing.T) {
	bin := e2etest.RequireProgram(t, "haproxy")
	hAddr, hOrigin := startHAProxyFront(t, bin, "    timeout client 5s\n    timeout http-keep-alive 200ms\n")
	tAddr, tOrigin := startFront(t, fastKeepAlive, balancer.Global{})

	// differs names the cases where Tether answers otherwise, and why.
	differs := map[string]string{
		"transfer-encoding identity, chunked": "HAProxy 2.6 answers 422; Tether refuses a coding other than chunked with 400",
		"HTTP/1.0 with transfer-encoding":     "HAProxy serves it as chunked and closes; Tether refuses its faulty framing with 400 (RFC 9112 6.1)",
		"malformed request line":              "HAProxy accepts a doubled space in the request line; net/http refuses it",
	}
	requests := map[string]string{}
	var names []string
	for _, c := range smugglingCases {
		requests[c.name] = c.request
		names = append(names, c.name)
	}
	for _, c := range requestLineCases {
		requests[c.name] = c.request
		names = append(names, c.name)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			want := outcome(t, hAddr, hOrigin, requests[name])
			got := outcome(t, tAddr, tOrigin, requests[name])
			why, known := differs[name]
			switch {
			case got != want && !known:
				t.Errorf("Tether: %s\nHAProxy: %s", got, want)
			case got == want && known:
				t.Errorf("listed as different (%s) but both give %s", why, got)
			case known:
				t.Logf("differs as intended (%s):\nTether: %s\nHAProxy: %s", why, got, want)
			}
		})
	}
}

// TestTimeoutsMatchHAProxy compares the exact bytes HAProxy and Tether
// send to a client that is late with its request head, idle between
// requests, or that closes its side.
func TestTimeoutsMatchHAProxy(t *testing.T) {
	bin := e2etest.RequireProgram(t, "haproxy")
	hAddr, _ := startHAProxyFront(t, bin, "    timeout client 5s\n    timeout http-request 300ms\n    timeout http-keep-alive 200ms\n")
	tAddr, _ := startFront(t, balancer.Frontend{TimeoutClient: 5 * time.Second, TimeoutHTTPRequest: 300 * time.Millisecond, TimeoutHTTPKeepAlive: 200 * time.Millisecond}, balancer.Global{})
	const get = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tt := range []struct {
		name, sends string
		halfClose   bool
	}{
		{"nothing sent", "", false},
		{"part of a request line", "GET /a HT", false},
		{"head without its blank line", "GET /a HTTP/1.1\r\nHost: a\r\n", false},
		{"idle after a response", get, false},
		{"a second request begun", get + "GET /b HTTP/1.1\r\n", false},
		{"nothing sent, half-closed", "", true},
		{"part of a head, half-closed", "GET /a HTTP/1.1\r\nHo", true},
		{"a request, half-closed", get, true},
		{"a request and part of the next, half-closed", get + "GET /b", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			send := exchange
			if tt.halfClose {
				send = exchangeHalfClosed
			}
			got := withoutDates(send(t, tAddr, tt.sends))
			// Header names' case and order differ on proxied responses;
			// compare what was said, not how it was spelled. With a
			// half-close, whether HAProxy parses the bytes before the FIN
			// depends on timing: it may answer either way, so Tether must
			// match one of a few of its answers.
			var want string
			for try := 0; try < 5; try++ {
				want = withoutDates(send(t, hAddr, tt.sends))
				if strings.EqualFold(sortedLines(got), sortedLines(want)) || !tt.halfClose {
					break
				}
			}
			if !strings.EqualFold(sortedLines(got), sortedLines(want)) {
				t.Errorf("Tether sent\n%q\nHAProxy sent\n%q", got, want)
			}
		})
	}
}

// withoutDates drops Date header lines.
func withoutDates(b []byte) string {
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasPrefix(strings.ToLower(l), "date:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// sortedLines returns s's lines sorted, so that header order does not count.
func sortedLines(s string) string {
	lines := strings.Split(strings.ToLower(s), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
