package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tether/web"
)

// TestConsoleSessionNeverReachesAnOrigin: a browser signed in to the
// console sends its session cookie to every port of the host, frontends
// included; the origin must not see it, while the application's own
// cookies and the persistence cookie pass.
func TestConsoleSessionNeverReachesAnOrigin(t *testing.T) {
	seen := make(chan string, 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- strings.Join(r.Header.Values("Cookie"), " | ")
	}))
	defer origin.Close()
	dir := t.TempDir()
	f := fixture{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), db: filepath.Join(dir, "tether.db"), sock: filepath.Join(dir, "admin.sock"), frontend: freeAddr(t)}
	cfg := fmt.Sprintf("global\n    stats socket %s level admin\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout server 5s\n\n"+
		"frontend fe\n    bind %s\n    default_backend be\n\nbackend be\n    cookie SRV insert indirect nocache\n    server s1 %s cookie s1\n",
		f.sock, f.frontend, origin.Listener.Addr())
	if err := os.WriteFile(f.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := f.serve(t)
	defer stop()

	for _, tc := range []struct{ sent, want string }{
		{web.SessionCookie + "=secret-token", ""},
		{"app=1; " + web.SessionCookie + "=secret-token; SRV=s1", "app=1"},
		{"app=1, " + web.SessionCookie + "=secret-token", "app=1"},
	} {
		req, _ := http.NewRequest("GET", "http://"+f.frontend+"/", nil)
		req.Header.Set("Cookie", tc.sent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := <-seen
		if strings.Contains(got, "secret-token") || got != tc.want {
			t.Errorf("sent %q, origin saw %q, want %q", tc.sent, got, tc.want)
		}
	}
}
