package balancer

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// explainNow is the fixed clock of the explain tests, so that the dates of
// the cookies Explain predicts and the balancer sends are the same.
var explainNow = time.Unix(1795536000, 0)

// cookieDate encodes t as a persistence cookie date.
func cookieDate(t time.Time) string { return string(appendCookieDate(nil, t.Unix())) }

// TestExplainAgreesWithRequests sends each request through a running
// balancer and checks that Explain, asked first, said where it would go,
// which Set-Cookie it would get and which Cookie header the server would
// receive, and that asking counted nothing.
func TestExplainAgreesWithRequests(t *testing.T) {
	recent, idle := cookieDate(explainNow.Add(-time.Minute)), cookieDate(explainNow.Add(-2*time.Hour))
	tooOld := cookieDate(explainNow.Add(-9 * time.Hour))
	static := func(be *Backend) {
		be.Cookie, be.DynamicCookieKey = &CookieConfig{Name: "SRV", Mode: CookieInsert, Indirect: true, NoCache: true}, ""
		for i, c := range []string{"a", "b", "c"} {
			be.Servers[i].Cookie = c
		}
	}
	dated := func(be *Backend) {
		static(be)
		be.Cookie.MaxIdle, be.Cookie.MaxLife = 30*time.Minute, 8*time.Hour
		be.Cookie.HTTPOnly, be.Cookie.Secure, be.Cookie.Domains, be.Cookie.Attrs = true, true, []string{".example.com"}, []string{"SameSite=Lax"}
	}
	tests := []struct {
		name      string
		configure func(be *Backend)
		changes   []Change
		stop      string // an origin to stop before the request
		cookie    string // the request's Cookie header; "dyn:sN" is sN's dynamic cookie
		verdict   CookieVerdict
		route     Route
		named     string
		fallback  bool // served by a Fallback target
	}{
		{name: "no cookie", cookie: "", verdict: VerdictNoCookie, route: RouteBalance},
		{name: "dynamic cookie with the key", cookie: "SERVER_USED=dyn:s2", verdict: VerdictValid, route: RouteCookie, named: "s2"},
		{name: "other cookies around it", cookie: "a=1; SERVER_USED=dyn:s3; b=2", verdict: VerdictValid, route: RouteCookie, named: "s3"},
		{name: "unknown value", cookie: "SERVER_USED=0123456789abcdef", verdict: VerdictUnknown, route: RouteBalance},
		{name: "empty value", cookie: "SERVER_USED=", verdict: VerdictUnknown, route: RouteBalance},
		{name: "server in maintenance", changes: []Change{SetAdminState{ServerRef{"servers", "s2"}, Maint}},
			cookie: "SERVER_USED=dyn:s2", verdict: VerdictMaint, route: RouteBalance, named: "s2"},
		{name: "server down", changes: []Change{SetHealth{ServerRef{"servers", "s2"}, HealthDown}},
			cookie: "SERVER_USED=dyn:s2", verdict: VerdictDown, route: RouteBalance, named: "s2"},
		{name: "draining server keeps its clients", changes: []Change{SetAdminState{ServerRef{"servers", "s2"}, Drain}},
			cookie: "SERVER_USED=dyn:s2", verdict: VerdictValid, route: RouteCookie, named: "s2"},
		{name: "stopping server keeps its clients", changes: []Change{SetHealth{ServerRef{"servers", "s2"}, HealthStopping}},
			cookie: "SERVER_USED=dyn:s2", verdict: VerdictValid, route: RouteCookie, named: "s2"},
		{name: "option persist sends to a down server", configure: func(be *Backend) { be.Persist = true },
			changes: []Change{SetHealth{ServerRef{"servers", "s2"}, HealthDown}},
			cookie:  "SERVER_USED=dyn:s2", verdict: VerdictPersist, route: RouteCookie, named: "s2"},
		{name: "option persist sends to a server in maintenance", configure: func(be *Backend) { be.Persist = true },
			changes: []Change{SetAdminState{ServerRef{"servers", "s2"}, Maint}},
			cookie:  "SERVER_USED=dyn:s2", verdict: VerdictPersist, route: RouteCookie, named: "s2"},
		{name: "option persist and redispatch when the server does not answer",
			configure: func(be *Backend) { be.Persist, be.Redispatch, be.TimeoutConnect = true, true, 100*time.Millisecond },
			changes:   []Change{SetHealth{ServerRef{"servers", "s2"}, HealthDown}}, stop: "s2",
			cookie: "SERVER_USED=dyn:s2", verdict: VerdictPersist, route: RouteCookie, named: "s2", fallback: true},
		{name: "option persist without redispatch fails when the server does not answer",
			configure: func(be *Backend) { be.Persist, be.Retries, be.TimeoutConnect = true, 1, 100*time.Millisecond },
			changes:   []Change{SetHealth{ServerRef{"servers", "s2"}, HealthDown}}, stop: "s2",
			cookie: "SERVER_USED=dyn:s2", verdict: VerdictPersist, route: RouteCookie, named: "s2", fallback: true},
		{name: "cookie of a backup server", configure: func(be *Backend) { be.Servers[2].Backup = true },
			cookie: "SERVER_USED=dyn:s3", verdict: VerdictValid, route: RouteCookie, named: "s3"},
		{name: "backup takes over", configure: func(be *Backend) { be.Servers[2].Backup = true },
			changes: []Change{SetAdminState{ServerRef{"servers", "s1"}, Maint}, SetAdminState{ServerRef{"servers", "s2"}, Maint}},
			cookie:  "SERVER_USED=dyn:s1", verdict: VerdictMaint, route: RouteBalance, named: "s1"},
		{name: "no usable server", changes: []Change{SetAdminState{ServerRef{"servers", "s1"}, Maint},
			SetAdminState{ServerRef{"servers", "s2"}, Maint}, SetAdminState{ServerRef{"servers", "s3"}, Maint}},
			cookie: "SERVER_USED=dyn:s1", verdict: VerdictMaint, route: RouteNoServer, named: "s1"},
		{name: "dynamic cookies off", changes: []Change{SetDynamicCookies{Backend: "servers", Enabled: false}},
			cookie: "SERVER_USED=dyn:s2", verdict: VerdictUnknown, route: RouteBalance},
		{name: "static cookie, insert indirect", configure: static,
			cookie: "x=1; SRV=b; y=2", verdict: VerdictValid, route: RouteCookie, named: "s2"},
		{name: "maxidle fresh", configure: dated,
			cookie: "SRV=b|" + recent + "|" + recent, verdict: VerdictValid, route: RouteCookie, named: "s2"},
		{name: "maxidle expired", configure: dated,
			cookie: "SRV=b|" + idle + "|" + idle, verdict: VerdictIdle, route: RouteBalance, named: "s2"},
		{name: "maxlife expired", configure: dated,
			cookie: "SRV=b|" + recent + "|" + tooOld, verdict: VerdictOld, route: RouteBalance, named: "s2"},
		{name: "date from the future", configure: dated,
			cookie: "SRV=b|" + cookieDate(explainNow.Add(48*time.Hour)), verdict: VerdictIdle, route: RouteBalance, named: "s2"},
		{name: "no dates yet", configure: dated,
			cookie: "SRV=c", verdict: VerdictValid, route: RouteCookie, named: "s3"},
		{name: "prefix mode", configure: func(be *Backend) {
			static(be)
			be.Cookie = &CookieConfig{Name: "JSESSIONID", Mode: CookiePrefix}
		}, cookie: "JSESSIONID=b~app-session-42; theme=dark", verdict: VerdictValid, route: RouteCookie, named: "s2"},
		{name: "prefix mode, unknown prefix", configure: func(be *Backend) {
			static(be)
			be.Cookie = &CookieConfig{Name: "JSESSIONID", Mode: CookiePrefix}
		}, cookie: "JSESSIONID=z~app", verdict: VerdictUnknown, route: RouteBalance},
		{name: "rewrite mode", configure: func(be *Backend) {
			static(be)
			be.Cookie = &CookieConfig{Name: "SRV", Mode: CookieRewrite}
		}, cookie: "SRV=c", verdict: VerdictValid, route: RouteCookie, named: "s3"},
		{name: "insert without indirect", configure: func(be *Backend) {
			static(be)
			be.Cookie.Indirect = false
		}, cookie: "SRV=a", verdict: VerdictValid, route: RouteCookie, named: "s1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			origins := startOrigins(t, 3)
			be := dynBackend(origins)
			if tc.configure != nil {
				tc.configure(&be)
			}
			h := newHarness(t, be, func() time.Time { return explainNow })
			for _, c := range tc.changes {
				h.apply(c)
			}
			for _, o := range origins {
				if o.name == tc.stop {
					o.srv.Close()
				}
			}
			cookie := tc.cookie
			for _, o := range origins {
				cookie = strings.ReplaceAll(cookie, "dyn:"+o.name, DynamicCookie(be.DynamicCookieKey.Reveal(), o.addr.Addr(), int32(o.addr.Port())))
			}

			before := h.b.Snapshot().Backends
			e, err := h.b.Explain("servers", cookie, explainNow)
			if err != nil {
				t.Fatalf("Explain: %v", err)
			}
			if after := h.b.Snapshot().Backends; !reflect.DeepEqual(before, after) {
				t.Errorf("Explain changed the backend's state or counters")
			}
			if e.Verdict != tc.verdict || e.Route != tc.route || e.Named != tc.named {
				t.Fatalf("verdict %v (%c), route %v, named %q; want %v, %v, %q", e.Verdict, e.Verdict.Code(), e.Route, e.Named, tc.verdict, tc.route, tc.named)
			}

			targets := e.Targets
			if tc.fallback {
				targets = e.Fallback
			}
			if len(targets) == 0 {
				if rep := h.get("/", cookie); rep.status != 503 {
					t.Fatalf("Explain predicts a 503 (route %v, fallback %v); the request got %d from %q", e.Route, e.Fallback, rep.status, rep.origin)
				}
				return
			}
			// Round robin over equal weights reaches every candidate in
			// two rounds, and only candidates.
			reached := map[string]bool{}
			for range 2 * len(targets) {
				rep := h.get("/", cookie)
				i := slices.IndexFunc(targets, func(x Target) bool { return x.Server == rep.origin })
				if rep.status != 200 || i < 0 {
					t.Fatalf("request got %d from %q; Explain predicts one of %+v", rep.status, rep.origin, targets)
				}
				reached[rep.origin] = true
				if got := strings.Join(rep.setCookies, "\n"); got != targets[i].SetCookie {
					t.Errorf("response from %s set cookie %q; Explain predicts %q", rep.origin, got, targets[i].SetCookie)
				}
				if got, want := rep.seenCookie, strings.Join(e.Forwarded, "\n"); got != want {
					t.Errorf("server received Cookie %q; Explain predicts %q", got, want)
				}
			}
			if len(reached) != len(targets) {
				t.Errorf("requests reached %v; Explain predicts %+v", reached, targets)
			}
		})
	}
}

// TestExplainReadsTheCookie checks the parts of the cookie Explain reports
// besides the route: value, dates, application value, the server a
// dynamic cookie would name were dynamic cookies on, and errors.
func TestExplainReadsTheCookie(t *testing.T) {
	origins := startOrigins(t, 3)
	be := dynBackend(origins)
	be.Cookie.MaxIdle = time.Hour
	h := newHarness(t, be, func() time.Time { return explainNow })
	s2 := DynamicCookie(be.DynamicCookieKey.Reveal(), origins[1].addr.Addr(), int32(origins[1].addr.Port()))
	last := explainNow.Add(-10 * time.Minute).Truncate(4 * time.Second)

	e, err := h.b.Explain("servers", "SERVER_USED="+s2+"|"+cookieDate(last), explainNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.Value != s2+"|"+cookieDate(last) || e.ServerValue != s2 || !e.LastSeen.Equal(last) || !e.FirstSeen.IsZero() {
		t.Errorf("value %q, server part %q, last seen %v, first seen %v", e.Value, e.ServerValue, e.LastSeen, e.FirstSeen)
	}
	if want := "SERVER_USED=" + s2 + "|" + cookieDate(explainNow) + "; path=/"; e.Targets[0].SetCookie != want {
		t.Errorf("Set-Cookie %q, want %q (refreshed date)", e.Targets[0].SetCookie, want)
	}

	h.apply(SetDynamicCookies{Backend: "servers", Enabled: false})
	if e, _ := h.b.Explain("servers", "SERVER_USED="+s2, explainNow); e.DynamicOff != "s2" || e.Verdict != VerdictUnknown {
		t.Errorf("with dynamic cookies off: verdict %v, dynamic owner %q; want invalid, s2", e.Verdict, e.DynamicOff)
	}

	if _, err := h.b.Explain("nosuch", "", explainNow); !errors.Is(err, ErrNoSuchBackend) {
		t.Errorf("unknown backend: %v", err)
	}
	h.apply(SetCookie{Backend: "servers", Cookie: nil})
	if _, err := h.b.Explain("servers", "", explainNow); !errors.Is(err, ErrNoCookie) {
		t.Errorf("backend without cookie: %v", err)
	}
}

// TestExplainMovesNothing checks that explaining does not move round robin
// on: requests between which Explain runs go where they would without it.
func TestExplainMovesNothing(t *testing.T) {
	var seq [2][]string
	for run := range seq {
		origins := startOrigins(t, 3)
		h := newHarness(t, dynBackend(origins), nil)
		for range 6 {
			if run == 1 {
				for range 5 {
					if _, err := h.b.Explain("servers", "", time.Now()); err != nil {
						t.Fatal(err)
					}
				}
			}
			seq[run] = append(seq[run], h.get("/", "").origin)
		}
	}
	if !slices.Equal(seq[0], seq[1]) {
		t.Errorf("servers chosen %v without Explain, %v with it", seq[0], seq[1])
	}
}
