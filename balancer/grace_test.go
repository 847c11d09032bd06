package balancer

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// cookieOf returns the dynamic cookie of origin o under key.
func cookieOf(key string, o *origin) string {
	return DynamicCookie(key, o.addr.Addr(), int32(o.addr.Port()))
}

// wantPinned checks that a request carrying cookie goes to server and
// gets setCookie ("" for none).
func (h *harness) wantPinned(what, cookie, server, setCookie string) {
	h.t.Helper()
	r := h.get("/", "SERVER_USED="+cookie)
	if r.origin != server {
		h.t.Fatalf("%s: went to %s, want %s", what, r.origin, server)
	}
	var want []string
	if setCookie != "" {
		want = []string{"SERVER_USED=" + setCookie + "; path=/"}
	}
	if strings.Join(r.setCookies, "\n") != strings.Join(want, "\n") {
		h.t.Fatalf("%s: Set-Cookie %q, want %q", what, r.setCookies, want)
	}
}

// wantRedispatched checks that a request carrying cookie is treated as
// invalid: load-balanced, and given its new server's cookie under key.
func (h *harness) wantRedispatched(what, cookie, key string, origins []*origin) {
	h.t.Helper()
	before := h.b.Snapshot().Backend("servers").Stats.Sticky.Invalid
	r := h.get("/", "SERVER_USED="+cookie)
	var got *origin
	for _, o := range origins {
		if o.name == r.origin {
			got = o
		}
	}
	if got == nil || len(r.setCookies) != 1 || r.setCookies[0] != "SERVER_USED="+cookieOf(key, got)+"; path=/" {
		h.t.Fatalf("%s: origin %s Set-Cookie %q, want a new cookie of its server", what, r.origin, r.setCookies)
	}
	if after := h.b.Snapshot().Backend("servers").Stats.Sticky.Invalid; after != before+1 {
		h.t.Fatalf("%s: invalid cookies %d → %d, want one more", what, before, after)
	}
}

// TestKeyGraceKeepsClients rotates the key twice with grace: cookies of
// both previous keys keep their server and are re-issued under the
// current key, each until its own window ends; then they are invalid as
// in HAProxy.
func TestKeyGraceKeepsClients(t *testing.T) {
	origins := startOrigins(t, 3)
	clock := newFakeClock()
	h := newHarness(t, dynBackend(origins), clock.now)
	s2 := origins[1]
	k1, k2, k3 := "mysecretphrase", "second-key", "third-key"

	h.apply(SetDynamicCookieKey{Backend: "servers", Key: Secret(k2), Grace: 10 * time.Minute})
	for range 3 {
		// Round robin would spread these; the old cookie holds.
		h.wantPinned("k1 cookie after the first rotation", cookieOf(k1, s2), "s2", cookieOf(k2, s2))
	}
	h.wantPinned("re-issued cookie", cookieOf(k2, s2), "s2", "")

	clock.advance(time.Minute)
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: Secret(k3), Grace: 20 * time.Minute})
	h.wantPinned("k1 cookie after the second rotation", cookieOf(k1, s2), "s2", cookieOf(k3, s2))
	h.wantPinned("k2 cookie after the second rotation", cookieOf(k2, s2), "s2", cookieOf(k3, s2))

	bs := h.b.Snapshot().Backend("servers")
	if len(bs.RetiredKeys) != 2 || bs.RetiredKeys[0].Fingerprint != KeyFingerprint(k1) || bs.RetiredKeys[1].Fingerprint != KeyFingerprint(k2) {
		t.Fatalf("retired keys %+v, want k1 then k2 by fingerprint", bs.RetiredKeys)
	}
	// All five came from one client address.
	if st := bs.Stats.Sticky; st.OldKey != 5 || st.Reissued != 5 || st.OldClients != 1 {
		t.Fatalf("sticky counters %+v, want 5 old-key requests, 5 re-issued, 1 client", st)
	}
	if st := bs.Server("s2").Stats.Sticky; st.OldKey != 5 || st.Reissued != 5 || st.Pinned != 6 {
		t.Fatalf("s2 sticky counters %+v, want 5 old-key, 5 re-issued, 6 pinned", st)
	}

	clock.advance(9 * time.Minute) // k1's window ends
	h.wantRedispatched("k1 cookie after its window", cookieOf(k1, s2), k3, origins)
	h.wantPinned("k2 cookie inside its window", cookieOf(k2, s2), "s2", cookieOf(k3, s2))
	if bs := h.b.Snapshot().Backend("servers"); len(bs.RetiredKeys) != 1 {
		t.Fatalf("retired keys %+v after k1's window, want k2 alone", bs.RetiredKeys)
	}

	clock.advance(12 * time.Minute) // k2's window ends
	h.wantRedispatched("k2 cookie after its window", cookieOf(k2, s2), k3, origins)
	h.wantPinned("current cookie", cookieOf(k3, s2), "s2", "")
	// The next change to the backend forgets the expired keys for good.
	h.apply(SetWeight{ServerRef: ServerRef{"servers", "s1"}, Weight: 2})
	if rk := h.b.State().Config.Backends[0].RetiredKeys; len(rk) != 0 {
		t.Fatalf("the state still holds expired keys %+v", rk)
	}
}

// TestKeyWithoutGraceForgetsRetiredKeys checks that a rotation without
// grace is HAProxy's: every cookie of an earlier key is invalid at once,
// even one whose window was open.
func TestKeyWithoutGraceForgetsRetiredKeys(t *testing.T) {
	origins := startOrigins(t, 2)
	clock := newFakeClock()
	h := newHarness(t, dynBackend(origins), clock.now)
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k2", Grace: time.Hour})
	h.wantPinned("k1 cookie in its window", cookieOf("mysecretphrase", origins[0]), "s1", cookieOf("k2", origins[0]))
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k3"})
	h.wantRedispatched("k1 cookie after a rotation without grace", cookieOf("mysecretphrase", origins[0]), "k3", origins)
	h.wantRedispatched("k2 cookie after a rotation without grace", cookieOf("k2", origins[0]), "k3", origins)
	if n := len(h.b.State().Config.Backends[0].RetiredKeys); n != 0 {
		t.Fatalf("%d retired keys remain in the state", n)
	}
}

// TestKeyGraceFollowsServerState checks that an old-key cookie is honoured
// only as a valid cookie would be: a server in maintenance loses it (the
// client is redispatched and gets its new server's cookie), a draining
// one keeps it.
func TestKeyGraceFollowsServerState(t *testing.T) {
	origins := startOrigins(t, 3)
	clock := newFakeClock()
	h := newHarness(t, dynBackend(origins), clock.now)
	old := cookieOf("mysecretphrase", origins[1])
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k2", Grace: time.Hour})
	h.apply(SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Drain})
	h.wantPinned("old cookie of a draining server", old, "s2", cookieOf("k2", origins[1]))
	h.apply(SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Maint})
	r := h.get("/", "SERVER_USED="+old)
	if r.origin == "s2" || r.origin == "" {
		t.Fatalf("old cookie of a server in maintenance went to %q", r.origin)
	}
	var to *origin
	for _, o := range origins {
		if o.name == r.origin {
			to = o
		}
	}
	if len(r.setCookies) != 1 || r.setCookies[0] != "SERVER_USED="+cookieOf("k2", to)+"; path=/" {
		t.Fatalf("redispatched client got Set-Cookie %q", r.setCookies)
	}
	if st := h.b.Snapshot().Backend("servers").Stats.Sticky; st.Redispatched != 1 || st.OldKey != 2 || st.Reissued != 1 {
		t.Fatalf("sticky counters %+v, want 1 redispatched, 2 old-key, 1 re-issued", st)
	}
}

// TestGraceReissueModes checks the re-issued Set-Cookie for each cookie
// mode, with the backend's attributes and dates, and that postonly waits
// for a POST.
func TestGraceReissueModes(t *testing.T) {
	origins := startOrigins(t, 1)
	o := origins[0]
	old, cur := cookieOf("mysecretphrase", o), cookieOf("k2", o)
	clock := newFakeClock()
	now := clock.now().Unix()
	date := string(appendCookieDate(nil, now))
	for _, tc := range []struct {
		name   string
		cookie CookieConfig
		method string
		sent   string
		want   string
	}{
		{"insert", CookieConfig{Mode: CookieInsert, Indirect: true, HTTPOnly: true, Domains: []string{".example.com"}},
			"GET", old, cur + "; path=/; domain=.example.com; HttpOnly"},
		{"insert with dates", CookieConfig{Mode: CookieInsert, Indirect: true, MaxIdle: time.Hour},
			"GET", old + "|" + date, cur + "|" + date + "; path=/"},
		{"insert postonly GET", CookieConfig{Mode: CookieInsert, Indirect: true, PostOnly: true}, "GET", old, ""},
		{"insert postonly POST", CookieConfig{Mode: CookieInsert, Indirect: true, PostOnly: true}, "POST", old, cur + "; path=/"},
		{"rewrite", CookieConfig{Mode: CookieRewrite}, "GET", old, cur + "; path=/"},
		{"prefix", CookieConfig{Mode: CookiePrefix}, "GET", old + "~app1", cur + "~app1; path=/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := dynBackend(origins)
			tc.cookie.Name, tc.cookie.Dynamic = "SERVER_USED", true
			be.Cookie = &tc.cookie
			h := newHarness(t, be, clock.now)
			h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k2", Grace: time.Hour})
			r := h.do(tc.method, "/", "SERVER_USED="+tc.sent)
			var want []string
			if tc.want != "" {
				want = []string{"SERVER_USED=" + tc.want}
			}
			if r.origin != "s1" || strings.Join(r.setCookies, "\n") != strings.Join(want, "\n") {
				t.Fatalf("origin %s Set-Cookie %q, want %q", r.origin, r.setCookies, want)
			}
		})
	}
}

// TestExplainOldKeyCookie checks that the cookie inspector says an
// old-key cookie is honoured and shows the cookie it is re-issued as.
func TestExplainOldKeyCookie(t *testing.T) {
	origins := startOrigins(t, 2)
	clock := newFakeClock()
	h := newHarness(t, dynBackend(origins), clock.now)
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k2", Grace: time.Hour})
	e, err := h.b.Explain("servers", "SERVER_USED="+cookieOf("mysecretphrase", origins[1]), clock.now())
	if err != nil {
		t.Fatal(err)
	}
	if e.Verdict != VerdictValid || !e.OldKey || e.OldAddress || e.Named != "s2" || len(e.Targets) != 1 ||
		e.Targets[0].SetCookie != "SERVER_USED="+cookieOf("k2", origins[1])+"; path=/" {
		t.Fatalf("explanation %+v", e)
	}
	e, _ = h.b.Explain("servers", "SERVER_USED="+cookieOf("mysecretphrase", origins[1]), clock.now().Add(2*time.Hour))
	if e.Verdict != VerdictUnknown || e.OldKey {
		t.Fatalf("after the window: verdict %v, old key %v", e.Verdict, e.OldKey)
	}
}

// TestKeyGraceReplays checks that a committed rotation with grace carries
// its end, and that replaying it later (as a restart does) ends the grace
// at the same time, not a full window after the replay.
func TestKeyGraceReplays(t *testing.T) {
	origins := startOrigins(t, 2)
	clock := newFakeClock()
	start := clock.now()
	be := dynBackend(origins)
	b, err := New(Config{Backends: []Backend{be}}, Options{Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	initial := b.State()
	var committed []Change
	b.SetCommitter(func(c Commit) error { committed = append(committed, c.Changes...); return nil })
	if err := b.Apply(SetDynamicCookieKey{Backend: "servers", Key: "k2", Grace: 10 * time.Minute}, Origin{}); err != nil {
		t.Fatal(err)
	}
	k, ok := committed[0].(SetDynamicCookieKey)
	if !ok || !k.GraceUntil.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("committed %+v, want GraceUntil = start + 10m", committed[0])
	}
	for _, tc := range []struct {
		at      time.Duration
		retired int
	}{{5 * time.Minute, 1}, {11 * time.Minute, 0}} {
		st, err := Replay(initial, committed, start.Add(tc.at))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Config.Backends[0].RetiredKeys; len(got) != tc.retired {
			t.Fatalf("replayed at +%s: retired keys %+v, want %d", tc.at, got, tc.retired)
		}
		if tc.retired == 1 && (st.Config.Backends[0].RetiredKeys[0].Key != "mysecretphrase" || !st.Config.Backends[0].RetiredKeys[0].Until.Equal(k.GraceUntil)) {
			t.Fatalf("replayed retired key %+v", st.Config.Backends[0].RetiredKeys[0])
		}
	}
	// The state round-trips through the codec, keys as references.
	data, err := EncodeState(b.State())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "mysecretphrase") {
		t.Fatalf("the state document holds a retired key in clear: %s", data)
	}
	st, err := DecodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	secrets := b.State().Secrets()
	if err := st.ResolveSecrets(func(ref string) (string, bool) { v, ok := secrets[ref]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if got := st.Config.Backends[0].RetiredKeys; len(got) != 1 || got[0].Key != "mysecretphrase" {
		t.Fatalf("decoded retired keys %+v", got)
	}
	b2, err := New(st.Config, Options{Now: clock.now, Runtime: st.Servers})
	if err != nil {
		t.Fatal(err)
	}
	be2 := b2.tab.Load().byName["servers"]
	var p persistence
	be2.ck.processCookie(cookieOf("mysecretphrase", origins[0]), be2, clock.now().Unix(), &p)
	if p.server == nil || p.server.cfg.Name != "s1" || p.grace != graceOldKey {
		t.Fatalf("a balancer built from the decoded state: %+v", p)
	}
}

// BenchmarkRouteGrace measures persistence for a request carrying a
// cookie of a retired key during its grace window.
func BenchmarkRouteGrace(b *testing.B) {
	bal, _ := benchBackend(b, 100)
	if err := bal.Apply(SetDynamicCookieKey{Backend: "servers", Key: "next", Grace: time.Hour}, Origin{}); err != nil {
		b.Fatal(err)
	}
	be := bal.tab.Load().byName["servers"]
	cookie := "SERVER_USED=" + DynamicCookie("mysecretphrase", netip.MustParseAddr("10.0.0.7"), 80)
	vals := []string{cookie}
	r := httptest.NewRequest("GET", "/", nil)
	now := bal.now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		vals[0] = cookie
		r.Header["Cookie"] = vals
		p := be.ck.readRequestCookies(r, be, now)
		if p.server == nil || p.grace == 0 {
			b.Fatal("not pinned by the old key")
		}
	}
}

// TestAddrGraceKeepsClients moves a server to another address (another
// loopback origin) with an address grace: a client holding the cookie of
// the old address keeps the server, gets the new cookie, and is
// redispatched once the window ends. Without a grace the move breaks the
// session as in HAProxy.
func TestAddrGraceKeepsClients(t *testing.T) {
	for _, grace := range []time.Duration{0, 10 * time.Minute} {
		t.Run(grace.String(), func(t *testing.T) {
			origins := startOrigins(t, 3)
			moved := origins[2]
			moved.name = "s1-moved" // answers as s1 at its new address
			clock := newFakeClock()
			be := dynBackend(origins[:2])
			h := newHarness(t, be, clock.now)
			if grace > 0 {
				h.apply(SetDynamicCookieAddrGrace{Backend: "servers", Grace: grace})
			}
			old, cur := cookieOf("mysecretphrase", origins[0]), cookieOf("mysecretphrase", moved)
			h.wantPinned("before the move", old, "s1", "")
			h.apply(SetAddr{ServerRef: ServerRef{"servers", "s1"}, Address: moved.addr.Addr().String(), Port: int(moved.addr.Port()), PortSet: true})
			if grace == 0 {
				h.wantRedispatched("old-address cookie without grace", old, "mysecretphrase", []*origin{moved, origins[1]})
				return
			}
			h.wantPinned("old-address cookie in the window", old, "s1-moved", cur)
			h.wantPinned("new cookie", cur, "s1-moved", "")
			sv := h.b.Snapshot().Backend("servers").Server("s1")
			if len(sv.PrevAddrs) != 1 || sv.PrevAddrs[0].Address != origins[0].addr.Addr().String() || sv.PrevAddrs[0].Port != int(origins[0].addr.Port()) {
				t.Fatalf("previous addresses %+v", sv.PrevAddrs)
			}
			if st := sv.Stats.Sticky; st.OldAddr != 1 || st.OldKey != 0 || st.Reissued != 1 {
				t.Fatalf("s1 sticky counters %+v", st)
			}
			// A key rotation with grace inside the window: the cookie of
			// the old key and the old address still leads to s1.
			h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k2", Grace: time.Minute})
			h.wantPinned("old key and old address", old, "s1-moved", cookieOf("k2", moved))
			if st := h.b.Snapshot().Backend("servers").Server("s1").Stats.Sticky; st.OldAddr != 2 || st.OldKey != 1 {
				t.Fatalf("s1 sticky counters %+v", st)
			}
			clock.advance(grace)
			h.wantRedispatched("old-address cookie after the window", cookieOf("k2", origins[0]), "k2", []*origin{moved, origins[1]})
		})
	}
}

// TestAddrGraceOnReload checks that a reload moving a server keeps the
// previous address's cookie valid for the backend's address grace, and
// that the reload keeps the grace setting and the retired keys, which a
// configuration file cannot hold.
func TestAddrGraceOnReload(t *testing.T) {
	origins := startOrigins(t, 3)
	moved := origins[2]
	moved.name = "s1-moved"
	clock := newFakeClock()
	h := newHarness(t, dynBackend(origins[:2]), clock.now)
	h.apply(SetDynamicCookieAddrGrace{Backend: "servers", Grace: 5 * time.Minute})
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k2", Grace: time.Hour})

	// The file as a reload reads it: s1 at the new address, no grace.
	st := h.b.State()
	st.Config.Backends[0].DynamicCookieAddrGrace, st.Config.Backends[0].RetiredKeys = 0, nil
	st.Config.Backends[0].Servers[0].Address, st.Config.Backends[0].Servers[0].Port = moved.addr.Addr().String(), int(moved.addr.Port())
	delete(st.Servers, "servers/s1")
	if err := h.b.Replace(st, Origin{Channel: "import"}, "reload"); err != nil {
		t.Fatal(err)
	}
	bs := h.b.Snapshot().Backend("servers")
	if bs.Config.DynamicCookieAddrGrace != 5*time.Minute || len(bs.RetiredKeys) != 1 {
		t.Fatalf("after the reload: address grace %v, retired keys %+v", bs.Config.DynamicCookieAddrGrace, bs.RetiredKeys)
	}
	h.wantPinned("old-address cookie after the reload", cookieOf("k2", origins[0]), "s1-moved", cookieOf("k2", moved))
	h.wantPinned("old key and address after the reload", cookieOf("mysecretphrase", origins[0]), "s1-moved", cookieOf("k2", moved))
	clock.advance(5 * time.Minute)
	h.wantRedispatched("old-address cookie after the window", cookieOf("k2", origins[0]), "k2", []*origin{moved, origins[1]})
}

// TestAddrGraceReplays checks that a committed address change carries the
// end of its window, so replaying it later ends it at the same time.
func TestAddrGraceReplays(t *testing.T) {
	clock := newFakeClock()
	start := clock.now()
	be := Backend{Name: "servers", Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert, Dynamic: true}, DynamicCookieKey: "k",
		DynamicCookieAddrGrace: 10 * time.Minute,
		Servers:                []Server{{Name: "s1", Address: "10.0.0.1", Port: 80, PortSet: true, Weight: 1}}}
	b, err := New(Config{Backends: []Backend{be}}, Options{Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	initial := b.State()
	var committed []Change
	b.SetCommitter(func(c Commit) error { committed = append(committed, c.Changes...); return nil })
	if err := b.Apply(SetAddr{ServerRef: ServerRef{"servers", "s1"}, Address: "10.0.0.2", Resolved: true}, Origin{Channel: "dns"}); err != nil {
		t.Fatal(err)
	}
	if a := committed[0].(SetAddr); !a.GraceUntil.Equal(start.Add(10 * time.Minute)) {
		t.Fatalf("committed %+v", a)
	}
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{time.Minute, 1}, {10 * time.Minute, 0}} {
		st, err := Replay(initial, committed, start.Add(tc.at))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Servers["servers/s1"].PrevAddrs; len(got) != tc.want || (tc.want == 1 && got[0] != PrevAddr{Address: "10.0.0.1", Port: 80, Until: start.Add(10 * time.Minute)}) {
			t.Fatalf("replayed at +%s: previous addresses %+v", tc.at, got)
		}
	}
}

// TestRotationUnderLoadKeepsEveryClient runs a population of sticky
// clients, each keeping the cookie its responses set, while the key is
// rotated twice and a server moves, with cookie-less load alongside, and
// counts the clients that reached another server than the one they were
// first given: none with grace windows, most without (HAProxy's
// behaviour, the control).
func TestRotationUnderLoadKeepsEveryClient(t *testing.T) {
	for _, grace := range []time.Duration{time.Hour, 0} {
		t.Run("grace="+grace.String(), func(t *testing.T) {
			lost, st := rotateUnderLoad(t, grace)
			t.Logf("grace %s: %d of %d clients lost their server; old-key requests %d, old-address %d, re-issued %d",
				grace, lost, loadClients, st.OldKey, st.OldAddr, st.Reissued)
			switch {
			case grace > 0 && (lost != 0 || st.Reissued == 0 || st.OldKey == 0 || st.OldAddr == 0):
				t.Fatalf("with grace: %d clients lost their server, counters %+v", lost, st)
			case grace == 0 && lost == 0:
				t.Fatalf("without grace no client lost its server: the changes did not happen under load")
			}
		})
	}
}

const loadClients, loadRounds = 60, 25

// rotateUnderLoad runs the population of rotateUnderLoad's test and
// returns how many clients strayed, and the backend's sticky counters.
func rotateUnderLoad(t *testing.T, grace time.Duration) (int, StickyCounters) {
	origins := startOrigins(t, 4)
	moved := origins[3]
	moved.name = "s1" // s1's new address answers as s1
	h := newHarness(t, dynBackend(origins[:3]), nil)
	h.apply(SetDynamicCookieAddrGrace{Backend: "servers", Grace: grace})

	type client struct {
		cookie, server string
		strayed        bool
	}
	pop := make([]client, loadClients)
	for i := range pop {
		r := h.get("/", "")
		if len(r.setCookies) != 1 {
			t.Fatalf("client %d: Set-Cookie %q", i, r.setCookies)
		}
		pop[i] = client{cookie: strings.SplitN(r.setCookies[0], ";", 2)[0], server: r.origin}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: loadClients + 4}
	t.Cleanup(tr.CloseIdleConnections)
	get := func(cookie string) (string, string, error) {
		req, _ := http.NewRequest("GET", h.url+"/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return "", "", err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Origin"), resp.Header.Get("Set-Cookie"), nil
	}

	stop := make(chan struct{})
	var clientsDone, loadDone sync.WaitGroup
	errs := make(chan error, loadClients+2)
	progress := make([]atomic.Int64, loadClients)
	for i := range pop {
		clientsDone.Add(1)
		go func() {
			defer clientsDone.Done()
			defer progress[i].Store(loadRounds)
			c := &pop[i]
			for n := 0; n < loadRounds; n++ {
				origin, sc, err := get(c.cookie)
				if err != nil {
					errs <- fmt.Errorf("client %d: %v", i, err)
					return
				}
				if origin != c.server {
					c.strayed = true
				}
				if sc != "" {
					c.cookie = strings.SplitN(sc, ";", 2)[0]
				}
				progress[i].Store(int64(n + 1))
			}
		}()
	}
	for range 2 {
		loadDone.Add(1)
		go func() { // load without cookies
			defer loadDone.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := get(""); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Change things while the clients run, each once every client has
	// made some progress.
	waitProgress := func(n int64) {
		deadline := time.Now().Add(20 * time.Second)
		for i := range progress {
			for progress[i].Load() < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	waitProgress(3)
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k2", Grace: grace})
	waitProgress(8)
	h.apply(SetAddr{ServerRef: ServerRef{"servers", "s1"}, Address: moved.addr.Addr().String(), Port: int(moved.addr.Port()), PortSet: true})
	waitProgress(13)
	h.apply(SetDynamicCookieKey{Backend: "servers", Key: "k3", Grace: grace})
	clientsDone.Wait()
	close(stop)
	loadDone.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	lost := 0
	for _, c := range pop {
		if c.strayed {
			lost++
		}
	}
	return lost, h.b.Snapshot().Backend("servers").Stats.Sticky
}
