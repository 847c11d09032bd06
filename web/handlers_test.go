package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"tether/balancer"
	"tether/store"
	"tether/templates"
)

type templateCookie = templates.CookieForm

func TestLoginAndSessionCookie(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.client()

	res, _, _ := e.get(c, "/backends/servers")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Fbackends%2Fservers" {
		t.Fatalf("anonymous GET: status %d location %q, want 303 to the login page", res.StatusCode, res.Header.Get("Location"))
	}

	res, body := e.post(c, "/login", url.Values{"name": {"alice"}, "password": {"wrong"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password.") {
		t.Fatalf("bad password: status %d, want 401 with the message", res.StatusCode)
	}
	if strings.Contains(body, "wrong") {
		t.Errorf("the login page echoes the password")
	}

	res, _ = e.post(c, "/login", url.Values{"name": {"alice"}, "password": {testPassword("alice")}, "next": {"/backends/servers"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/backends/servers" {
		t.Fatalf("login: status %d location %q", res.StatusCode, res.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure on plain HTTP", sc)
	}

	res, doc, _ := e.get(c, "/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("overview after login: status %d", res.StatusCode)
	}
	if got := text(find(doc, func(n *html.Node) bool { return n.Data == "span" && hasClass(n, "who") })[0]); !strings.HasPrefix(got, "alice") {
		t.Errorf("header shows user %q, want alice", got)
	}

	res, _ = e.post(c, "/logout", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", res.StatusCode)
	}
	res, _, _ = e.get(c, "/")
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout GET / gives %d, want a redirect to the login page", res.StatusCode)
	}
}

func TestSecureCookieOption(t *testing.T) {
	e := newEnv(t, Options{SecureCookies: true})
	c := e.client()
	res, _ := e.post(c, "/login", url.Values{"name": {"olga"}, "password": {testPassword("olga")}})
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie {
			session = ck
		}
	}
	if session == nil || !session.Secure {
		t.Fatalf("session cookie %+v: want one, Secure with SecureCookies set", session)
	}
	res, _ = e.post(c, "/logout", nil)
	for _, ck := range res.Cookies() {
		if ck.Name == sessionCookie && !ck.Secure {
			t.Errorf("the sign-out's expired session cookie is not Secure")
		}
	}
}

func hasClass(n *html.Node, c string) bool {
	v, _ := attr(n, "class")
	for _, f := range strings.Fields(v) {
		if f == c {
			return true
		}
	}
	return false
}

func TestAttemptLimiterBounded(t *testing.T) {
	l := newAttemptLimiter(2, time.Minute, 100)
	now := time.Unix(1000, 0)
	for i := 0; i < 1000; i++ {
		l.take("k"+strconv.Itoa(i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.len(); n > 100 {
		t.Fatalf("limiter holds %d keys, want at most 100", n)
	}
	l.take("x", now)
	l.take("x", now)
	if l.blocked("x", now.Add(30*time.Second)) == 0 {
		t.Errorf("key with 2 failures is not blocked")
	}
	if l.blocked("x", now.Add(61*time.Second)) != 0 {
		t.Errorf("key still blocked after its window")
	}
}

func TestOverviewShowsServers(t *testing.T) {
	e := newEnv(t, Options{})
	for _, n := range []string{"s1", "s2", "s3"} {
		waitFor(t, 5*time.Second, n+" fully up", func() bool { return e.server(n).StatusText() == "UP" })
	}
	snap := e.bal.Snapshot()
	b := snap.Backend("servers")
	for _, tc := range []struct {
		user      string
		sensitive bool
		admin     bool
	}{
		{"alice", true, true},
		{"olga", true, false},
		{"victor", false, false},
	} {
		t.Run(tc.user, func(t *testing.T) {
			_, doc, _ := e.get(e.login(tc.user), "/")
			for _, sv := range b.Servers {
				key := "s:servers/" + sv.Config.Name
				rows := find(doc, func(n *html.Node) bool { v, _ := attr(n, "data-k"); return n.Data == "tr" && v == key })
				if len(rows) != 1 {
					t.Fatalf("%d rows for %s, want 1", len(rows), key)
				}
				ck, _ := cell(doc, key, "ck")
				want := ""
				if tc.sensitive {
					want = sv.Cookie
				}
				if ck != want {
					t.Errorf("cookie cell of %s = %q, want %q", sv.Config.Name, ck, want)
				}
				if len(sv.Cookie) != 16 {
					t.Errorf("server %s has cookie %q, want a 16-hex dynamic cookie", sv.Config.Name, sv.Cookie)
				}
				st, _ := cell(doc, key, "st")
				if st != sv.StatusText() {
					t.Errorf("status cell %q, want %q", st, sv.StatusText())
				}
				btns := find(rows[0], func(n *html.Node) bool { v, _ := attr(n, "name"); return n.Data == "button" && v == "state" })
				if len(btns) != 3 {
					t.Fatalf("%d state buttons, want 3", len(btns))
				}
				for _, bt := range btns {
					_, disabled := attr(bt, "disabled")
					if disabled == tc.admin {
						t.Errorf("state button disabled=%v for %s", disabled, tc.user)
					}
					cmdAttr, _ := attr(bt, "data-cmd")
					val, _ := attr(bt, "value")
					if want := "set server servers/" + sv.Config.Name + " state " + val; cmdAttr != want {
						t.Errorf("button shows command %q, want %q", cmdAttr, want)
					}
					if title, _ := attr(bt, "title"); !tc.admin && !strings.Contains(title, "admin level") && !strings.Contains(title, "viewer") {
						t.Errorf("disabled button has no explanation: %q", title)
					}
				}
			}
			dyn, _ := cell(doc, "b:servers", "dyn")
			if dyn != "ON" {
				t.Errorf("dynamic cookie badge %q, want ON", dyn)
			}
			if !strings.Contains(text(doc), "SERVERID insert indirect nocache dynamic") {
				t.Errorf("cookie line in HAProxy words not shown")
			}
		})
	}
}

// TestCellFieldsRendered checks that every live field the hub sends is a
// data-f cell on the pages, so the browser can apply it.
func TestCellFieldsRendered(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	_, over, _ := e.get(c, "/")
	_, back, _ := e.get(c, "/backends/servers")
	m := e.srv.buildModel(e.bal.Snapshot(), viewer{perms: permsFor(user{level: roleAdmin}), now: time.Now()}, nil, true)
	for key, fields := range m {
		for f := range fields {
			if f == "sig" {
				continue
			}
			_, inOver := cell(over, key, f)
			_, inBack := cell(back, key, f)
			if !inOver && !inBack {
				t.Errorf("field %s of %s is sent live but no page shows it", f, key)
			}
		}
	}
}

func TestActionsByRole(t *testing.T) {
	e := newEnv(t, Options{})
	clients := map[string]*http.Client{"alice": e.login("alice"), "olga": e.login("olga"), "victor": e.login("victor")}
	tests := []struct {
		user   string
		path   string
		form   url.Values
		status int
		check  func() bool
	}{
		{"victor", "/backends/servers/servers/s1/state", url.Values{"state": {"drain"}}, http.StatusForbidden, func() bool { return adminMode(e.server("s1")) == "ready" }},
		{"olga", "/backends/servers/servers/s1/state", url.Values{"state": {"drain"}}, http.StatusForbidden, func() bool { return adminMode(e.server("s1")) == "ready" }},
		{"alice", "/backends/servers/servers/s1/state", url.Values{"state": {"drain"}}, http.StatusSeeOther, func() bool { return adminMode(e.server("s1")) == "drain" }},
		{"alice", "/backends/servers/servers/s1/state", url.Values{"state": {"ready"}}, http.StatusSeeOther, func() bool { return adminMode(e.server("s1")) == "ready" }},
		{"olga", "/backends/servers/servers/s2/weight", url.Values{"weight": {"7"}}, http.StatusForbidden, func() bool { return e.server("s2").Weight == 1 }},
		{"alice", "/backends/servers/servers/s2/weight", url.Values{"weight": {"7"}}, http.StatusSeeOther, func() bool { return e.server("s2").Weight == 7 }},
		{"olga", "/backends/servers/dynamic-cookie", url.Values{"op": {"disable"}}, http.StatusForbidden, func() bool { return e.bal.Snapshot().Backend("servers").DynamicCookies() }},
		{"victor", "/users", url.Values{"name": {"mallory"}, "password": {"12345678"}, "role": {"admin"}}, http.StatusForbidden, func() bool { return true }},
		{"victor", "/inspect/pin", url.Values{"backend": {"servers"}, "server": {"s1"}}, http.StatusForbidden, func() bool { return true }},
		{"olga", "/clear-counters", nil, http.StatusSeeOther, func() bool { return true }},
	}
	for _, tc := range tests {
		t.Run(tc.user+" "+tc.path, func(t *testing.T) {
			res, _ := e.post(clients[tc.user], tc.path, tc.form)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if !tc.check() {
				t.Errorf("balancer state is not as expected after the request")
			}
		})
	}
}

func TestActionJSONReplyShowsCommand(t *testing.T) {
	e := newEnv(t, Options{Socat: "/run/tether.sock"})
	c := e.login("alice")
	res, body := e.post(c, "/backends/servers/servers/s3/state", url.Values{"state": {"maint"}}, "Accept", "application/json")
	var rep actionReply
	if err := json.Unmarshal([]byte(body), &rep); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status %d body %q: %v", res.StatusCode, body, err)
	}
	if !rep.OK || len(rep.Commands) != 1 || rep.Commands[0] != "set server servers/s3 state maint" {
		t.Fatalf("reply %+v", rep)
	}
	if want := "echo 'set server servers/s3 state maint' | socat stdio UNIX-CONNECT:/run/tether.sock"; rep.Socat[0] != want {
		t.Errorf("socat line %q, want %q", rep.Socat[0], want)
	}
	// An error carries HAProxy's reply.
	res, body = e.post(c, "/backends/servers/servers/nope/state", url.Values{"state": {"drain"}}, "Accept", "application/json")
	_ = json.Unmarshal([]byte(body), &rep)
	if res.StatusCode != http.StatusUnprocessableEntity || rep.OK || rep.Reply != "No such server." {
		t.Errorf("unknown server: status %d reply %+v, want 422 with \"No such server.\"", res.StatusCode, rep)
	}
}

func TestFlashAfterRedirect(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	res, _ := e.post(c, "/backends/servers/servers/s2/state", url.Values{"state": {"drain"}}, "Referer", e.console.URL+"/backends/servers")
	if loc := res.Header.Get("Location"); loc != "/backends/servers" {
		t.Fatalf("redirect to %q, want back to the backend page", loc)
	}
	_, doc, _ := e.get(c, "/backends/servers")
	flash := find(doc, func(n *html.Node) bool { return hasClass(n, "flash") })
	if len(flash) != 1 || !strings.Contains(text(flash[0]), "set server servers/s2 state drain") {
		t.Fatalf("flash with the command not shown after the redirect")
	}
	adm := find(doc, func(n *html.Node) bool { v, _ := attr(n, "data-f"); return v == "adm" && hasClass(n, "seg") })
	for _, f := range adm {
		if owner := f.Parent; owner != nil {
			if sel, _ := attr(f, "data-sel"); strings.Contains(renderAttr(f, "action"), "/s2/") && sel != "drain" {
				t.Errorf("segmented control of s2 shows %q, want drain", sel)
			}
		}
	}
	_, doc, _ = e.get(c, "/backends/servers")
	if len(find(doc, func(n *html.Node) bool { return hasClass(n, "flash") })) != 0 {
		t.Errorf("flash shown twice")
	}
}

func renderAttr(n *html.Node, k string) string { v, _ := attr(n, k); return v }

func TestDynamicCookieToggle(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	waitFor(t, 5*time.Second, "servers up", func() bool { return e.server("s1").Op == balancer.OpRunning })

	res, _ := e.post(c, "/backends/servers/dynamic-cookie", url.Values{"op": {"disable"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: status %d", res.StatusCode)
	}
	if e.bal.Snapshot().Backend("servers").DynamicCookies() {
		t.Fatalf("dynamic cookies still on")
	}
	fr, err := http.Get(e.frontend.URL + "/")
	if err != nil {
		t.Fatalf("request through the frontend: %v", err)
	}
	io.Copy(io.Discard, fr.Body)
	fr.Body.Close()
	if sc := fr.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "SERVERID=; Expires=Thu, 01-Jan-1970 00:00:01 GMT") {
		t.Errorf("response carries Set-Cookie %q, want the deletion cookie", sc)
	}
	_, doc, _ := e.get(c, "/backends/servers")
	btn := find(doc, byAttr("id", "dyn-toggle"))
	if len(btn) != 1 || text(btn[0]) != "Enable dynamic cookies" {
		t.Fatalf("toggle button does not offer enabling")
	}
	if cmdAttr, _ := attr(btn[0], "data-cmd"); cmdAttr != "enable dynamic-cookie backend servers" {
		t.Errorf("toggle shows command %q", cmdAttr)
	}
	e.post(c, "/backends/servers/dynamic-cookie", url.Values{"op": {"enable"}})
	if !e.bal.Snapshot().Backend("servers").DynamicCookies() {
		t.Fatalf("dynamic cookies not back on")
	}
}

func TestKeyNeverEchoed(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	before := e.bal.Snapshot().Backend("servers").KeyFingerprint
	const key = "brand-new;secret key"
	res, body := e.post(c, "/backends/servers/dynamic-cookie-key", url.Values{"key": {key}}, "Accept", "application/json")
	if res.StatusCode != http.StatusOK || strings.Contains(body, "brand-new") {
		t.Fatalf("rotate key: status %d, body %q (must not hold the key)", res.StatusCode, body)
	}
	if !strings.Contains(body, "set dynamic-cookie-key backend servers ********") {
		t.Errorf("reply does not show the masked command: %s", body)
	}
	after := e.bal.Snapshot().Backend("servers").KeyFingerprint
	if after == before || after == "" {
		t.Fatalf("key fingerprint %q → %q: key not changed", before, after)
	}
	_, _, page := e.get(c, "/backends/servers")
	if strings.Contains(page, "brand-new") {
		t.Errorf("backend page shows the key")
	}
	if !strings.Contains(page, after) {
		t.Errorf("backend page does not show the new fingerprint %q", after)
	}
	entries, err := e.st.ListAudit(context.Background(), store.AuditFilter{Actor: "alice"})
	if err != nil || len(entries) == 0 {
		t.Fatalf("audit entries: %v (%d)", err, len(entries))
	}
	for _, en := range entries {
		if strings.Contains(en.Command, "brand-new") || strings.Contains(en.After, "brand-new") {
			t.Errorf("audit entry holds the key: %+v", en)
		}
	}
}

func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"cross-site fetch metadata", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}},
		{"foreign origin only", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := e.post(c, "/backends/servers/servers/s1/state", url.Values{"state": {"maint"}}, tc.hdr...)
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("forged POST: status %d, want 403", res.StatusCode)
			}
			if adminMode(e.server("s1")) != "ready" {
				t.Fatalf("forged POST changed the server")
			}
		})
	}
}

func TestCommandInjectionRefused(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	for _, path := range []string{
		"/backends/servers%3Bdisable%20dynamic-cookie%20backend%20servers/dynamic-cookie",
		"/backends/servers/servers/s1%20state%20maint%3B/state",
	} {
		res, _ := e.post(c, path, url.Values{"op": {"disable"}, "state": {"drain"}})
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: status %d, want 400", path, res.StatusCode)
		}
	}
	if !e.bal.Snapshot().Backend("servers").DynamicCookies() || adminMode(e.server("s1")) != "ready" {
		t.Fatalf("an injected command ran")
	}
}

func TestAddAndDeleteServer(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	o4 := startOrigin(t, "s4")

	// A bad address re-renders the form with the values and the message.
	res, body := e.post(c, "/backends/servers/servers", url.Values{"name": {"s4"}, "address": {"not-an-ip"}, "port": {o4.port()}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "The address must be an IPv4 or IPv6 address") || !strings.Contains(body, `value="not-an-ip"`) {
		t.Fatalf("bad address: status %d; want 422 with the form and message", res.StatusCode)
	}

	res, _ = e.post(c, "/backends/servers/servers", url.Values{"name": {"s4"}, "address": {"127.0.0.1"}, "port": {o4.port()}, "check": {"1"}, "ready": {"1"}, "weight": {"3"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add server: status %d", res.StatusCode)
	}
	s4 := e.server("s4")
	if adminMode(s4) != "ready" || !s4.CheckEnabled || s4.Weight != 3 {
		t.Fatalf("s4 after add: admin %s check %v weight %d", adminMode(s4), s4.CheckEnabled, s4.Weight)
	}
	_, doc, _ := e.get(c, "/backends/servers")
	why, _ := cell(doc, "s:servers/s4", "delwhy")
	if !strings.Contains(why, "not in maintenance") {
		t.Errorf("delete precondition not explained: %q", why)
	}

	// HAProxy refuses to delete a server that is not in maintenance.
	res, body = e.post(c, "/backends/servers/servers/s4/delete", nil, "Accept", "application/json")
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Only servers in maintenance mode can be deleted.") {
		t.Fatalf("delete a ready server: status %d body %s", res.StatusCode, body)
	}
	e.post(c, "/backends/servers/servers/s4/state", url.Values{"state": {"maint"}})
	waitFor(t, 5*time.Second, "s4 idle", func() bool { return e.server("s4").Stats.CurSessions == 0 })
	res, _ = e.post(c, "/backends/servers/servers/s4/delete", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: status %d", res.StatusCode)
	}
	if e.bal.Snapshot().Backend("servers").Server("s4") != nil {
		t.Fatalf("s4 still there")
	}
}

func TestCookieFormValidation(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	res, body := e.post(c, "/backends/servers/cookie", url.Values{"name": {"SRV"}, "mode": {"rewrite"}, "indirect": {"1"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "cookie &#39;rewrite&#39; and &#39;indirect&#39; modes are incompatible.") {
		t.Fatalf("rewrite+indirect: status %d, want 422 with HAProxy's message", res.StatusCode)
	}
	if !strings.Contains(body, `value="SRV"`) {
		t.Errorf("form not re-rendered with the submitted name")
	}
	res, body = e.post(c, "/backends/servers/cookie", url.Values{"name": {"SRV"}, "mode": {"insert"}, "maxidle": {"soon"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "unexpected character &#39;s&#39; in argument to &lt;maxidle&gt;.") {
		t.Fatalf("bad maxidle: status %d, want 422 with HAProxy's message", res.StatusCode)
	}
	if got := e.bal.Snapshot().Backend("servers").Config.Cookie.Name; got != "SERVERID" {
		t.Fatalf("refused form changed the cookie name to %q", got)
	}
}

// TestCookieFormSurvivesRestart sends the cookie form, then builds a new
// balancer from what the store holds, as a restart does.
func TestCookieFormSurvivesRestart(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	res, _ := e.post(c, "/backends/servers/cookie", url.Values{"name": {"APP"}, "mode": {"insert"}, "indirect": {"1"},
		"dynamic": {"1"}, "maxidle": {"1800"}, "attr": {"SameSite=Lax\nx y"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("cookie form: status %d", res.StatusCode)
	}
	want := &balancer.CookieConfig{Name: "APP", Mode: balancer.CookieInsert, Indirect: true, Dynamic: true,
		MaxIdle: 30 * time.Minute, Attrs: []string{"SameSite=Lax", "x y"}}
	if got := e.bal.Snapshot().Backend("servers").Config.Cookie; !reflect.DeepEqual(got, want) {
		t.Fatalf("balancer cookie = %+v, want %+v", got, want)
	}
	st, found, err := e.st.LoadState(context.Background())
	if err != nil || !found {
		t.Fatalf("load state: found %v, %v", found, err)
	}
	restarted, err := balancer.New(st.Config, balancer.Options{Runtime: st.Servers})
	if err != nil {
		t.Fatalf("build balancer from the stored state: %v", err)
	}
	defer restarted.Close()
	be := restarted.Snapshot().Backend("servers")
	if !reflect.DeepEqual(be.Config.Cookie, want) {
		t.Fatalf("after restart cookie = %+v, want %+v", be.Config.Cookie, want)
	}
	if got, old := be.Server("s1").Cookie, e.server("s1").Cookie; got == "" || got != old {
		t.Errorf("after restart s1 cookie %q, before %q", got, old)
	}
	entries, err := e.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	found = false
	for _, a := range entries {
		if a.Command == `set cookie backend servers APP insert indirect dynamic maxidle 30m attr SameSite=Lax attr x\ y` && a.Channel == "console" && a.Actor == "alice" {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry for the console's set cookie command in %+v", entries)
	}
}

func TestParseCookieForm(t *testing.T) {
	tests := []struct {
		name    string
		form    templateCookie
		want    string // the Runtime API line
		problem string
	}{
		{"insert dynamic", templateCookie{Name: "SERVERID", Mode: "insert", Indirect: true, NoCache: true, Dynamic: true}, "set cookie backend b SERVERID insert indirect nocache dynamic", ""},
		{"passive", templateCookie{Name: "JSESSIONID"}, "set cookie backend b JSESSIONID", ""},
		{"dates and domains", templateCookie{Name: "S", Mode: "insert", Domains: ".a.example .b.example", MaxIdle: "1800", MaxLife: "8h", Attrs: "SameSite=Lax\n"},
			"set cookie backend b S insert domain .a.example domain .b.example maxidle 30m maxlife 8h attr SameSite=Lax", ""},
		{"escaped words", templateCookie{Name: "a;b", Mode: "insert", Attrs: "x y\nback\\slash\nends<<"}, `set cookie backend b a\;b insert attr x\ y attr back\\slash attr ends\<\<`, ""},
		{"rewrite indirect", templateCookie{Name: "S", Mode: "rewrite", Indirect: true}, "", "cookie 'rewrite' and 'indirect' modes are incompatible."},
		{"preserve alone", templateCookie{Name: "S", Mode: "prefix", Preserve: true}, "", "cookie 'preserve' requires at least 'insert' or 'indirect'."},
		{"bad time", templateCookie{Name: "S", Mode: "insert", MaxIdle: "soon"}, "", "unexpected character 's' in argument to <maxidle>."},
		{"attr with semicolon", templateCookie{Name: "S", Mode: "insert", Attrs: "a;b"}, "", "character '%x3B' is not permitted in attribute value."},
		{"no name", templateCookie{}, "", "'cookie' expects <cookie_name> as argument."},
		{"bad domain", templateCookie{Name: "S", Domains: "a b/c"}, "", "character '/' is not permitted in domain name 'b/c'."},
		{"unknown mode", templateCookie{Name: "S", Mode: "sticky"}, "", "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options."},
		{"control character in name", templateCookie{Name: "a\nset server servers/s1 state maint"}, "", "The cookie name may not hold control characters."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, p := parseCookieForm(tc.form)
			if tc.problem != "" {
				if p != tc.problem || c != nil {
					t.Fatalf("problem %q (config %+v), want %q", p, c, tc.problem)
				}
				return
			}
			if p != "" {
				t.Fatalf("problem %q", p)
			}
			if got := setCookieCommand("b", c).Line(); got != tc.want {
				t.Fatalf("command %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMetricsAndHealthz(t *testing.T) {
	e := newEnv(t, Options{})
	for i := 0; i < 3; i++ {
		res, err := http.Get(e.frontend.URL + "/")
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	res, err := http.Get(e.console.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`tether_server_sticky_total{backend="servers",outcome="new",server="s1"}`,
		`tether_backend_sticky_total{backend="servers",outcome="pinned"}`,
		`tether_backend_dynamic_cookies{backend="servers"} 1`,
		`tether_frontend_requests_total{frontend="fe"} 3`,
		`tether_server_weight{backend="servers",server="s2"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), e.server("s1").Cookie) {
		t.Errorf("/metrics exposes a cookie value")
	}
	res, err = http.Get(e.console.URL + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", err, res.StatusCode)
	}
	res.Body.Close()
}

func TestUsersAdmin(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	res, body := e.post(c, "/users", url.Values{"name": {"bob"}, "password": {"short"}, "role": {"operator"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Password too weak") || !strings.Contains(body, `value="bob"`) {
		t.Fatalf("short password: status %d, want 422 with the message and the form", res.StatusCode)
	}
	res, body = e.post(c, "/users", url.Values{"name": {"bob"}, "password": {"Password1!"}, "role": {"operator"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "too easy to guess") {
		t.Fatalf("common password: status %d, want 422 saying it is too easy to guess", res.StatusCode)
	}
	res, _ = e.post(c, "/users", url.Values{"name": {"bob"}, "password": {"bob-plum-orbit"}, "role": {"operator"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add user: status %d", res.StatusCode)
	}
	e.post(c, "/users/bob/role", url.Values{"role": {"viewer"}})
	_, doc, _ := e.get(c, "/users")
	found := false
	for _, row := range find(doc, func(n *html.Node) bool { return n.Data == "tr" }) {
		if strings.HasPrefix(text(row), "bob") {
			for _, o := range find(row, func(n *html.Node) bool { _, sel := attr(n, "selected"); return n.Data == "option" && sel }) {
				found = text(o) == "viewer"
			}
		}
	}
	if !found {
		t.Errorf("bob's role not shown as viewer")
	}
	res, body = e.post(c, "/users/alice/role", url.Values{"role": {"viewer"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "last admin") {
		t.Errorf("demoting the last admin: status %d, want 422", res.StatusCode)
	}
	res, _ = e.post(c, "/users/bob/password", url.Values{"password": {"bob-new-plum-orbit"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset password: status %d", res.StatusCode)
	}
	res, _ = e.post(c, "/users/bob/delete", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete user: status %d", res.StatusCode)
	}

	// Every change and every refusal is audited under alice, without the
	// passwords.
	entries, err := e.st.ListAudit(context.Background(), store.AuditFilter{Channel: "console", Actor: "alice", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(entries) - 1; i >= 0; i-- {
		a := entries[i]
		if a.Command == "login" {
			continue
		}
		all := strings.Join([]string{a.Command, a.Result, a.Detail, a.Before, a.After}, " ")
		for _, pw := range []string{"short", "Password1!", "bob-plum-orbit", "bob-new-plum-orbit"} {
			if strings.Contains(all, pw) {
				t.Errorf("audit entry holds a password: %+v", a)
			}
		}
		result := a.Result
		if result != store.ResultOK {
			result = "refused"
		}
		got = append(got, a.Command+": "+result)
	}
	want := []string{
		"user add bob operator: refused", "user add bob operator: refused", "user add bob operator: ok",
		"user role bob viewer: ok", "user role alice viewer: refused", "user passwd bob: ok", "user del bob: ok",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit of user changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAuditPageFilters(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	e.post(c, "/backends/servers/servers/s1/state", url.Values{"state": {"drain"}})
	e.disp.Execute(context.Background(), "set server servers/s2 weight 5", balancer.LevelAdmin, balancer.Origin{Channel: "socket", Source: "/run/tether.sock"})
	_, doc, _ := e.get(c, "/audit?actor=alice")
	rows := find(doc, func(n *html.Node) bool { return n.Data == "tr" && n.Parent != nil && n.Parent.Data == "tbody" })
	if len(rows) == 0 {
		t.Fatalf("no audit rows for alice")
	}
	for _, r := range rows {
		if !strings.Contains(text(r), "alice") {
			t.Errorf("row without alice under actor=alice: %q", text(r))
		}
	}
	if !strings.Contains(text(rows[0]), "set server servers/s1 state drain") {
		t.Errorf("newest row %q does not show the command", text(rows[0]))
	}
	_, doc, _ = e.get(c, "/audit?channel=socket")
	if !strings.Contains(text(doc), "set server servers/s2 weight 5") {
		t.Errorf("socket change missing under channel=socket")
	}
}

func TestDrainWatchPutsIdleServerInMaintenance(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the idle delay")
	}
	e := newEnv(t, Options{})
	c := e.login("alice")
	res, _ := e.post(c, "/backends/servers/servers/s3/drain", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("watch: status %d", res.StatusCode)
	}
	if adminMode(e.server("s3")) != "drain" {
		t.Fatalf("s3 not drained")
	}
	_, _, page := e.get(c, "/backends/servers/servers/s3/drain")
	if !strings.Contains(page, "goes to maintenance as soon as it has no session") {
		t.Errorf("drain view does not say the watch is on")
	}
	waitFor(t, idleFor+5*time.Second, "s3 in maintenance", func() bool { return adminMode(e.server("s3")) == "maint" })
}
