package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"tether/balancer"
)

// dialWS opens the console's websocket as c's session, with origin as the
// Origin header.
func (e *env) dialWS(t testing.TB, c *http.Client, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.console.URL, "http") + "/ws"
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	d := websocket.Dialer{Jar: c.Jar, HandshakeTimeout: 5 * time.Second}
	conn, res, err := d.Dial(u, hdr)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, res, err
}

func readMsg(t testing.TB, conn *websocket.Conn) wsMessage {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read websocket message: %v", err)
	}
	var m wsMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode websocket message %q: %v", b, err)
	}
	return m
}

// readUntil reads messages until one satisfies ok.
func readUntil(t testing.TB, conn *websocket.Conn, what string, ok func(wsMessage) bool) wsMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := readMsg(t, conn); ok(m) {
			return m
		}
	}
	t.Fatalf("no message with %s", what)
	return wsMessage{}
}

func TestHubFanOutAfterAction(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.login("alice")
	const n = 20
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conn, _, err := e.dialWS(t, admin, e.console.URL)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		full := readMsg(t, conn)
		if full.Type != "full" || full.Cells["s:servers/s1"]["adm"] != "ready" {
			t.Fatalf("first message %s with s1 %v, want the full state", full.Type, full.Cells["s:servers/s1"])
		}
		if full.Cells["s:servers/s1"]["ck"] == "" {
			t.Fatalf("admin's full state lacks cookie values")
		}
		conns[i] = conn
	}
	waitFor(t, 5*time.Second, "all clients registered", func() bool { return e.srv.Hub().Clients() == n })
	e.post(admin, "/backends/servers/servers/s1/state", map[string][]string{"state": {"drain"}})
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := readUntil(t, conn, "s1 drained", func(m wsMessage) bool { return m.Cells["s:servers/s1"]["adm"] == "drain" })
			if m.Type != "diff" {
				t.Errorf("change came as %q, want diff", m.Type)
			}
		}()
	}
	wg.Wait()
}

func TestHubEventCarriesCommand(t *testing.T) {
	e := newEnv(t, Options{})
	conn, _, err := e.dialWS(t, e.login("olga"), e.console.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	readMsg(t, conn)
	e.disp.Execute(context.Background(), "set server servers/s2 weight 9", balancer.LevelAdmin, balancer.Origin{Channel: "socket", Source: "/run/tether.sock"})
	m := readUntil(t, conn, "the change event", func(m wsMessage) bool { return len(m.Events) > 0 })
	if ev := m.Events[0]; ev.Kind != "change" || ev.Channel != "socket" || ev.Command != "set server servers/s2 weight 9" {
		t.Errorf("event %+v", ev)
	}
}

func TestHubViewerGetsNoSensitiveFields(t *testing.T) {
	e := newEnv(t, Options{})
	conn, _, err := e.dialWS(t, e.login("victor"), e.console.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	full := readMsg(t, conn)
	for k, fs := range full.Cells {
		for f := range fs {
			if isSensitive(f) || f == "sig" {
				t.Errorf("viewer receives %s of %s", f, k)
			}
		}
	}
	if full.Cells["s:servers/s1"]["st"] == "" {
		t.Errorf("viewer does not receive the status")
	}
}

func TestHubRefusesBadHandshakes(t *testing.T) {
	e := newEnv(t, Options{TrustedOrigins: []string{"https://console.example"}})
	admin := e.login("alice")
	for _, tc := range []struct {
		name   string
		client *http.Client
		origin string
		status int
	}{
		{"foreign origin", admin, "https://evil.example", http.StatusForbidden},
		{"no origin", admin, "", http.StatusForbidden},
		{"no session", e.client(), e.console.URL, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res, err := e.dialWS(t, tc.client, tc.origin)
			if err == nil {
				t.Fatalf("handshake accepted")
			}
			if res == nil || res.StatusCode != tc.status {
				t.Fatalf("handshake refused with %v, want status %d", res, tc.status)
			}
		})
	}
	if _, _, err := e.dialWS(t, admin, "https://console.example"); err != nil {
		t.Errorf("trusted origin refused: %v", err)
	}
}

func TestHubReconnectGetsCurrentState(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.login("alice")
	conn, _, err := e.dialWS(t, admin, e.console.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	readMsg(t, conn)
	conn.Close()
	waitFor(t, 5*time.Second, "client gone", func() bool { return e.srv.Hub().Clients() == 0 })
	e.post(admin, "/backends/servers/servers/s3/weight", map[string][]string{"weight": {"4"}})
	waitFor(t, 5*time.Second, "hub saw the change", func() bool {
		e.srv.hub.mu.Lock()
		defer e.srv.hub.mu.Unlock()
		return e.srv.hub.cur["s:servers/s3"]["w"] == "4/1"
	})
	conn, _, err = e.dialWS(t, admin, e.console.URL)
	if err != nil {
		t.Fatalf("redial: %v", err)
	}
	full := readMsg(t, conn)
	if full.Type != "full" || full.Cells["s:servers/s3"]["w"] != "4/1" {
		t.Fatalf("after reconnect got %s with weight %q, want the full state with 4/1", full.Type, full.Cells["s:servers/s3"]["w"])
	}
}

func TestHubShutdownClosesConnections(t *testing.T) {
	e := newEnv(t, Options{})
	conn, _, err := e.dialWS(t, e.login("alice"), e.console.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	readMsg(t, conn)
	e.cancel()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Errorf("connection ended with %v, want a going-away close", err)
			}
			return
		}
	}
}

// fakeBalancer serves synthetic snapshots: one backend of n servers whose
// counters grow at every snapshot, so every sample yields a large diff.
type fakeBalancer struct {
	mu      sync.Mutex
	n       int
	version uint64
	admin   map[int]uint8
	events  chan balancer.Event
}

func newFakeBalancer(n int) *fakeBalancer {
	return &fakeBalancer{n: n, admin: map[int]uint8{}, events: make(chan balancer.Event, 1024)}
}

func (f *fakeBalancer) Subscribe(int) (<-chan balancer.Event, func()) { return f.events, func() {} }

// PreviewCookie is not used by the hub.
func (f *fakeBalancer) PreviewCookie(string, netip.Addr, int) (string, error) {
	return "", balancer.ErrNoSuchBackend
}

func (f *fakeBalancer) Snapshot() *balancer.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	b := balancer.BackendStatus{Config: balancer.Backend{Name: "be", Balance: balancer.RoundRobin,
		Cookie: &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert, Dynamic: true}}}
	for i := 0; i < f.n; i++ {
		v := int64(f.version) * int64(i+1)
		b.Servers = append(b.Servers, balancer.ServerStatus{
			Config: balancer.Server{Name: "srv" + strconv.Itoa(i), Address: "10.0.0.1", Port: 8000 + i, PortSet: true, Weight: 1, Rise: 2, Fall: 3},
			Cookie: strconv.FormatInt(int64(i)*7919, 16), Op: balancer.OpRunning, Weight: 1, Admin: f.admin[i],
			CheckEnabled: true, Check: balancer.CheckResult{Status: "L4OK", Health: 4},
			Stats: balancer.ServerCounters{TotalSessions: v, Sticky: balancer.StickyCounters{Pinned: v / 2, NewSessions: v / 3}},
		})
	}
	return &balancer.Snapshot{Version: f.version, Taken: time.Now(), Backends: []balancer.BackendStatus{b}}
}

// setAdmin changes a server's admin bits and announces it.
func (f *fakeBalancer) setAdmin(i int, bits uint8) {
	f.mu.Lock()
	f.admin[i] = bits
	f.mu.Unlock()
	f.events <- balancer.Event{Kind: balancer.EventChange, Backend: "be", Server: "srv" + strconv.Itoa(i)}
}

// hubOnly serves just the hub of a console built on bal.
func hubOnly(t testing.TB, bal Balancer, opts Options) (*Server, *httptest.Server, context.CancelFunc) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := NewServer(log, Deps{Balancer: bal}, opts)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.hub.serveWS(w, r, true, sessionOwner{}) }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; ts.Close() })
	return s, ts, cancel
}

func dialHub(t testing.TB, ts *httptest.Server, rcvbuf int) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second,
		NetDial: func(network, addr string) (net.Conn, error) {
			c, err := net.Dial(network, addr)
			if err == nil && rcvbuf > 0 {
				_ = c.(*net.TCPConn).SetReadBuffer(rcvbuf)
			}
			return c, err
		}}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(ts.URL, "http"), http.Header{"Origin": {ts.URL}})
	if err != nil {
		t.Fatalf("dial hub: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestHubDropsSlowClient(t *testing.T) {
	bal := newFakeBalancer(1000)
	s, ts, _ := hubOnly(t, bal, Options{Batch: 5 * time.Millisecond, Sample: 5 * time.Millisecond, ClientBuffer: 2})
	slow := dialHub(t, ts, 4096) // never reads
	fast := dialHub(t, ts, 0)
	var got atomic.Int64
	go func() {
		for {
			if _, _, err := fast.ReadMessage(); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	waitFor(t, 20*time.Second, "slow client dropped", func() bool { return s.hub.Dropped() == 1 })
	if n := s.hub.Clients(); n != 1 {
		t.Fatalf("%d clients left, want the fast one", n)
	}
	before := got.Load()
	waitFor(t, 10*time.Second, "fast client keeps receiving", func() bool { return got.Load() > before+3 })
	_ = slow
}

// BenchmarkHubFanOut measures the delay from a change to the last of N
// consoles seeing it, over loopback websockets, and the process CPU time
// per change (hub and clients together).
func BenchmarkHubFanOut(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run("consoles="+strconv.Itoa(n), func(b *testing.B) {
			bal := newFakeBalancer(20)
			s, ts, _ := hubOnly(b, bal, Options{Batch: 10 * time.Millisecond, Sample: time.Hour, ClientBuffer: 64})
			var seen atomic.Int64
			var want atomic.Value
			want.Store([]byte("\x00"))
			var wg sync.WaitGroup
			conns := make([]*websocket.Conn, n)
			for i := range conns {
				conns[i] = dialHub(b, ts, 0)
			}
			waitFor(b, 30*time.Second, "all consoles connected", func() bool { return s.hub.Clients() == n })
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						_, msg, err := c.ReadMessage()
						if err != nil {
							return
						}
						if bytes.Contains(msg, want.Load().([]byte)) {
							seen.Add(1)
						}
					}
				}()
			}
			var ru0, ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mode := []string{"drain", "ready"}[i%2]
				bits := map[string]uint8{"drain": balancer.AdminFDrain, "ready": 0}[mode]
				want.Store([]byte(`"adm":"` + mode + `"`))
				seen.Store(0)
				start := time.Now()
				bal.setAdmin(0, bits)
				for seen.Load() < int64(n) {
					time.Sleep(100 * time.Microsecond)
					if time.Since(start) > 30*time.Second {
						b.Fatalf("only %d of %d consoles saw change %d", seen.Load(), n, i)
					}
				}
				total += time.Since(start)
			}
			b.StopTimer()
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()+ru1.Stime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-last-console")
			b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/change")
			b.ReportMetric(float64(s.hub.Dropped()), "dropped")
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
		})
	}
}

// BenchmarkBuildModel measures one live update's rendering of a backend of
// 1000 servers into cells, and its diff against the previous one (a batch
// between samples: the 15-minute history is reused).
func BenchmarkBuildModel(b *testing.B) {
	bal := newFakeBalancer(1000)
	s := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), Deps{Balancer: bal}, Options{})
	v := viewer{perms: permsFor(user{level: roleAdmin}), now: time.Now()}
	prev := s.buildModel(bal.Snapshot(), v, nil, true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		snap := bal.Snapshot()
		next := s.buildModel(snap, v, prev, false)
		diffModels(prev, next)
		prev = next
	}
}
