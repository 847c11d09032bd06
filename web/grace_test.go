package web

import (
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"tether/balancer"
)

// TestGracePanelWithoutScript rotates the key with a grace window and sets
// an address grace through the console's forms, as a browser without
// JavaScript sends them, then checks the commands run, the panel and
// /metrics.
func TestGracePanelWithoutScript(t *testing.T) {
	e := newEnv(t, Options{})
	c := e.login("alice")
	for _, tc := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/backends/servers/dynamic-cookie-key", url.Values{"key": {"next-key"}, "grace": {"bogus"}}, "The grace window must be a delay"},
		{"/backends/servers/dynamic-cookie-key", url.Values{"key": {"next-key"}, "grace": {"10m"}}, "set dynamic-cookie-key backend servers ******** grace 10m"},
		{"/backends/servers/dynamic-cookie-addr-grace", url.Values{"grace": {"5x"}}, "The address grace must be a delay"},
		{"/backends/servers/dynamic-cookie-addr-grace", url.Values{"grace": {"30m"}}, "set dynamic-cookie-addr-grace backend servers 30m"},
	} {
		res, body := e.post(c, tc.path, tc.form, "Accept", "application/json")
		if !strings.Contains(body, tc.want) {
			t.Fatalf("POST %s %v: status %d, body %s, want %q", tc.path, tc.form, res.StatusCode, body, tc.want)
		}
	}
	be := e.bal.Snapshot().Backend("servers")
	if len(be.RetiredKeys) != 1 || be.Config.DynamicCookieAddrGrace != 30*time.Minute {
		t.Fatalf("retired keys %+v, address grace %v", be.RetiredKeys, be.Config.DynamicCookieAddrGrace)
	}

	// A client with a cookie of the first key comes back.
	old := "SERVERID=" + oldCookie(t, e)
	req, _ := http.NewRequest("GET", e.frontend.URL+"/", nil)
	req.Header.Set("Cookie", old)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	_, doc, body := e.get(c, "/backends/servers")
	if !strings.Contains(body, be.RetiredKeys[0].Fingerprint) {
		t.Errorf("the panel does not show the retired key's fingerprint")
	}
	for f, want := range map[string]string{"gk": "1", "ga": "0", "gri": "1"} {
		if got, ok := cell(doc, "b:servers", f); !ok || got != want {
			t.Errorf("cell %s = %q, want %q", f, got, want)
		}
	}
	if !strings.Contains(body, `value="30m"`) {
		t.Errorf("the address grace form does not show 30m")
	}

	res, err = http.Get(e.console.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`tether_backend_sticky_total{backend="servers",outcome="old_key"} 1`,
		`tether_backend_sticky_total{backend="servers",outcome="reissued"} 1`,
		`tether_backend_dynamic_cookie_grace_seconds{backend="servers",kind="key"}`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// oldCookie returns s1's cookie under the environment's first key.
func oldCookie(t *testing.T, e *env) string {
	t.Helper()
	s1 := e.server("s1")
	return balancer.DynamicCookie(testKey, netip.MustParseAddr(s1.Config.Address), int32(s1.Config.Port))
}
