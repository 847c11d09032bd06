package web

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"tether/balancer"
)

// testKey is the dynamic-cookie key of testConfig.
const testKey = "s3cr3t-key"

// getPreview asks the preview endpoint as the page's script does.
func (e *env) getPreview(t *testing.T, c *http.Client, server string, q url.Values) (int, addrPreview) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.console.URL+"/backends/servers/servers/"+server+"/cookie-preview?"+q.Encode(), nil)
	req.Header.Set("Accept", "application/json")
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET preview: %v", err)
	}
	defer res.Body.Close()
	var pv addrPreview
	if err := json.NewDecoder(res.Body).Decode(&pv); err != nil {
		t.Fatalf("decode preview: %v", err)
	}
	return res.StatusCode, pv
}

func TestCookiePreviewEndpoint(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.login("alice")
	s1, s3 := e.server("s1"), e.server("s3")
	port3 := strconv.Itoa(s3.Config.Port)
	newCookie := balancer.DynamicCookie(testKey, netip.MustParseAddr("127.0.0.2"), 29001)
	v6Cookie := balancer.DynamicCookie(testKey, netip.MustParseAddr("::1"), 29003)
	tests := []struct {
		name       string
		server     string
		q          url.Values
		status     int
		cookie     string
		changes    bool
		command    string
		collision  string
		msgHas     string
		wantReject string
	}{
		{name: "new address and port", server: "s3", q: url.Values{"addr": {"127.0.0.2"}, "port": {"29001"}}, status: 200,
			cookie: newCookie, changes: true, command: "set server servers/s3 addr 127.0.0.2 port 29001",
			msgHas: "s3's cookie becomes " + newCookie + " (now " + s3.Cookie + "): clients pinned to s3 lose their server"},
		{name: "IPv6", server: "s3", q: url.Values{"addr": {" ::1 "}, "port": {"29003"}}, status: 200,
			cookie: v6Cookie, changes: true, command: "set server servers/s3 addr ::1 port 29003"},
		{name: "same place", server: "s3", q: url.Values{"addr": {"127.0.0.1"}, "port": {port3}}, status: 200,
			cookie: s3.Cookie, command: "set server servers/s3 addr 127.0.0.1 port " + port3, msgHas: "s3's cookie stays " + s3.Cookie + "."},
		{name: "port kept when empty", server: "s3", q: url.Values{"addr": {"127.0.0.1"}}, status: 200,
			cookie: s3.Cookie, command: "set server servers/s3 addr 127.0.0.1"},
		{name: "another server's place", server: "s3", q: url.Values{"addr": {"127.0.0.1"}, "port": {strconv.Itoa(s1.Config.Port)}}, status: 200,
			cookie: s1.Cookie, changes: true, collision: "s1", msgHas: "It would equal s1's cookie"},
		{name: "not an address", server: "s3", q: url.Values{"addr": {"web3.example"}}, status: 422, wantReject: "The address must be an IPv4 or IPv6 address."},
		{name: "bad port", server: "s3", q: url.Values{"addr": {"127.0.0.2"}, "port": {"0"}}, status: 422, wantReject: "The port must be a number from 1 to 65535."},
		{name: "unknown server", server: "s9", q: url.Values{"addr": {"127.0.0.2"}}, status: 404, wantReject: "No such server."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, pv := e.getPreview(t, admin, tt.server, tt.q)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%+v)", status, tt.status, pv)
			}
			if tt.wantReject != "" {
				if pv.OK || pv.Message != tt.wantReject {
					t.Fatalf("reply %+v, want refusal %q", pv, tt.wantReject)
				}
				return
			}
			if !pv.OK || pv.Cookie != tt.cookie || pv.Current != s3.Cookie || pv.Changes != tt.changes || pv.Collision != tt.collision {
				t.Fatalf("preview %+v; want cookie %q (now %q), changes %v, collision %q", pv, tt.cookie, s3.Cookie, tt.changes, tt.collision)
			}
			if tt.command != "" && pv.Command != tt.command {
				t.Errorf("command %q, want %q", pv.Command, tt.command)
			}
			if !strings.Contains(pv.Message, tt.msgHas) {
				t.Errorf("message %q lacks %q", pv.Message, tt.msgHas)
			}
		})
	}
	if got := e.server("s3"); got.Config.Address != s3.Config.Address || got.Config.Port != s3.Config.Port || got.Cookie != s3.Cookie {
		t.Fatalf("a preview changed s3: %+v", got.Config)
	}
	for _, who := range []string{"olga", "victor"} {
		status, _ := e.getPreview(t, e.login(who), "s3", url.Values{"addr": {"127.0.0.2"}})
		if status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", who, status)
		}
	}
}

func TestCookiePreviewWithoutDynamicCookies(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.login("alice")
	e.post(admin, "/backends/servers/dynamic-cookie", url.Values{"op": {"disable"}})
	if e.bal.Snapshot().Backend("servers").DynamicCookies() {
		t.Fatal("dynamic cookies still on")
	}
	status, pv := e.getPreview(t, admin, "s3", url.Values{"addr": {"127.0.0.2"}, "port": {"29001"}})
	if status != 200 || pv.Cookie != "" || pv.Changes || !strings.Contains(pv.Message, "Dynamic cookies are off on servers") {
		t.Fatalf("preview with dynamic cookies off: %d %+v", status, pv)
	}
}

func TestServerAddrForm(t *testing.T) {
	e := newEnv(t, Options{})
	admin := e.login("alice")
	before := e.server("s3")
	path := "/backends/servers/servers/s3/addr"
	want := balancer.DynamicCookie(testKey, netip.MustParseAddr("127.0.0.1"), 29001)

	// Without JavaScript, Preview shows the page again with the outcome.
	res, body := e.post(admin, path, url.Values{"op": {"preview"}, "addr": {"127.0.0.1"}, "port": {"29001"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "s3&#39;s cookie becomes "+want) || !strings.Contains(body, `value="29001"`) {
		t.Fatalf("no-JS preview: status %d, want 200 with the cookie %s and the form filled", res.StatusCode, want)
	}
	if e.server("s3").Config.Port != before.Config.Port {
		t.Fatal("preview changed the port")
	}

	// A bad address comes back on the form.
	res, body = e.post(admin, path, url.Values{"op": {"apply"}, "addr": {"nowhere"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "The address must be an IPv4 or IPv6 address.") || !strings.Contains(body, `value="nowhere"`) {
		t.Fatalf("bad address: status %d", res.StatusCode)
	}

	// Change: redirect with a flash naming the new cookie.
	res, _ = e.post(admin, path, url.Values{"op": {"apply"}, "addr": {"127.0.0.1"}, "port": {"29001"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change: status %d, want 303", res.StatusCode)
	}
	if s := e.server("s3"); s.Config.Port != 29001 || s.Cookie != want {
		t.Fatalf("after change s3 is at port %d with cookie %q, want 29001 and %q", s.Config.Port, s.Cookie, want)
	}
	_, _, page := e.get(admin, "/backends/servers")
	if !strings.Contains(page, "s3 is now at 127.0.0.1:29001; its cookie is "+want+".") || !strings.Contains(page, "set server servers/s3 addr 127.0.0.1 port 29001") {
		t.Errorf("flash after the change lacks the new cookie or the command")
	}

	// From the page's script: JSON, the change back.
	res, body = e.post(admin, path, url.Values{"op": {"apply"}, "addr": {"127.0.0.1"}, "port": {strconv.Itoa(before.Config.Port)}}, "Accept", "application/json")
	var rep actionReply
	if err := json.Unmarshal([]byte(body), &rep); err != nil || res.StatusCode != http.StatusOK || !rep.OK {
		t.Fatalf("JSON change: status %d %s (%v)", res.StatusCode, body, err)
	}
	if !strings.Contains(rep.Message, "its cookie is "+before.Cookie+".") || len(rep.Commands) != 1 || len(rep.Socat) != 1 {
		t.Errorf("JSON reply %+v", rep)
	}
	if e.server("s3").Cookie != before.Cookie {
		t.Errorf("cookie after changing back: %q, want %q", e.server("s3").Cookie, before.Cookie)
	}

	// Operators may not change addresses.
	res, _ = e.post(e.login("olga"), path, url.Values{"op": {"apply"}, "addr": {"127.0.0.2"}})
	if res.StatusCode != http.StatusForbidden || e.server("s3").Config.Address != "127.0.0.1" {
		t.Errorf("operator change: status %d", res.StatusCode)
	}
}
