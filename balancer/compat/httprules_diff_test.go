package compat

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// echoOrigin answers with the request it received (method, target and the
// X- headers, Host included) and with headers for http-response rules.
func echoOrigin(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-") {
				lines = append(lines, k+": "+strings.Join(v, " | "))
			}
		}
		sort.Strings(lines)
		w.Header().Set("X-Srv-Drop", "1")
		w.Header().Set("X-Srv-Keep", "1")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s host=%s\n%s\n", r.Method, r.RequestURI, r.Host, strings.Join(lines, "\n"))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

const httpRulesConfig = `frontend fe
    bind %s
    acl api path_beg /api
    http-request deny if { path_beg /deny }
    http-request deny deny_status 429 if { path_beg /limit }
    http-request deny deny_status 401 if { path /auth } !{ req.hdr(authorization) -m found }
    http-request return status 200 content-type text/plain string ok if { path /health }
    http-request return status 204 if { path /empty }
    http-request deny deny_status 504 if { path /page504 }
    http-request deny deny_status 400 if { path /page400 }
    http-request return status 408 if { path /return408 }
    http-request return status 299 if { path /return299 }
    http-request redirect location /new code 301 if { path /old }
    http-request redirect prefix /v2 if { path_beg /v1/ }
    http-request redirect prefix / drop-query append-slash if { path_beg /dq }
    http-request redirect scheme https code 308 if { path_beg /secure }
    http-request redirect location /seeother code 303 if { path /post }
    http-request redirect location /temp code 307 if { path /tmp }
    http-request set-header X-Api yes if api
    http-request add-header X-Added one
    http-request add-header X-Added two if api
    http-request del-header X-Remove
    http-request set-header Host rewritten.example if { path_beg /rehost }
    http-request replace-header X-Rep ^(\w+)=(\w*)(;.*)?$ \2=\1\3 if { path /replace }
    http-request replace-header Host ^www\.(.*)$ api.\1 if { path /replacehost }
    http-request set-path /rewritten if { path /setpath }
    http-request set-query a=1 if { path /setquery }
    http-request allow if { path /allowed }
    http-request deny if { path /allowed }
    redirect location /kw if { path /kwredirect }
    http-response set-header X-Res set
    http-response add-header X-Res-Added a
    http-response del-header X-Srv-Drop
    http-response replace-header X-Srv-Keep ^(1)$ kept-\1-\2
    default_backend be

backend be
    server s %s
`

// TestHTTPRulesMatchHAProxy sends requests through HAProxy and Tether on
// the same http-request, redirect and http-response rules and compares the
// answers: status, the headers the rules set, the body, and what the
// server received.
func TestHTTPRulesMatchHAProxy(t *testing.T) {
	origin := echoOrigin(t)
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + fmt.Sprintf(httpRulesConfig, bind, origin)
	})
	reqs := []struct {
		target  string
		method  string
		headers []string
	}{
		{target: "/"},
		{target: "/deny/x"},
		{target: "/page504"},
		{target: "/page400"},
		{target: "/return408"},
		{target: "/return299"},
		{target: "/limit"},
		{target: "/auth"},
		{target: "/auth", headers: []string{"Authorization: Basic eDp5"}},
		{target: "/health"},
		{target: "/empty"},
		{target: "/old?x=1"},
		{target: "/v1/items?page=2"},
		{target: "/dq/a?z=1"},
		{target: "/dq/a/?z=1"},
		{target: "/secure/x?y"},
		{target: "/post", method: "POST"},
		{target: "/tmp"},
		{target: "/api/users", headers: []string{"X-Remove: gone", "X-Keep: kept"}},
		{target: "/plain", headers: []string{"X-Added: client", "X-Remove: a", "X-Remove: b"}},
		{target: "/rehost"},
		{target: "/replace", headers: []string{"X-Rep: a=b", "X-Rep: none", "X-Rep: k=;rest"}},
		{target: "/replace", headers: []string{"X-Rep: x=y, z=w"}},
		{target: "/replacehost"},
		{target: "/setpath?q=1"},
		{target: "/setquery?q=1"},
		{target: "/setquery"},
		{target: "/allowed"},
		{target: "/kwredirect"},
		{target: "/deny/x", headers: []string{"X-Remove: a"}},
	}
	for _, r := range reqs {
		if r.method == "" {
			r.method = "GET"
		}
		line := r.method + " " + r.target + " HTTP/1.1"
		hdr := append([]string{"Host: www.example.com", "Content-Length: 0"}, r.headers...)
		h, g := answerOf(t, p.haproxyURL, line, hdr), answerOf(t, p.tetherURL, line, hdr)
		t.Logf("%s %v: %s", line, r.headers, h)
		if h != g {
			t.Errorf("%s %v:\nhaproxy %s\ntether  %s", line, r.headers, h, g)
		}
	}
}

// answerOf sends one raw request and describes the answer: status, the
// headers rules act on, and the body.
func answerOf(t *testing.T, base, requestLine string, headers []string) string {
	t.Helper()
	resp, body, err := sendRaw(t, base, "", requestLine, headers)
	if err != nil {
		return "error " + err.Error()
	}
	var hs []string
	for _, k := range []string{"Location", "Cache-Control", "Content-Type", "Content-Length", "X-Res", "X-Res-Added", "X-Srv-Drop", "X-Srv-Keep"} {
		if v, ok := resp.Header[k]; ok {
			hs = append(hs, k+"="+strings.Join(v, ","))
		}
	}
	return fmt.Sprintf("%s %s body=%q", resp.Status, strings.Join(hs, " "), body)
}
