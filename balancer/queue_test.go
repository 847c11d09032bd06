package balancer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// slowOrigin is a loopback origin whose requests block until the test
// hands out a token on gate; it records how many it serves at once.
type slowOrigin struct {
	name     string
	addr     netip.AddrPort
	gate     chan struct{}
	stop     chan struct{}
	arrived  chan struct{}
	cur, max atomic.Int64
}

func startSlowOrigins(t *testing.T, n int) []*slowOrigin {
	t.Helper()
	var out []*slowOrigin
	for i := range n {
		o := &slowOrigin{name: fmt.Sprintf("s%d", i+1), gate: make(chan struct{}), stop: make(chan struct{}), arrived: make(chan struct{}, 64)}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			storeMax(&o.max, o.cur.Add(1))
			o.arrived <- struct{}{}
			select {
			case <-o.gate:
			case <-o.stop:
			case <-r.Context().Done():
			}
			o.cur.Add(-1)
			w.Header().Set("X-Origin", o.name)
			io.WriteString(w, o.name)
		}))
		t.Cleanup(srv.Close)
		o.addr = netip.MustParseAddrPort(srv.Listener.Addr().String())
		out = append(out, o)
	}
	return out
}

// waitArrival waits for a request to reach o.
func (o *slowOrigin) waitArrival(t *testing.T) {
	t.Helper()
	select {
	case <-o.arrived:
	case <-time.After(5 * time.Second):
		t.Fatalf("no request reached %s", o.name)
	}
}

// release lets one request in flight at o finish.
func (o *slowOrigin) release(t *testing.T) {
	t.Helper()
	select {
	case o.gate <- struct{}{}:
	case <-time.After(5 * time.Second):
		t.Fatalf("no request in flight at %s to release", o.name)
	}
}

// noArrival fails if a request already reached o.
func (o *slowOrigin) noArrival(t *testing.T) {
	t.Helper()
	select {
	case <-o.arrived:
		t.Fatalf("a request reached %s while it was saturated", o.name)
	default:
	}
}

// stopAtEnd makes requests still blocked at the origins end when the test
// does, before the frontend and origins are closed (cleanups run last
// registered first, so call it after newHarness).
func stopAtEnd(t *testing.T, origins []*slowOrigin) {
	t.Cleanup(func() {
		for _, o := range origins {
			close(o.stop)
		}
	})
}

func slowServers(origins []*slowOrigin, maxConn int) []Server {
	var out []Server
	for _, o := range origins {
		out = append(out, Server{Name: o.name, Cookie: o.name, Address: o.addr.Addr().String(), Port: int(o.addr.Port()), PortSet: true, Weight: 1, MaxConn: maxConn})
	}
	return out
}

// result is one proxied request's outcome.
type result struct {
	status int
	origin string
	body   string
	err    error
}

// send issues a request in the background; its outcome arrives on the
// returned channel.
func (h *harness) send(ctx context.Context, cookie string) <-chan result {
	out := make(chan result, 1)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/", nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- result{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- result{status: resp.StatusCode, origin: resp.Header.Get("X-Origin"), body: string(body)}
	}()
	return out
}

func recv(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("request: %v", r.err)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("request did not complete")
		return result{}
	}
}

// pollUntil waits, with a deadline, for cond to hold.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// queued returns the backend's and each server's current queue lengths.
func (h *harness) queued(backend string) (int64, map[string]int64) {
	bs := h.b.Snapshot().Backend(backend)
	m := make(map[string]int64)
	for _, s := range bs.Servers {
		m[s.Config.Name] = s.Stats.QueueCur
	}
	return bs.Stats.QueueCur, m
}

func TestMaxConnLimitsInFlight(t *testing.T) {
	for _, balance := range []Algorithm{RoundRobin, StaticRR, LeastConn, First, Source, Random} {
		t.Run(string(balance), func(t *testing.T) {
			origins := startSlowOrigins(t, 2)
			h := newHarness(t, Backend{Name: "bk", Balance: balance, Servers: slowServers(origins, 1)}, nil)
			stopAtEnd(t, origins)
			const n = 6
			var done []<-chan result
			for range n {
				done = append(done, h.send(context.Background(), ""))
			}
			// Every request is either in flight (at most one per
			// server) or queued.
			pollUntil(t, "requests to be in flight or queued", func() bool {
				q, _ := h.queued("bk")
				return q+origins[0].cur.Load()+origins[1].cur.Load() == n
			})
			for range n {
				select {
				case origins[0].gate <- struct{}{}:
				case origins[1].gate <- struct{}{}:
				case <-time.After(5 * time.Second):
					t.Fatal("no request in flight to release")
				}
			}
			for _, ch := range done {
				if r := recv(t, ch); r.status != http.StatusOK {
					t.Fatalf("status %d, want 200", r.status)
				}
			}
			for _, o := range origins {
				if m := o.max.Load(); m > 1 {
					t.Errorf("%s served %d requests at once, maxconn is 1", o.name, m)
				}
			}
			bs := h.b.Snapshot().Backend("bk")
			if bs.Stats.QueueCur != 0 || bs.Stats.QueueMax < n-2 {
				t.Errorf("backend qcur %d qmax %d, want 0 and at least %d", bs.Stats.QueueCur, bs.Stats.QueueMax, n-2)
			}
		})
	}
}

func TestMaxConnPersistentWaitsForItsServer(t *testing.T) {
	origins := startSlowOrigins(t, 2)
	be := Backend{Name: "bk", Balance: RoundRobin, Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert}, Servers: slowServers(origins, 1)}
	h := newHarness(t, be, nil)
	stopAtEnd(t, origins)
	s1, s2 := origins[0], origins[1]

	first := h.send(context.Background(), "SRV=s1")
	s1.waitArrival(t)
	second := h.send(context.Background(), "SRV=s1")
	pollUntil(t, "the persistent request to queue on s1", func() bool {
		_, srv := h.queued("bk")
		return srv["s1"] == 1
	})
	s1.noArrival(t)
	if s2.cur.Load() != 0 {
		t.Fatalf("s2 got the persistent request")
	}
	// A request without a cookie goes to the free server at once.
	free := h.send(context.Background(), "")
	s2.waitArrival(t)
	s2.release(t)
	if r := recv(t, free); r.origin != "s2" {
		t.Fatalf("request without cookie served by %q, want s2", r.origin)
	}
	s1.release(t)
	if r := recv(t, first); r.origin != "s1" {
		t.Fatalf("first request served by %q, want s1", r.origin)
	}
	s1.waitArrival(t)
	s1.release(t)
	if r := recv(t, second); r.origin != "s1" || r.status != http.StatusOK {
		t.Fatalf("queued persistent request: status %d from %q, want 200 from s1", r.status, r.origin)
	}
	bs := h.b.Snapshot().Backend("bk")
	if sv := bs.Server("s1"); sv.Stats.QueueCur != 0 || sv.Stats.QueueMax != 1 {
		t.Errorf("s1 qcur %d qmax %d, want 0 and 1", sv.Stats.QueueCur, sv.Stats.QueueMax)
	}
	if s1.max.Load() != 1 {
		t.Errorf("s1 served %d at once, want 1", s1.max.Load())
	}
}

func TestMaxConnTimeoutQueue(t *testing.T) {
	for _, tc := range []struct {
		name            string
		queue, connect  time.Duration
		cookie          string
		wantServerQueue bool
	}{
		{name: "backend queue", queue: 50 * time.Millisecond},
		{name: "server queue", queue: 50 * time.Millisecond, cookie: "SRV=s1", wantServerQueue: true},
		{name: "defaults to timeout connect", connect: 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origins := startSlowOrigins(t, 1)
			be := Backend{Name: "bk", TimeoutQueue: tc.queue, TimeoutConnect: tc.connect, Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert}, Servers: slowServers(origins, 1)}
			h := newHarness(t, be, nil)
			stopAtEnd(t, origins)
			first := h.send(context.Background(), "")
			origins[0].waitArrival(t)
			r := recv(t, h.send(context.Background(), tc.cookie))
			if r.status != http.StatusServiceUnavailable || r.body != errorPages[http.StatusServiceUnavailable] {
				t.Fatalf("queued request got %d %q, want HAProxy's 503 page", r.status, r.body)
			}
			bs := h.b.Snapshot().Backend("bk")
			if bs.Stats.QueueCur != 0 || bs.Stats.QueueMax != 1 {
				t.Errorf("backend qcur %d qmax %d, want 0 and 1", bs.Stats.QueueCur, bs.Stats.QueueMax)
			}
			if got := bs.Server("s1").Stats.QueueMax == 1; got != tc.wantServerQueue {
				t.Errorf("server queue used: %v, want %v", got, tc.wantServerQueue)
			}
			origins[0].release(t)
			if r := recv(t, first); r.status != http.StatusOK {
				t.Fatalf("first request: %d", r.status)
			}
		})
	}
}

func TestMaxConnRaisedReleasesWaiters(t *testing.T) {
	for _, cookie := range []string{"", "SRV=s1"} {
		t.Run("cookie="+cookie, func(t *testing.T) {
			origins := startSlowOrigins(t, 1)
			o := origins[0]
			be := Backend{Name: "bk", Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert}, Servers: slowServers(origins, 1)}
			h := newHarness(t, be, nil)
			stopAtEnd(t, origins)
			var done []<-chan result
			for range 3 {
				done = append(done, h.send(context.Background(), cookie))
			}
			o.waitArrival(t)
			pollUntil(t, "two requests to queue", func() bool {
				q, _ := h.queued("bk")
				return q == 2
			})
			o.noArrival(t)
			h.apply(SetMaxConn{ServerRef: ServerRef{Backend: "bk", Server: "s1"}, MaxConn: 3})
			o.waitArrival(t)
			o.waitArrival(t)
			if q, _ := h.queued("bk"); q != 0 {
				t.Fatalf("qcur %d after raising maxconn, want 0", q)
			}
			for range done {
				o.release(t)
			}
			for _, ch := range done {
				if r := recv(t, ch); r.status != http.StatusOK {
					t.Fatalf("status %d", r.status)
				}
			}
			if o.max.Load() != 3 {
				t.Errorf("origin saw %d at once, want 3", o.max.Load())
			}
		})
	}
}

func TestMaxConnClientCancelLeavesQueue(t *testing.T) {
	origins := startSlowOrigins(t, 1)
	o := origins[0]
	h := newHarness(t, Backend{Name: "bk", Servers: slowServers(origins, 1)}, nil)
	stopAtEnd(t, origins)
	first := h.send(context.Background(), "")
	o.waitArrival(t)
	ctx, cancel := context.WithCancel(context.Background())
	gone := h.send(ctx, "")
	pollUntil(t, "the request to queue", func() bool {
		q, _ := h.queued("bk")
		return q == 1
	})
	cancel()
	<-gone
	pollUntil(t, "the cancelled request to leave the queue", func() bool {
		q, _ := h.queued("bk")
		return q == 0
	})
	o.release(t)
	recv(t, first)
	// The slot went back: the next request is served, and the cancelled
	// one never reached the origin.
	next := h.send(context.Background(), "")
	o.waitArrival(t)
	o.release(t)
	if r := recv(t, next); r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	o.noArrival(t)
}
