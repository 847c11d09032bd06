package compat

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/runtimeapi"
)

// TestShowStatQueueColumns checks that requests waiting for a server slot
// (maxconn) show in show stat's qcur and qmax columns, for the server and
// its backend, as HAProxy reports them.
func TestShowStatQueueColumns(t *testing.T) {
	gate, stop := make(chan struct{}), make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
		case <-stop:
		case <-r.Context().Done():
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	ap := netip.MustParseAddrPort(origin.Listener.Addr().String())
	cfg := balancer.Config{
		Frontends: []balancer.Frontend{{Name: "fe", DefaultBackend: "bk"}},
		Backends: []balancer.Backend{{
			Name:    "bk",
			Cookie:  &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert},
			Servers: []balancer.Server{{Name: "s1", Cookie: "s1", Address: ap.Addr().String(), Port: int(ap.Port()), PortSet: true, Weight: 1, MaxConn: 1}},
		}},
	}
	b, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	fe := httptest.NewServer(h)
	t.Cleanup(fe.Close)
	t.Cleanup(func() { close(stop) })
	d := runtimeapi.NewDispatcher(b, runtimeapi.DispatcherOptions{})
	// queue returns the qcur and qmax columns of a show stat row.
	queue := func(sv string) string {
		out := d.Execute(context.Background(), "show stat", balancer.LevelAdmin, balancer.Origin{Channel: "test"})
		for _, line := range strings.Split(out, "\n") {
			f := strings.Split(line, ",")
			if len(f) > 3 && f[0] == "bk" && f[1] == sv {
				return f[2] + "," + f[3]
			}
		}
		t.Fatalf("no row bk/%s in show stat:\n%s", sv, out)
		return ""
	}

	const n = 3
	done := make(chan int, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, fe.URL+"/", nil)
			req.Header.Set("Cookie", "SRV=s1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for queue("s1") != "2,2" || queue("BACKEND") != "2,2" {
		if time.Now().After(deadline) {
			t.Fatalf("qcur,qmax: server %s backend %s, want 2,2 for both", queue("s1"), queue("BACKEND"))
		}
		time.Sleep(time.Millisecond)
	}
	for range n {
		gate <- struct{}{}
	}
	for range n {
		if code := <-done; code != http.StatusOK {
			t.Fatalf("status %d, want 200", code)
		}
	}
	if s, be := queue("s1"), queue("BACKEND"); s != "0,2" || be != "0,2" {
		t.Errorf("after release qcur,qmax: server %s backend %s, want 0,2 for both", s, be)
	}
}
