package balancer

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// origin is a loopback HTTP server that answers with its name.
type origin struct {
	name string
	srv  *httptest.Server
	addr netip.AddrPort
}

func startOrigins(t *testing.T, n int) []*origin {
	t.Helper()
	var out []*origin
	for i := range n {
		o := &origin{name: fmt.Sprintf("s%d", i+1)}
		o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Origin", o.name)
			if v := r.URL.Query().Get("setcookie"); v != "" {
				w.Header().Add("Set-Cookie", v)
			}
			w.Header().Set("X-Seen-Cookie", r.Header.Get("Cookie"))
			io.WriteString(w, o.name)
		}))
		t.Cleanup(o.srv.Close)
		o.addr = netip.MustParseAddrPort(o.srv.Listener.Addr().String())
		out = append(out, o)
	}
	return out
}

func serversFor(origins []*origin) []Server {
	var out []Server
	for _, o := range origins {
		out = append(out, Server{Name: o.name, Address: o.addr.Addr().String(), Port: int(o.addr.Port()), PortSet: true, Weight: 1})
	}
	return out
}

// harness is a balancer with one frontend served by httptest.
type harness struct {
	t   *testing.T
	b   *Balancer
	url string
}

func newHarness(t *testing.T, be Backend, now func() time.Time) *harness {
	t.Helper()
	return startHarness(t, Global{}, be, Options{Now: now})
}

// startHarness serves frontend "fe" over be, with global settings and
// balancer options.
func startHarness(t *testing.T, global Global, be Backend, opts Options) *harness {
	t.Helper()
	cfg := Config{
		Global:    global,
		Frontends: []Frontend{{Name: "fe", DefaultBackend: be.Name}},
		Backends:  []Backend{be},
	}
	b, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	fe := httptest.NewServer(h)
	t.Cleanup(fe.Close)
	t.Cleanup(b.Close)
	return &harness{t: t, b: b, url: fe.URL}
}

type reply struct {
	status     int
	origin     string
	setCookies []string
	seenCookie string
	header     http.Header
}

func (h *harness) get(path string, cookie string) reply {
	h.t.Helper()
	return h.do(http.MethodGet, path, cookie)
}

func (h *harness) do(method, path, cookie string) reply {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.url+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return reply{status: resp.StatusCode, origin: resp.Header.Get("X-Origin"), setCookies: resp.Header.Values("Set-Cookie"), seenCookie: resp.Header.Get("X-Seen-Cookie"), header: resp.Header}
}

func (h *harness) apply(c Change) {
	h.t.Helper()
	if err := h.b.Apply(c, Origin{Channel: "test"}); err != nil {
		h.t.Fatalf("Apply(%#v): %v", c, err)
	}
}

func dynBackend(origins []*origin) Backend {
	return Backend{
		Name:             "servers",
		Balance:          RoundRobin,
		Cookie:           &CookieConfig{Name: "SERVER_USED", Mode: CookieInsert, Indirect: true, NoCache: true, Dynamic: true},
		DynamicCookieKey: "mysecretphrase",
		Retries:          3,
		Servers:          serversFor(origins),
	}
}

func TestInsertDynamicCookieLifecycle(t *testing.T) {
	origins := startOrigins(t, 3)
	h := newHarness(t, dynBackend(origins), nil)
	want := map[string]string{}
	for _, o := range origins {
		want[o.name] = DynamicCookie("mysecretphrase", o.addr.Addr(), int32(o.addr.Port()))
	}

	// First visits go round robin and get the server's cookie.
	for i, o := range origins {
		r := h.get("/", "")
		if r.origin != o.name {
			t.Fatalf("visit %d went to %s, want %s", i, r.origin, o.name)
		}
		wantSC := "SERVER_USED=" + want[o.name] + "; path=/"
		if len(r.setCookies) != 1 || r.setCookies[0] != wantSC {
			t.Fatalf("visit %d Set-Cookie %q, want %q", i, r.setCookies, wantSC)
		}
	}
	// Return visits stick, get no new cookie, and the origin never sees it.
	for range 3 {
		r := h.get("/", "a=1; SERVER_USED="+want["s2"]+"; b=2")
		if r.origin != "s2" || len(r.setCookies) != 0 {
			t.Fatalf("pinned visit: origin %s Set-Cookie %q", r.origin, r.setCookies)
		}
		if r.seenCookie != "a=1; b=2" {
			t.Fatalf("origin saw Cookie %q, want the persistence cookie removed", r.seenCookie)
		}
	}
	// An invalid cookie is load-balanced and replaced.
	r := h.get("/", "SERVER_USED=bogus")
	if len(r.setCookies) != 1 || !strings.HasPrefix(r.setCookies[0], "SERVER_USED="+want[r.origin]) {
		t.Fatalf("invalid cookie: origin %s Set-Cookie %q", r.origin, r.setCookies)
	}
	if r.seenCookie != "" {
		t.Fatalf("origin saw %q; the only cookie must be removed", r.seenCookie)
	}

	// Drain keeps pinned clients but takes no new ones.
	h.apply(SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Drain})
	if r := h.get("/", "SERVER_USED="+want["s2"]); r.origin != "s2" {
		t.Fatalf("drained server lost its pinned client to %s", r.origin)
	}
	for range 6 {
		if r := h.get("/", ""); r.origin == "s2" {
			t.Fatal("drained server took a new client")
		}
	}
	// Maintenance redispatches pinned clients with a new cookie.
	h.apply(SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Maint})
	r = h.get("/", "SERVER_USED="+want["s2"])
	if r.origin == "s2" || len(r.setCookies) != 1 || r.setCookies[0] != "SERVER_USED="+want[r.origin]+"; path=/" {
		t.Fatalf("cookie for a server in maintenance: origin %s Set-Cookie %q", r.origin, r.setCookies)
	}
	h.apply(SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Ready})

	// Disabling dynamic cookies: old cookies no longer honoured, and the
	// deletion cookie is sent.
	h.apply(SetDynamicCookies{Backend: "servers", Enabled: false})
	r = h.get("/", "SERVER_USED="+want["s1"])
	if len(r.setCookies) != 1 || r.setCookies[0] != "SERVER_USED=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/" {
		t.Fatalf("after disable: Set-Cookie %q, want the deletion cookie", r.setCookies)
	}
	// Re-enabling brings back the same values.
	h.apply(SetDynamicCookies{Backend: "servers", Enabled: true})
	if r := h.get("/", "SERVER_USED="+want["s3"]); r.origin != "s3" || len(r.setCookies) != 0 {
		t.Fatalf("after enable: origin %s Set-Cookie %q", r.origin, r.setCookies)
	}
	// A new key breaks existing sessions.
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "other"})
	r = h.get("/", "SERVER_USED="+want["s3"])
	if len(r.setCookies) != 1 || !strings.Contains(r.setCookies[0], DynamicCookie("other", origins[0].addr.Addr(), int32(origins[0].addr.Port()))) && !strings.Contains(r.setCookies[0], DynamicCookie("other", netip.MustParseAddr("127.0.0.1"), int32(originPort(origins, r.origin)))) {
		t.Fatalf("after key change: Set-Cookie %q", r.setCookies)
	}

	st := h.b.Snapshot().Backend("servers")
	if st.Stats.Sticky.Pinned < 4 || st.Stats.Sticky.Invalid < 2 || st.Stats.Sticky.NewSessions < 5 || st.Stats.Sticky.Redispatched < 1 {
		t.Fatalf("sticky counters %+v", st.Stats.Sticky)
	}
}

func originPort(origins []*origin, name string) uint16 {
	for _, o := range origins {
		if o.name == name {
			return o.addr.Port()
		}
	}
	return 0
}

func TestCookieModes(t *testing.T) {
	origins := startOrigins(t, 2)
	tests := []struct {
		name       string
		cookie     CookieConfig
		reqCookie  string
		setCookie  string // what the origin sets, via ?setcookie=
		wantSeen   string
		wantSetCks []string
	}{
		{
			name:       "rewrite replaces the value",
			cookie:     CookieConfig{Name: "JSESSIONID", Mode: CookieRewrite},
			setCookie:  "JSESSIONID=abc; Path=/app",
			wantSetCks: []string{"JSESSIONID=c1; Path=/app"},
		},
		{
			name:       "prefix adds the server cookie",
			cookie:     CookieConfig{Name: "JSESSIONID", Mode: CookiePrefix},
			setCookie:  "JSESSIONID=abc",
			wantSetCks: []string{"JSESSIONID=c1~abc"},
		},
		{
			name:      "prefix strips the server cookie in requests",
			cookie:    CookieConfig{Name: "JSESSIONID", Mode: CookiePrefix},
			reqCookie: "JSESSIONID=c2~xyz",
			wantSeen:  "JSESSIONID=xyz",
		},
		{
			name:       "insert without indirect forwards the cookie",
			cookie:     CookieConfig{Name: "SRV", Mode: CookieInsert, HTTPOnly: true, Secure: true, Domains: []string{".example.com"}, Attrs: []string{"SameSite=Lax"}},
			reqCookie:  "SRV=c2",
			wantSeen:   "SRV=c2",
			wantSetCks: nil,
		},
		{
			name:       "insert attributes in HAProxy's order",
			cookie:     CookieConfig{Name: "SRV", Mode: CookieInsert, HTTPOnly: true, Secure: true, Domains: []string{".example.com"}, Attrs: []string{"SameSite=Lax"}},
			wantSetCks: []string{"SRV=c1; path=/; domain=.example.com; HttpOnly; Secure; SameSite=Lax"},
		},
		{
			name:       "insert deletes the server's own cookie",
			cookie:     CookieConfig{Name: "SRV", Mode: CookieInsert},
			setCookie:  "SRV=app",
			wantSetCks: []string{"SRV=c1; path=/"},
		},
		{
			name:       "preserve keeps the server's cookie and inserts none",
			cookie:     CookieConfig{Name: "SRV", Mode: CookieInsert, Preserve: true},
			setCookie:  "SRV=logout",
			wantSetCks: []string{"SRV=logout"},
		},
		{
			name:       "postonly inserts only on POST",
			cookie:     CookieConfig{Name: "SRV", Mode: CookieInsert, PostOnly: true},
			wantSetCks: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := Backend{Name: "app", Cookie: &tt.cookie, Servers: serversFor(origins)}
			be.Servers[0].Cookie, be.Servers[1].Cookie = "c1", "c2"
			h := newHarness(t, be, nil)
			path := "/"
			if tt.setCookie != "" {
				path += "?setcookie=" + urlQueryEscape(tt.setCookie)
			}
			r := h.get(path, tt.reqCookie)
			if tt.reqCookie == "" && r.origin != "s1" {
				t.Fatalf("first request went to %s", r.origin)
			}
			if r.seenCookie != tt.wantSeen {
				t.Errorf("origin saw Cookie %q, want %q", r.seenCookie, tt.wantSeen)
			}
			if strings.Join(r.setCookies, "\n") != strings.Join(tt.wantSetCks, "\n") {
				t.Errorf("Set-Cookie %q, want %q", r.setCookies, tt.wantSetCks)
			}
		})
	}
}

func urlQueryEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestMaxIdleMaxLifeDates(t *testing.T) {
	origins := startOrigins(t, 1)
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }
	be := Backend{Name: "app", Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert, Indirect: true, MaxIdle: 30 * time.Minute, MaxLife: 8 * time.Hour}, Servers: serversFor(origins)}
	be.Servers[0].Cookie = "s1"
	h := newHarness(t, be, clock)
	r := h.get("/", "")
	if len(r.setCookies) != 1 || r.setCookies[0] != "SRV=s1|ZVPxA|ZVPxA; path=/" {
		t.Fatalf("Set-Cookie %q", r.setCookies)
	}
	// Same 4-second slot: nothing to refresh.
	if r := h.get("/", "SRV=s1|ZVPxA|ZVPxA"); len(r.setCookies) != 0 {
		t.Fatalf("refresh in the same slot: %q", r.setCookies)
	}
	// Later: the last-seen date is refreshed, the first date kept.
	now = now.Add(time.Minute)
	r = h.get("/", "SRV=s1|ZVPxA|ZVPxA")
	want := "SRV=s1|" + string(appendCookieDate(nil, now.Unix())) + "|ZVPxA; path=/"
	if len(r.setCookies) != 1 || r.setCookies[0] != want {
		t.Fatalf("refresh: %q, want %q", r.setCookies, want)
	}
	// Idle too long: expired, counted, new cookie.
	now = now.Add(time.Hour)
	r = h.get("/", "SRV=s1|ZVPxA|ZVPxA")
	if len(r.setCookies) != 1 || !strings.HasSuffix(r.setCookies[0], "; path=/") || strings.Contains(r.setCookies[0], "|ZVPxA;") {
		t.Fatalf("expired: %q", r.setCookies)
	}
	if got := h.b.Snapshot().Backend("app").Stats.Sticky.Expired; got != 1 {
		t.Fatalf("expired counter %d, want 1", got)
	}
	// A cookie with dates when none are configured is rewritten without.
	be2 := Backend{Name: "app", Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert}, Servers: serversFor(origins)}
	be2.Servers[0].Cookie = "s1"
	h2 := newHarness(t, be2, clock)
	if r := h2.get("/", "SRV=s1|ZVPxA|ZVPxA"); len(r.setCookies) != 1 || r.setCookies[0] != "SRV=s1; path=/" {
		t.Fatalf("dates stripped: %q", r.setCookies)
	}
}

func TestDownServerPersistRules(t *testing.T) {
	origins := startOrigins(t, 2)
	// A closed port for a dead server with a cookie.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	mk := func(persist, redispatch bool) *harness {
		be := Backend{Name: "app", Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert, Indirect: true}, Persist: persist, Redispatch: redispatch, RedispatchInterval: -1, Retries: 1, TimeoutConnect: 50 * time.Millisecond, Servers: serversFor(origins)}
		be.Servers = append(be.Servers, Server{Name: "dead", Address: "127.0.0.1", Port: deadPort, PortSet: true, Weight: 1, Cookie: "dead"})
		h := newHarness(t, be, nil)
		h.apply(SetHealth{ServerRef: ServerRef{"app", "dead"}, Health: HealthDown})
		return h
	}
	// Default: redispatched with a new cookie.
	r := mk(false, false).get("/", "SRV=dead")
	if r.status != 200 || r.origin == "" || len(r.setCookies) != 1 {
		t.Fatalf("default: status %d origin %q Set-Cookie %q", r.status, r.origin, r.setCookies)
	}
	// option persist without redispatch: 503 after the retries.
	if r := mk(true, false).get("/", "SRV=dead"); r.status != 503 {
		t.Fatalf("persist: status %d, want 503", r.status)
	}
	// persist + redispatch: another server and its cookie.
	r = mk(true, true).get("/", "SRV=dead")
	if r.status != 200 || len(r.setCookies) != 1 || !strings.HasPrefix(r.setCookies[0], "SRV=") {
		t.Fatalf("persist+redispatch: status %d Set-Cookie %q", r.status, r.setCookies)
	}
}

func TestBackupServerWithoutCookieGetsDeletion(t *testing.T) {
	origins := startOrigins(t, 2)
	be := Backend{Name: "app", Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert}, Servers: serversFor(origins)}
	be.Servers[0].Cookie = "a"
	be.Servers[1].Backup = true
	h := newHarness(t, be, nil)
	h.apply(SetAdminState{ServerRef: ServerRef{"app", "s1"}, State: Maint})
	r := h.get("/", "")
	if r.origin != "s2" || len(r.setCookies) != 1 || !strings.HasPrefix(r.setCookies[0], "SRV=; Expires=") {
		t.Fatalf("backup: origin %s Set-Cookie %q", r.origin, r.setCookies)
	}
	h.apply(SetAdminState{ServerRef: ServerRef{"app", "s2"}, State: Maint})
	if r := h.get("/", ""); r.status != 503 {
		t.Fatalf("no server: status %d", r.status)
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	origins := startOrigins(t, 2)
	be := Backend{Name: "app", Servers: serversFor(origins)}
	be.Servers[0].Weight = 3
	h := newHarness(t, be, nil)
	counts := map[string]int{}
	for range 40 {
		counts[h.get("/", "").origin]++
	}
	if counts["s1"] != 30 || counts["s2"] != 10 {
		t.Fatalf("weights 3:1 gave %v", counts)
	}
	h.apply(SetWeight{ServerRef: ServerRef{"app", "s1"}, Weight: 0})
	for range 5 {
		if o := h.get("/", "").origin; o != "s2" {
			t.Fatalf("weight 0 server took traffic")
		}
	}
}

func TestApplyValidation(t *testing.T) {
	origins := startOrigins(t, 1)
	h := newHarness(t, Backend{Name: "app", Balance: StaticRR, Servers: serversFor(origins)}, nil)
	before := h.b.Snapshot().Version
	cases := []struct {
		c    Change
		want error
	}{
		{SetWeight{ServerRef: ServerRef{"app", "s1"}, Weight: 300}, ErrWeightRange},
		{SetWeight{ServerRef: ServerRef{"app", "s1"}, Weight: 5}, ErrStaticWeight},
		{SetWeight{ServerRef: ServerRef{"nope", "s1"}, Weight: 1}, ErrNoSuchBackend},
		{SetWeight{ServerRef: ServerRef{"app", "nope"}, Weight: 1}, ErrNoSuchServer},
		{AddServer{Backend: "app", Server: Server{Name: "x", Address: "127.0.0.1"}}, ErrNotDynamicBackend},
		{DelServer{ServerRef{"app", "s1"}}, ErrNotInMaintenance},
		{SetAddr{ServerRef: ServerRef{"app", "s1"}, Address: "nonsense"}, ErrInvalidAddress},
		{SetCheckEnabled{ServerRef: ServerRef{"app", "s1"}, Enabled: true}, ErrCheckNotConfigured},
	}
	for _, tc := range cases {
		err := h.b.Apply(tc.c, Origin{})
		if !errorsIs(err, tc.want) {
			t.Errorf("Apply(%#v) = %v, want %v", tc.c, err, tc.want)
		}
	}
	if after := h.b.Snapshot().Version; after != before {
		t.Fatalf("failed changes moved the version from %d to %d", before, after)
	}
}

func TestAddDelServerAndCommitter(t *testing.T) {
	origins := startOrigins(t, 2)
	be := dynBackend(origins[:1])
	var commits []Commit
	cfg := Config{Frontends: []Frontend{{Name: "fe", DefaultBackend: "servers"}}, Backends: []Backend{be}}
	fail := false
	b, err := New(cfg, Options{Committer: func(c Commit) error {
		if fail {
			return fmt.Errorf("disk full")
		}
		commits = append(commits, c)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := b.Subscribe(16)
	defer cancel()
	add := AddServer{Backend: "servers", Server: Server{Name: "s2", Address: origins[1].addr.Addr().String(), Port: int(origins[1].addr.Port()), PortSet: true}}
	if err := b.Apply(add, Origin{Channel: "socket"}); err != nil {
		t.Fatal(err)
	}
	s2 := b.Snapshot().Backend("servers").Server("s2")
	if s2 == nil || s2.Admin&AdminFMaint == 0 || s2.Cookie != DynamicCookie("mysecretphrase", origins[1].addr.Addr(), int32(origins[1].addr.Port())) {
		t.Fatalf("added server %+v: want maintenance and a dynamic cookie", s2)
	}
	ev := <-events
	if ev.Kind != EventChange || ev.Origin.Channel != "socket" || ev.Server != "s2" {
		t.Fatalf("event %+v", ev)
	}
	// The commit covers the server added; its State is the whole backend.
	if len(commits) != 1 || len(commits[0].After.Config.Backends[0].Servers) != 1 || len(commits[0].Before.Config.Backends[0].Servers) != 0 ||
		len(commits[0].State().Config.Backends[0].Servers) != 2 {
		t.Fatalf("commit before/after wrong: %d commits", len(commits))
	}
	fail = true
	if err := b.Apply(SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Ready}, Origin{}); err == nil {
		t.Fatal("a change that cannot be committed must fail")
	}
	if s := b.Snapshot().Backend("servers").Server("s2"); s.Admin&AdminFMaint == 0 {
		t.Fatal("an uncommitted change became visible")
	}
	fail = false
	if err := b.Apply(DelServer{ServerRef{"servers", "s2"}}, Origin{}); err != nil {
		t.Fatal(err)
	}
	if b.Snapshot().Backend("servers").Server("s2") != nil {
		t.Fatal("server not deleted")
	}
	// Key changes are published without the key.
	b.Apply(SetDynamicCookieKey{Backend: "servers", Key: "topsecret"}, Origin{})
	for {
		ev := <-events
		if k, ok := ev.Change.(SetDynamicCookieKey); ok {
			if k.Key != "" || strings.Contains(ev.Message, "topsecret") {
				t.Fatalf("event leaks the key: %+v", ev)
			}
			break
		}
	}
}

func TestRestoreRuntimeState(t *testing.T) {
	origins := startOrigins(t, 2)
	h := newHarness(t, dynBackend(origins), nil)
	h.apply(SetAdminState{ServerRef: ServerRef{"servers", "s1"}, State: Drain})
	h.apply(SetWeight{ServerRef: ServerRef{"servers", "s2"}, Weight: 7})
	h.apply(SetAddr{ServerRef: ServerRef{"servers", "s2"}, Address: "127.0.0.9", Port: 81, PortSet: true})
	st := h.b.State()
	b2, err := New(st.Config, Options{Runtime: st.Servers})
	if err != nil {
		t.Fatal(err)
	}
	a, c := h.b.Snapshot().Backend("servers"), b2.Snapshot().Backend("servers")
	for i := range a.Servers {
		x, y := a.Servers[i], c.Servers[i]
		if x.Admin != y.Admin || x.Weight != y.Weight || x.Cookie != y.Cookie || x.Config.Address != y.Config.Address || x.Config.Port != y.Config.Port {
			t.Fatalf("server %s differs after restore:\n%+v\n%+v", x.Config.Name, x, y)
		}
	}
}

func TestHealthChecksMarkDownAndUp(t *testing.T) {
	origins := startOrigins(t, 2)
	be := Backend{Name: "app", HTTPCheck: &HTTPCheck{URI: "/health"}, Servers: serversFor(origins)}
	for i := range be.Servers {
		be.Servers[i].Check = true
		be.Servers[i].Inter = 20 * time.Millisecond
		be.Servers[i].Rise = 2
		be.Servers[i].Fall = 2
	}
	h := newHarness(t, be, nil)
	events, cancel := h.b.Subscribe(64)
	defer cancel()
	ctx, stop := contextWithCancel()
	done := make(chan struct{})
	go func() { h.b.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()

	origins[1].srv.Close()
	waitFor(t, events, func(ev Event) bool {
		return ev.Kind == EventHealth && ev.Server == "s2" && strings.Contains(ev.Message, "is DOWN")
	})
	s := h.b.Snapshot().Backend("app").Server("s2")
	if s.Op != OpStopped || s.StatusText() != "DOWN" || s.Check.Status != "L4CON" {
		t.Fatalf("s2 after its origin stopped: op %d status %q check %+v", s.Op, s.StatusText(), s.Check)
	}
	for range 4 {
		if r := h.get("/", ""); r.origin != "s1" {
			t.Fatalf("down server took traffic")
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s1 := h.b.Snapshot().Backend("app").Server("s1")
		if s1.Check.Status == "L7OK" && s1.Check.Code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("s1 check %+v, want L7OK 200", s1.Check)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitFor(t *testing.T, events <-chan Event, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatal("timed out waiting for event")
		}
	}
}

func TestRandomFollowsWeights(t *testing.T) {
	be := &backendRT{cfg: Backend{Balance: Random}, changedAll: true}
	for i, w := range []int{3, 1, 0} {
		be.servers.Append(&serverRT{id: i + 1, cfg: Server{Name: fmt.Sprint(i)}, weight: w, op: OpRunning, live: newServerLive()})
	}
	be.buildSchedule()
	counts := map[string]int{}
	for range 40000 {
		counts[be.randomServer().cfg.Name]++
	}
	if counts["2"] != 0 {
		t.Fatalf("a server of weight 0 was drawn %d times", counts["2"])
	}
	if r := float64(counts["0"]) / float64(counts["1"]); r < 2.7 || r > 3.3 {
		t.Fatalf("weights 3:1 drawn %v (ratio %.2f)", counts, r)
	}
}

// TestInsertedCookieFollowsSettings checks the Set-Cookie line a first
// visit gets, which is made once per server and then reused: a new
// dynamic cookie key, then new cookie settings, each change what the next
// first visit is sent.
func TestInsertedCookieFollowsSettings(t *testing.T) {
	origins := startOrigins(t, 1)
	h := newHarness(t, dynBackend(origins), nil)
	addr := origins[0].addr
	cookieFor := func(key string) string {
		return DynamicCookie(key, addr.Addr(), int32(addr.Port()))
	}
	check := func(want string) {
		t.Helper()
		for range 2 {
			if got := h.get("/", "").setCookies; len(got) != 1 || got[0] != want {
				t.Fatalf("Set-Cookie %q, want %q", got, want)
			}
		}
	}
	check("SERVER_USED=" + cookieFor("mysecretphrase") + "; path=/")

	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "anotherphrase"})
	check("SERVER_USED=" + cookieFor("anotherphrase") + "; path=/")

	h.apply(SetCookie{Backend: "servers", Cookie: &CookieConfig{Name: "LB", Mode: CookieInsert, Indirect: true,
		Dynamic: true, HTTPOnly: true, Domains: []string{"example.com"}}})
	check("LB=" + cookieFor("anotherphrase") + "; path=/; domain=example.com; HttpOnly")
}
