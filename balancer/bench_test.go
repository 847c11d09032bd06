package balancer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"tether/balancer/accesslog"
)

func benchBackend(b *testing.B, n int) (*Balancer, *backendRT) {
	b.Helper()
	be := Backend{
		Name:             "servers",
		Cookie:           &CookieConfig{Name: "SERVER_USED", Mode: CookieInsert, Indirect: true, NoCache: true, Dynamic: true},
		DynamicCookieKey: "mysecretphrase",
	}
	for i := range n {
		be.Servers = append(be.Servers, Server{Name: fmt.Sprintf("s%d", i+1), Address: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Port: 80, PortSet: true, Weight: 1})
	}
	bal, err := New(Config{Frontends: []Frontend{{Name: "fe", DefaultBackend: "servers"}}, Backends: []Backend{be}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return bal, bal.tab.Load().byName["servers"]
}

// BenchmarkRoutePinned measures persistence and selection for a request
// carrying a valid cookie: find the server its cookie names.
func BenchmarkRoutePinned(b *testing.B) {
	for _, n := range []int{4, 100} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			_, be := benchBackend(b, n)
			cookie := "SERVER_USED=" + DynamicCookie("mysecretphrase", netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", n%250)), 80)
			r := httptest.NewRequest("GET", "/", nil)
			vals := []string{cookie}
			b.ReportAllocs()
			for b.Loop() {
				vals[0] = cookie
				r.Header["Cookie"] = vals
				p := be.ck.readRequestCookies(r, be, 1700000000)
				if p.server == nil {
					b.Fatal("not pinned")
				}
			}
		})
	}
}

// BenchmarkRouteNew measures selection for a request without a cookie.
func BenchmarkRouteNew(b *testing.B) {
	_, be := benchBackend(b, 4)
	r := httptest.NewRequest("GET", "/", nil)
	client := netip.MustParseAddr("127.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		p := be.ck.readRequestCookies(r, be, 1700000000)
		if p.server == nil && be.pick(client, nil) == nil {
			b.Fatal("no server")
		}
	}
}

// BenchmarkProxyPinned measures a whole proxied request with a valid cookie
// through loopback origins, frontend handler called directly, without and
// with an access log (option httplog to a logger writing to io.Discard).
func BenchmarkProxyPinned(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer origin.Close()
	ap := netip.MustParseAddrPort(origin.Listener.Addr().String())
	be := Backend{
		Name:             "servers",
		Cookie:           &CookieConfig{Name: "SERVER_USED", Mode: CookieInsert, Indirect: true, NoCache: true, Dynamic: true},
		DynamicCookieKey: "k",
		Servers:          []Server{{Name: "s1", Address: ap.Addr().String(), Port: int(ap.Port()), PortSet: true, Weight: 1}},
	}
	for _, logged := range []bool{false, true} {
		name := "nolog"
		fe := Frontend{Name: "fe", DefaultBackend: "servers"}
		var opts Options
		if logged {
			name = "httplog"
			fe.HTTPLog, fe.Logs = true, []LogTarget{{Address: "stdout", Format: "raw", Facility: "local0"}}
			l := accesslog.New(io.Discard, 0)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			defer func() { cancel(); <-done }()
			opts.AccessLogs = map[string]*accesslog.Logger{"stdout": l}
		}
		b.Run(name, func(b *testing.B) {
			bal, err := New(Config{Frontends: []Frontend{fe}, Backends: []Backend{be}}, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer bal.Close()
			h, _ := bal.Handler("fe")
			cookie := "SERVER_USED=" + DynamicCookie("k", ap.Addr(), int32(ap.Port()))
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Cookie", cookie)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

// BenchmarkApply measures one state change on a backend of 10 and of 1000
// servers, with a committer that receives the part of the state it touches.
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) { benchmarkApply(b, n) })
	}
}

func benchmarkApply(b *testing.B, n int) {
	bal, _ := benchBackend(b, n)
	var servers int
	bal.SetCommitter(func(c Commit) error {
		servers += len(c.After.Config.Backends[0].Servers)
		return nil
	})
	modes := []AdminMode{Drain, Ready}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := bal.Apply(SetAdminState{ServerRef: ServerRef{"servers", fmt.Sprintf("s%d", n/2)}, State: modes[i%2]}, Origin{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
