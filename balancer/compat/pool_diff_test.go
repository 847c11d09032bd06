package compat

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// connCountingOrigin is an origin that counts the connections it accepted
// and how many of them are still open.
type connCountingOrigin struct {
	*httptest.Server
	mu             sync.Mutex
	opened, closed int
}

func newConnCountingOrigin(t *testing.T) *connCountingOrigin {
	o := &connCountingOrigin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		o.mu.Lock()
		defer o.mu.Unlock()
		switch s {
		case http.StateNew:
			o.opened++
		case http.StateClosed, http.StateHijacked:
			o.closed++
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

func (o *connCountingOrigin) counts() (opened, open int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opened, o.opened - o.closed
}

// TestServerPoolsMatchHAProxy compares the server connections HAProxy and
// Tether open for one client's keep-alive requests under pool-max-conn,
// pool-purge-delay and max-reuse, and whether the idle connection left
// when the client goes is kept or purged.
func TestServerPoolsMatchHAProxy(t *testing.T) {
	for _, tc := range []struct {
		params string
		// opened is how many server connections 6 requests open.
		opened int
		// purged says the idle connection is closed within 2 s of the
		// client leaving; otherwise it is still open after 1 s.
		purged bool
	}{
		{params: "", opened: 1},
		{params: "pool-max-conn 1", opened: 1},
		{params: "pool-max-conn 0", opened: 6, purged: true},
		{params: "pool-purge-delay 0", opened: 6, purged: true},
		{params: "pool-purge-delay 100ms", opened: 1, purged: true},
		// HAProxy 2.6 applies max-reuse to HTTP/2 server connections only.
		{params: "max-reuse 1", opened: 1},
	} {
		t.Run(strings.ReplaceAll(cmp.Or(tc.params, "defaults"), " ", "_"), func(t *testing.T) {
			hOrigin, tOrigin := newConnCountingOrigin(t), newConnCountingOrigin(t)
			p := startPair(t, func(bind, socket string) string {
				// HAProxy's configuration is the one with a stats socket.
				addr := tOrigin.Listener.Addr().String()
				if socket != "" {
					addr = hOrigin.Listener.Addr().String()
				}
				return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
					"backend app\n    server s1 " + addr + " " + tc.params + "\n"
			})
			for _, side := range []struct {
				name   string
				url    string
				origin *connCountingOrigin
			}{{"haproxy", p.haproxyURL, hOrigin}, {"tether", p.tetherURL, tOrigin}} {
				tr := &http.Transport{}
				client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
				for i := range 6 {
					resp, err := client.Get(side.url + fmt.Sprintf("/%d", i))
					if err != nil {
						t.Fatalf("%s: request %d: %v", side.name, i, err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				tr.CloseIdleConnections()
				if opened, _ := side.origin.counts(); opened != tc.opened {
					t.Errorf("%s opened %d server connections for 6 requests of one client, want %d", side.name, opened, tc.opened)
				}
				noneOpen := func() bool { _, open := side.origin.counts(); return open == 0 }
				if tc.purged {
					if !pollUntil(2*time.Second, noneOpen) {
						_, open := side.origin.counts()
						t.Errorf("%s: %d server connections still open 2 s after the client left, want none", side.name, open)
					}
				} else {
					time.Sleep(time.Second)
					if _, open := side.origin.counts(); open != 1 {
						t.Errorf("%s: %d server connections open 1 s after the client left, want the idle one kept", side.name, open)
					}
				}
			}
		})
	}
}
