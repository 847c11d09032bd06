package web

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"tether/balancer"
	"tether/balancer/haproxycfg"
	"tether/balancer/runtimeapi"
	"tether/templates"
)

// Explain lets the hub's fake balancer stand where the console needs one;
// the hub never calls it.
func (f *fakeBalancer) Explain(string, string, time.Time) (balancer.Explanation, error) {
	return balancer.Explanation{}, balancer.ErrNoSuchBackend
}

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

func TestCookieHeader(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"aaa", "SRV=aaa"},
		{"  aaa|ZVPxA|ZVPxA ", "SRV=aaa|ZVPxA|ZVPxA"},
		{"s1~YWJj==", "SRV=s1~YWJj=="},
		{"SRV=aaa", "SRV=aaa"},
		{"other=1; SRV=aaa", "other=1; SRV=aaa"},
		{"Cookie: SRV=aaa; x=y", "SRV=aaa; x=y"},
		{"cookie:SRV=aaa", "SRV=aaa"},
		{"Set-Cookie: SRV=aaa|ZVPxA; path=/; HttpOnly", "SRV=aaa|ZVPxA"},
		{"=aaa", "SRV==aaa"},
		{"", "SRV="},
	} {
		if got := cookieHeader(tc.in, "SRV"); got != tc.want {
			t.Errorf("cookieHeader(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// inspectNow is the clock of the inspector tests.
var inspectNow = time.Unix(1795536000, 0)

// inspectBalancer starts a balancer on a configuration whose backend "be"
// has servers s1 (10.0.0.1), s2 (10.0.0.2), s3 (10.0.0.3, backup) and s4
// (10.0.0.4), runs the Runtime API commands, and returns it with the
// dynamic cookie of each server.
func inspectBalancer(t testing.TB, backendLines string, commands ...string) (*balancer.Balancer, map[string]string) {
	t.Helper()
	text := "backend be\n" + backendLines + `
    dynamic-cookie-key k3y
    server s1 10.0.0.1:80
    server s2 10.0.0.2:80
    server s3 10.0.0.3:80 backup
    server s4 10.0.0.4:80
`
	cfg, _, err := haproxycfg.Parse("inspect.cfg", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	bal, err := balancer.New(cfg, balancer.Options{Now: func() time.Time { return inspectNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bal.Close)
	disp := runtimeapi.NewDispatcher(bal, runtimeapi.DispatcherOptions{})
	for _, c := range commands {
		if reply := disp.Execute(context.Background(), c, balancer.LevelAdmin, balancer.Origin{}); strings.TrimSpace(reply) != "" {
			t.Fatalf("%s: %s", c, reply)
		}
	}
	dyn := map[string]string{}
	for i := 1; i <= 4; i++ {
		dyn["s"+strconv.Itoa(i)] = balancer.DynamicCookie("k3y", netip.MustParseAddr("10.0.0."+strconv.Itoa(i)), 80)
	}
	return bal, dyn
}

// TestInspectResult checks what the inspector says of a pasted cookie,
// answered by the balancer's own persistence code.
func TestInspectResult(t *testing.T) {
	const dynamic = "    cookie SRV insert indirect nocache dynamic\n"
	const dated = "    cookie SRV insert indirect nocache httponly secure dynamic domain .example.com maxidle 30m maxlife 8h attr SameSite=Lax\n"
	recent, idle := encodeCookieDate(inspectNow.Add(-time.Minute)), encodeCookieDate(inspectNow.Add(-2*time.Hour))
	tests := []struct {
		name      string
		backend   string
		commands  []string
		pasted    string // "dyn:sN" is sN's dynamic cookie
		code      string
		server    string
		outcome   string
		setCookie string // a Set-Cookie line the response may get ("" none)
		forwarded string
		expired   bool
		line      string // the cookie line after the commands, when they change it
	}{
		{name: "valid", backend: dynamic, pasted: "dyn:s1", code: "V", server: "s1", outcome: "Goes to s1 (pinned)."},
		{name: "header form keeps other cookies", backend: dynamic, pasted: "Cookie: a=1; SRV=dyn:s2; b=2", code: "V", server: "s2",
			outcome: "Goes to s2 (pinned).", forwarded: "a=1; b=2"},
		{name: "draining", backend: dynamic, commands: []string{"set server be/s2 state drain"}, pasted: "dyn:s2", code: "V", server: "s2",
			outcome: "still takes those pinned to it"},
		{name: "maintenance", backend: dynamic, commands: []string{"set server be/s2 state maint"}, pasted: "dyn:s2", code: "D", server: "s2",
			outcome: "s2 is MAINT: the request is redispatched", setCookie: "SRV=dyn:s1; path=/"},
		{name: "down", backend: dynamic, commands: []string{"set server be/s2 health down"}, pasted: "dyn:s2", code: "D", server: "s2",
			outcome: "s2 is DOWN: the request is redispatched", setCookie: "SRV=dyn:s4; path=/"},
		{name: "option persist and a down server", backend: dynamic + "    option persist\n    option redispatch\n",
			commands: []string{"set server be/s2 health down"}, pasted: "dyn:s2", code: "D", server: "s2",
			outcome: "s2 is DOWN, but option persist sends the request there anyway; if it does not answer, option redispatch sends it to one of s1, s4."},
		{name: "option persist without redispatch", backend: dynamic + "    option persist\n",
			commands: []string{"set server be/s2 state maint"}, pasted: "dyn:s2", code: "D", server: "s2",
			outcome: "if it does not answer, the request fails (503)"},
		{name: "backup takes over", backend: dynamic, commands: []string{"set server be/s1 state maint", "set server be/s2 state maint", "set server be/s4 state maint"},
			pasted: "other=1", code: "N", outcome: "The request carries no SRV cookie; roundrobin picks s3.", forwarded: "other=1", setCookie: "SRV=dyn:s3; path=/"},
		{name: "no usable server", backend: dynamic, commands: []string{"set server be/s1 state maint", "set server be/s2 state maint",
			"set server be/s3 state maint", "set server be/s4 state maint"}, pasted: "dyn:s1", code: "D", server: "s1", outcome: "no server is usable: the request gets a 503."},
		{name: "unknown value", backend: dynamic, pasted: "zzz", code: "I", outcome: "the cookie is invalid"},
		{name: "empty value is invalid too", backend: dynamic, pasted: "SRV=", code: "I", outcome: "the cookie is invalid"},
		{name: "dynamic cookies off", backend: dynamic, commands: []string{"disable dynamic-cookie backend be"}, pasted: "dyn:s2", code: "I",
			outcome: "This is s2's dynamic cookie, but dynamic cookies are off", setCookie: "SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/",
			line: "cookie SRV insert indirect nocache"},
		{name: "fresh dates", backend: dated, pasted: "dyn:s1|" + recent + "|" + recent, code: "V", server: "s1",
			setCookie: "SRV=dyn:s1|" + encodeCookieDate(inspectNow) + "|" + recent + "; path=/; domain=.example.com; HttpOnly; Secure; SameSite=Lax"},
		{name: "maxidle expired", backend: dated, pasted: "dyn:s1|" + idle + "|" + idle, code: "E", server: "s1", expired: true,
			outcome: "expired", setCookie: "SRV=dyn:s2|" + encodeCookieDate(inspectNow) + "|" + encodeCookieDate(inspectNow) + "; path=/; domain=.example.com; HttpOnly; Secure; SameSite=Lax"},
		{name: "maxlife expired", backend: dated, pasted: "dyn:s1|" + recent + "|" + encodeCookieDate(inspectNow.Add(-9*time.Hour)), code: "O", server: "s1", expired: true, outcome: "expired"},
		{name: "prefix mode", backend: "    cookie JSESSIONID prefix dynamic\n", pasted: "dyn:s1~app-session", code: "V", server: "s1",
			outcome: "Goes to s1 (pinned).", forwarded: "JSESSIONID=app-session"},
		{name: "set-cookie pasted", backend: dynamic, pasted: "Set-Cookie: SRV=dyn:s4; path=/", code: "V", server: "s4"},
		{name: "old key in its grace window", backend: dynamic, commands: []string{"set dynamic-cookie-key backend be n3w grace 1h"}, pasted: "dyn:s2", code: "V", server: "s2",
			outcome:   "Goes to s2 (pinned). The cookie was computed with a previous key, still honoured in its grace window",
			setCookie: "SRV=" + balancer.DynamicCookie("n3w", netip.MustParseAddr("10.0.0.2"), 80) + "; path=/"},
		{name: "old key after a rotation without grace", backend: dynamic, commands: []string{"set dynamic-cookie-key backend be n3w"}, pasted: "dyn:s2", code: "I",
			outcome: "the cookie is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bal, dyn := inspectBalancer(t, tc.backend, tc.commands...)
			expand := func(s string) string {
				for n, c := range dyn {
					s = strings.ReplaceAll(s, "dyn:"+n, c)
				}
				return s
			}
			snap := bal.Snapshot()
			b := snap.Backend("be")
			e, err := bal.Explain("be", cookieHeader(expand(tc.pasted), b.Config.Cookie.Name), inspectNow)
			if err != nil {
				t.Fatal(err)
			}
			r := inspectResult(e, b, inspectNow)
			if r.Code != tc.code || r.Server != tc.server || !strings.Contains(r.Outcome, tc.outcome) || (r.Expired != "") != tc.expired {
				t.Fatalf("code %s, server %q, expired %q, outcome %q; want %s, %q, %v, %q", r.Code, r.Server, r.Expired, r.Outcome, tc.code, tc.server, tc.expired, tc.outcome)
			}
			if want := expand(tc.setCookie); want != "" && !slices.ContainsFunc(r.Targets, func(x templates.InspectTarget) bool { return x.SetCookie == want }) {
				t.Errorf("no target sets %q: %+v", want, r.Targets)
			}
			if r.Forwarded != tc.forwarded {
				t.Errorf("server receives %q, want %q", r.Forwarded, tc.forwarded)
			}
			want := strings.TrimSpace(strings.Split(tc.backend, "\n")[0])
			if tc.line != "" {
				want = tc.line
			}
			if r.CookieLine != want {
				t.Errorf("cookie line %q, want %q", r.CookieLine, want)
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
	// An unknown value: the page shows every Set-Cookie line whole.
	_, doc, _ = e.get(c, "/inspect?cookie=0123456789abcdef")
	res = find(doc, func(n *html.Node) bool { return hasClass(n, "result") })
	if len(res) != 1 {
		t.Fatalf("%d results for an unknown value", len(res))
	}
	page := text(res[0])
	for _, want := range []string{"cookie SERVERID insert indirect nocache dynamic", "I invalid cookie",
		"Set-Cookie: SERVERID=" + e.server("s1").Cookie + "; path=/", "Set-Cookie: SERVERID=" + e.server("s3").Cookie + "; path=/",
		"no Cookie header"} {
		if !strings.Contains(page, want) {
			t.Errorf("inspector lacks %q:\n%s", want, page)
		}
	}
	if r, _, _ := e.get(e.login("victor"), "/inspect?cookie="+s2.Cookie); r.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer opened the inspector: status %d", r.StatusCode)
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

// FuzzInspect sends whatever an operator may paste through the inspector's
// reading and the balancer's explanation: a header form of the input is
// kept whole, a bare value gets the cookie's name, and nothing fails.
func FuzzInspect(f *testing.F) {
	for _, s := range []string{"aaa", "SRV=aaa|ZVPxA|awW3h", "Cookie: SRV=a~b; x=y", "=|||", "~", "a|\xff\xfe|ZZZZZ", "", "Set-Cookie: SRV=x; path=/", "a\nSRV=b"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	insert, _ := inspectBalancer(f, "    cookie SRV insert indirect nocache dynamic maxidle 30m maxlife 8h\n")
	prefix, _ := inspectBalancer(f, "    cookie SRV prefix dynamic\n")
	f.Fuzz(func(t *testing.T, pasted string, isPrefix bool) {
		bal := insert
		if isPrefix {
			bal = prefix
		}
		h := cookieHeader(pasted, "SRV")
		if !strings.Contains(h, "=") {
			t.Fatalf("cookie header %q from %q has no '='", h, pasted)
		}
		e, err := bal.Explain("be", h, inspectNow)
		if err != nil {
			t.Fatalf("Explain(%q): %v", h, err)
		}
		r := inspectResult(e, bal.Snapshot().Backend("be"), inspectNow)
		if r.Outcome == "" || r.Code == "" {
			t.Fatalf("no outcome for %q: %+v", h, r)
		}
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
		line := setCookieCommand("b", c).Line()
		if reply := disp.Execute(context.Background(), line, balancer.LevelAdmin, balancer.Origin{}); reply != "\n" {
			t.Fatalf("%q replied %q", line, reply)
		}
		if got := bal.Snapshot().Backend("b").Config.Cookie; !reflect.DeepEqual(got, c) {
			t.Fatalf("%q gave the balancer %+v, want %+v", line, got, c)
		}
	})
}
