package web

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"tether/balancer"
	"tether/balancer/haproxycfg"
	"tether/balancer/runtimeapi"
)

// encodeCookieDate is HAProxy's s30tob64 of a time, for building inputs.
func encodeCookieDate(t time.Time) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	v := uint32((t.Unix()+3)>>2) & (1<<30 - 1)
	var b [5]byte
	for i := 4; i >= 0; i-- {
		b[i] = alphabet[v&63]
		v >>= 6
	}
	return string(b[:])
}

func TestDecodeCookieDate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"ZVPxA", 1700000000, true},
		{"awW3h", 1795536772, true}, // 1795536771 rounded up to 4-second units
		{"AAAAA", 0, false},
		{"ZVPx", 0, false},
		{"ZVP-A", 0, false},
	} {
		got, ok := decodeCookieDate(tc.in)
		if ok != tc.ok || (ok && got.Unix() != tc.want) {
			t.Errorf("decodeCookieDate(%q) = %v, %v; want %d, %v", tc.in, got.Unix(), ok, tc.want, tc.ok)
		}
	}
	now := time.Unix(1795536000, 0)
	if got, _ := decodeCookieDate(encodeCookieDate(now)); got.Unix() != now.Unix() {
		t.Errorf("round trip of %v gives %v", now.Unix(), got.Unix())
	}
}

func testBackend(mode balancer.CookieMode) *balancer.BackendStatus {
	return &balancer.BackendStatus{
		Config: balancer.Backend{Name: "be", Cookie: &balancer.CookieConfig{Name: "SRV", Mode: mode, MaxIdle: 30 * time.Minute, MaxLife: 8 * time.Hour, Dynamic: true}},
		Servers: []balancer.ServerStatus{
			{Config: balancer.Server{Name: "s1", Address: "10.0.0.1", Weight: 1}, Cookie: "aaa", Op: balancer.OpRunning, Weight: 1, CheckEnabled: true, CookieDynamic: true},
			{Config: balancer.Server{Name: "s2", Address: "10.0.0.2", Weight: 1}, Cookie: "bbb", Op: balancer.OpRunning, Weight: 1, Admin: balancer.AdminFMaint},
			{Config: balancer.Server{Name: "s3", Address: "10.0.0.3", Weight: 1}, Cookie: "ccc", Op: balancer.OpRunning, Weight: 1, Admin: balancer.AdminFDrain},
			{Config: balancer.Server{Name: "s4", Address: "10.0.0.4", Weight: 1}, Cookie: "ddd", Op: balancer.OpStopped, Weight: 1, CheckEnabled: true},
		},
	}
}

func TestInspectCookie(t *testing.T) {
	now := time.Unix(1795536000, 0)
	recent, old := encodeCookieDate(now.Add(-time.Minute)), encodeCookieDate(now.Add(-2*time.Hour))
	tests := []struct {
		name    string
		mode    balancer.CookieMode
		in      string
		server  string
		expired bool
		outcome string
	}{
		{"plain value", balancer.CookieInsert, "aaa", "s1", false, "Goes to s1 (pinned)"},
		{"with name and fresh date", balancer.CookieInsert, "SRV=aaa|" + recent, "s1", false, "Goes to s1 (pinned)"},
		{"header form", balancer.CookieInsert, "Cookie: SRV=aaa; other=1", "s1", false, "Goes to s1"},
		{"idle too long", balancer.CookieInsert, "aaa|" + old, "s1", true, "expired"},
		{"maxlife exceeded", balancer.CookieInsert, "aaa|" + recent + "|" + encodeCookieDate(now.Add(-9*time.Hour)), "s1", true, "expired"},
		{"maintenance server", balancer.CookieInsert, "bbb", "s2", false, "redispatched"},
		{"down server", balancer.CookieInsert, "ddd", "s4", false, "redispatched"},
		{"draining server keeps its clients", balancer.CookieInsert, "ccc", "s3", false, "still takes clients pinned"},
		{"unknown value", balancer.CookieInsert, "zzz", "", false, "invalid"},
		{"prefix mode", balancer.CookiePrefix, "aaa~app-session", "s1", false, "Goes to s1"},
		{"empty", balancer.CookieInsert, "SRV=", "", false, "ignored"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := inspectCookie(testBackend(tc.mode), tc.in, now)
			if r.Server != tc.server || (r.Expired != "") != tc.expired || !strings.Contains(r.Outcome, tc.outcome) {
				t.Fatalf("server %q expired %q outcome %q; want %q, %v, %q", r.Server, r.Expired, r.Outcome, tc.server, tc.expired, tc.outcome)
			}
			if tc.mode == balancer.CookiePrefix && r.AppValue != "app-session" {
				t.Errorf("application value %q", r.AppValue)
			}
		})
	}
}

func TestInspectorAndPinPages(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("olga")
	s2 := e.server("s2")
	_, doc, _ := e.get(c, "/inspect?cookie="+url.QueryEscape("SERVERID="+s2.Cookie))
	res := find(doc, func(n *html.Node) bool { return hasClass(n, "result") })
	if len(res) != 1 || !strings.Contains(text(res[0]), "Goes to s2 (pinned).") {
		t.Fatalf("inspector does not name s2")
	}
	r, body := e.post(c, "/inspect/pin", url.Values{"backend": {"servers"}, "server": {"s3"}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("pin: status %d", r.StatusCode)
	}
	var pinned *http.Cookie
	for _, ck := range r.Cookies() {
		if ck.Name == "SERVERID" {
			pinned = ck
		}
	}
	if pinned == nil || pinned.Value != e.server("s3").Cookie || pinned.Path != "/" {
		t.Fatalf("pin cookie %+v, want SERVERID=%s; path=/", pinned, e.server("s3").Cookie)
	}
	if !strings.Contains(body, "127.0.0.1:8080") || !strings.Contains(body, "curl -b &#39;SERVERID="+pinned.Value) {
		t.Errorf("pin page lacks the reachable frontend or the curl line")
	}
	// The browser holding that cookie is sent to s3 by the balancer.
	req, _ := http.NewRequest(http.MethodGet, e.frontend.URL+"/", nil)
	req.AddCookie(pinned)
	fr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request with the pinned cookie: %v", err)
	}
	fr.Body.Close()
	if got := fr.Header.Get("X-Origin"); got != "s3" {
		t.Errorf("pinned request served by %q, want s3", got)
	}
}

func FuzzSplitCookie(f *testing.F) {
	for _, s := range []string{"aaa", "SRV=aaa|ZVPxA|awW3h", "Cookie: SRV=a~b; x=y", "=|||", "~", "a|\xff\xfe|ZZZZZ", ""} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, prefix bool) {
		mode := balancer.CookieInsert
		if prefix {
			mode = balancer.CookiePrefix
		}
		p := splitCookie(raw, mode)
		if !prefix && strings.Contains(p.value, "|") {
			t.Fatalf("value %q keeps a date separator", p.value)
		}
		if prefix && strings.Contains(p.value, "~") {
			t.Fatalf("value %q keeps the prefix delimiter", p.value)
		}
		for _, d := range []string{p.last, p.first} {
			if tm, ok := decodeCookieDate(d); ok && (tm.Unix() <= 0 || tm.Unix() >= 1<<32) {
				t.Fatalf("date %q decodes out of range: %v", d, tm)
			}
		}
		_ = inspectCookie(testBackend(mode), raw, time.Unix(1795536000, 0))
	})
}

// FuzzParseCookieForm sends every form the parser accepts through a real
// Runtime API dispatcher as the console does: the escaped command must give
// the balancer exactly the parsed cookie line, and nothing else.
func FuzzParseCookieForm(f *testing.F) {
	f.Add("SERVERID", "insert", ".example.com", "30m", "8h", "SameSite=Lax", true, true)
	f.Add("a b", "rewrite", "x;y", "soon", "", "a;b", true, false)
	f.Add("a;b<<", "insert", "", "", "", "x y\nends<<\nback\\slash", false, true)
	cfg, _, err := haproxycfg.Parse("fuzz.cfg", []byte("backend b\n    cookie C insert\n    server s 127.0.0.1:1\n"))
	if err != nil {
		f.Fatal(err)
	}
	bal, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer bal.Close()
	disp := runtimeapi.NewDispatcher(bal, runtimeapi.DispatcherOptions{})
	f.Fuzz(func(t *testing.T, name, mode, domains, maxidle, maxlife, attrs string, indirect, dynamic bool) {
		c, problem := parseCookieForm(templateCookie{Name: name, Mode: mode, Domains: domains, MaxIdle: maxidle,
			MaxLife: maxlife, Attrs: attrs, Indirect: indirect, Dynamic: dynamic})
		if problem != "" {
			if c != nil {
				t.Fatalf("config %+v returned with problem %q", c, problem)
			}
			return
		}
		if c.Name != name {
			t.Fatalf("cookie name %q, want %q", c.Name, name)
		}
		line := setCookieCommand("b", c)
		if reply := disp.Execute(context.Background(), line, balancer.LevelAdmin, balancer.Origin{}); reply != "\n" {
			t.Fatalf("%q replied %q", line, reply)
		}
		if got := bal.Snapshot().Backend("b").Config.Cookie; !reflect.DeepEqual(got, c) {
			t.Fatalf("%q gave the balancer %+v, want %+v", line, got, c)
		}
	})
}
