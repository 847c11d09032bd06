package compat

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// routingConfig routes by host, path, method, source, cookie, query and
// header, with named, anonymous, negated and predefined ACLs.
const routingConfig = `frontend fe
    bind %s
    acl host_api hdr(host) -i api.example.com
    acl host_www hdr_beg(host) -i www.
    acl url_static path_beg /static /images
    acl url_static path_end .css .js
    acl has_sess req.cook(SESSION) -m found
    acl lan src 127.0.0.2/32
    acl debug url_param(debug) 1 yes
    acl mobile hdr_sub(user-agent) -i mobile
    acl v2 path_dir v2
    acl shop hdr_dom(host) shop
    acl many_fwd req.hdr_cnt(x-forwarded-for) ge 2
    use_backend api if host_api || { path_beg /api/ }
    use_backend static if url_static !has_sess
    use_backend admin if lan { path_beg /admin } METH_GET
    use_backend admin if debug mobile
    use_backend legacy if HTTP_1.0 || v2 shop
    use_backend legacy if many_fwd
    use_backend static if host_www { path_reg ^/img/[0-9]+\.png$ }
    default_backend app

backend app
    server s %s
backend api
    server s %s
backend static
    server s %s
backend admin
    server s %s
backend legacy
    server s %s
`

// TestRoutingMatchesHAProxy sends a matrix of requests through HAProxy
// and Tether on the same use_backend rules and compares which backend
// answered each.
func TestRoutingMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 5)
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + fmt.Sprintf(routingConfig, bind, o.addrs[0], o.addrs[1], o.addrs[2], o.addrs[3], o.addrs[4])
	})
	type request struct {
		method, target, host, src string
		version                   string
		headers                   []string
	}
	reqs := []request{
		{method: "GET", target: "/", host: "example.com"},
		{method: "GET", target: "/", host: "API.example.com"},
		{method: "GET", target: "/api/users", host: "example.com"},
		{method: "GET", target: "/apix", host: "example.com"},
		{method: "GET", target: "/static/app.js", host: "example.com"},
		{method: "GET", target: "/x/site.css?v=2", host: "example.com"},
		{method: "GET", target: "/x/site.css", host: "example.com", headers: []string{"Cookie: SESSION=1"}},
		{method: "GET", target: "/x/site.css", host: "example.com", headers: []string{"Cookie: a=1; SESSION="}},
		{method: "GET", target: "/x/site.css", host: "example.com", headers: []string{"Cookie: XSESSION=1"}},
		{method: "GET", target: "/admin/panel", host: "example.com", src: "127.0.0.2"},
		{method: "HEAD", target: "/admin/panel", host: "example.com", src: "127.0.0.2"},
		{method: "POST", target: "/admin/panel", host: "example.com", src: "127.0.0.2"},
		{method: "GET", target: "/admin/panel", host: "example.com", src: "127.0.0.3"},
		{method: "GET", target: "/page?debug=yes", host: "example.com", headers: []string{"User-Agent: Foo Mobile Safari"}},
		{method: "GET", target: "/page?x=1&debug=1", host: "example.com", headers: []string{"User-Agent: MOBILE"}},
		{method: "GET", target: "/page?debug=2", host: "example.com", headers: []string{"User-Agent: mobile"}},
		{method: "GET", target: "/page?debug=1", host: "example.com"},
		{method: "GET", target: "/", host: "example.com", version: "HTTP/1.0"},
		{method: "GET", target: "/api/v2/items", host: "shop.example.com"},
		{method: "GET", target: "/app/v2/items", host: "shop.example.com:8080"},
		{method: "GET", target: "/app/v2/items", host: "shopping.example.com"},
		{method: "GET", target: "/app/v22/items", host: "shop.example.com"},
		{method: "GET", target: "/", host: "example.com", headers: []string{"X-Forwarded-For: 1.1.1.1, 2.2.2.2"}},
		{method: "GET", target: "/", host: "example.com", headers: []string{"X-Forwarded-For: 1.1.1.1", "X-Forwarded-For: 2.2.2.2"}},
		{method: "GET", target: "/", host: "example.com", headers: []string{"X-Forwarded-For: 1.1.1.1"}},
		{method: "GET", target: "/img/42.png", host: "WWW.example.com"},
		{method: "GET", target: "/img/42.png?x", host: "www.example.com"},
		{method: "GET", target: "/img/4a.png", host: "www.example.com"},
		{method: "GET", target: "http://api.example.com/x", host: "api.example.com"},
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		if r.version == "" {
			r.version = "HTTP/1.1"
		}
		send := func(base string) string {
			return routeOf(t, base, r.src, r.method+" "+r.target+" "+r.version, append([]string{"Host: " + r.host}, r.headers...))
		}
		h, g := send(p.haproxyURL), send(p.tetherURL)
		seen[h] = true
		if h != g {
			t.Errorf("%s %s %s host %q src %s headers %q:\nhaproxy %s\ntether  %s", r.method, r.target, r.version, r.host, r.src, r.headers, h, g)
		}
	}
	// Every backend answered some request: the matrix exercises each rule.
	for i := 1; i <= 5; i++ {
		if want := fmt.Sprintf("200 web%d", i); !seen[want] {
			t.Errorf("no request reached web%d through HAProxy; answers seen: %v", i, seen)
		}
	}
}

// routeOf sends one raw request from src (127.0.0.1 when "") and returns
// its status and the origin that answered.
func routeOf(t *testing.T, base, src, requestLine string, headers []string) string {
	t.Helper()
	resp, _, err := sendRaw(t, base, src, requestLine, headers)
	if err != nil {
		return "error " + err.Error()
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Origin"))
}

// sendRaw sends one request written as is, on its own connection from
// src (127.0.0.1 when ""), and returns the response with its body read.
func sendRaw(t *testing.T, base, src, requestLine string, headers []string) (*http.Response, []byte, error) {
	t.Helper()
	if src == "" {
		src = "127.0.0.1"
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatalf("dial %s from %s: %v", base, src, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "%s\r\n%s\r\nConnection: close\r\n\r\n", requestLine, strings.Join(headers, "\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: strings.Fields(requestLine)[0]})
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}
