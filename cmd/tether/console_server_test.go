package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"tether/balancer/e2etest"
	"tether/web"
)

// TestConsoleServerClosesIdleAndSlowClients: the console closes a
// kept-alive connection left idle and one whose request head trickles in,
// with the timeouts it is given; the defaults are set.
func TestConsoleServerClosesIdleAndSlowClients(t *testing.T) {
	if consoleHeadTimeout <= 0 || consoleRequestTimeout <= 0 || consoleIdleTimeout <= 0 {
		t.Fatalf("console timeouts: head %v, request %v, idle %v; want all set", consoleHeadTimeout, consoleRequestTimeout, consoleIdleTimeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	to := consoleTimeouts{Head: 300 * time.Millisecond, Request: 10 * time.Second, Idle: 300 * time.Millisecond}
	srv := newConsoleServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), slog.New(slog.DiscardHandler), to)
	go srv.Serve(ln)
	defer srv.Close()

	// closedWithin reports whether the server closes c within d.
	closedWithin := func(c net.Conn, r *bufio.Reader, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, r) // nil at the end of the stream
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	for _, tc := range []struct {
		name string
		send func(t *testing.T, c net.Conn, r *bufio.Reader)
	}{
		{"idle keep-alive", func(t *testing.T, c net.Conn, r *bufio.Reader) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: console\r\n\r\n")
			res, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.Close {
				t.Fatal("the console did not keep the connection alive")
			}
		}},
		{"trickled head", func(t *testing.T, c net.Conn, r *bufio.Reader) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: console\r\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			tc.send(t, c, r)
			start := time.Now()
			if !closedWithin(c, r, 3*time.Second) {
				t.Fatalf("the console kept the connection open for 3 s")
			}
			if waited := time.Since(start); waited < to.Idle/2 {
				t.Errorf("closed after %v, before the timeout (%v)", waited, to.Idle)
			}
		})
	}
}

// TestConsoleSecureCookiesFlag: behind a TLS terminator, -console-secure-cookies
// (or TETHER_CONSOLE_SECURE_COOKIES) marks the session cookie Secure; without
// either, a console on plain HTTP sets it without.
func TestConsoleSecureCookiesFlag(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		env    string
		secure bool
	}{
		{"flag", []string{"-console-secure-cookies"}, "", true},
		{"environment", nil, "1", true},
		{"neither", nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1)
			env := func(k string) string {
				switch k {
				case "TETHER_ADMIN_PASSWORD":
					return "a long admin passphrase 9"
				case "TETHER_CONSOLE_SECURE_COOKIES":
					return tc.env
				}
				return ""
			}
			ctx, cancel := context.WithCancel(context.Background())
			var out e2etest.Buffer
			done := make(chan error, 1)
			args := append([]string{"serve", "-f", f.cfg, "-db", f.db, "-console", "127.0.0.1:0"}, tc.args...)
			go func() { done <- run(ctx, args, env, nil, &out, io.Discard) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}()
			waitFor(t, "the console", func() bool { return strings.Contains(out.String(), "Tether console:") })
			console := regexp.MustCompile(`Tether console: (http://\S+)/`).FindStringSubmatch(out.String())
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := c.PostForm(console[1]+"/login", url.Values{"name": {"admin"}, "password": {"a long admin passphrase 9"}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var session *http.Cookie
			for _, ck := range res.Cookies() {
				if ck.Name == web.SessionCookie {
					session = ck
				}
			}
			if res.StatusCode != http.StatusSeeOther || session == nil {
				t.Fatalf("sign-in: status %d, session cookie %v", res.StatusCode, session)
			}
			if session.Secure != tc.secure {
				t.Errorf("session cookie Secure = %v, want %v", session.Secure, tc.secure)
			}
		})
	}
}
