package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/backends/servers", "/backends/servers"},
		{"/backends/servers?tab=cookies#s1", "/backends/servers?tab=cookies#s1"},
		{"/audit?actor=alice%20b", "/audit?actor=alice%20b"},
		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/%09/evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/\r\n/evil.example", "/"},
		{"/%2F%2Fevil.example", "/"},
		{"/%2f/evil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%5cevil.example", "/"},
		{"/%00", "/"},
		{"/\x7f/evil", "/"},
		{"/\u0085/evil", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"/login", "/"},
		{"/login?next=/x", "/"},
		{"/%6Cogin", "/"},
		{"/loginx", "/loginx"},
		{"/" + strings.Repeat("a", 3000), "/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoginRedirectStaysLocal(t *testing.T) {
	e := newEnv(t, Options{})
	for _, next := range []string{"/%09/evil.example", "/\t/evil.example", "/%2F%2Fevil.example", "/\\evil.example"} {
		res, _ := e.post(e.client(), "/login", url.Values{"name": {"alice"}, "password": {testPassword("alice")}, "next": {next}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
			t.Errorf("login with next=%q: status %d, Location %q; want 303 to /", next, res.StatusCode, res.Header.Get("Location"))
		}
	}
}

func TestMetricsTokenAndHost(t *testing.T) {
	e := newEnv(t, Options{MetricsToken: "scrape-secret", MetricsHosts: []string{"127.0.0.1", "metrics.internal"}})
	get := func(host, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, e.console.URL+"/metrics", nil)
		if host != "" {
			req.Host = host
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		return res.StatusCode
	}
	for _, tc := range []struct {
		name, host, auth string
		want             int
	}{
		{"token and allowed host", "", "Bearer scrape-secret", http.StatusOK},
		{"other allowed host with port", "METRICS.internal:9000", "Bearer scrape-secret", http.StatusOK},
		{"no token", "", "", http.StatusUnauthorized},
		{"wrong token", "", "Bearer scrape-secreT", http.StatusUnauthorized},
		{"token without scheme", "", "scrape-secret", http.StatusUnauthorized},
		{"public host name", "console.example.com", "Bearer scrape-secret", http.StatusNotFound},
	} {
		if got := get(tc.host, tc.auth); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}
