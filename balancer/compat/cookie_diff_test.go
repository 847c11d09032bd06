package compat

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/accesslog"
	"tether/balancer/e2etest"
	"tether/balancer/frontdoor"
	"tether/balancer/haproxycfg"
)

// origins are loopback servers shared by both proxies; each reports its
// name and the Cookie header it received.
type origins struct {
	addrs []string
}

func startOrigins(t *testing.T, n int) *origins {
	t.Helper()
	o := &origins{}
	for i := range n {
		name := fmt.Sprintf("web%d", i+1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Origin", name)
			w.Header().Set("X-Seen-Cookie", r.Header.Get("Cookie"))
			q := r.URL.Query()
			for _, v := range q["setcookie"] {
				w.Header().Add("Set-Cookie", v)
			}
			if q.Get("cacheable") != "" {
				w.Header().Set("Cache-Control", "max-age=60")
			}
			if q.Get("etag") != "" {
				w.Header().Set("Etag", `"v1"`)
			}
			status := http.StatusOK
			if v := q.Get("status"); v != "" {
				fmt.Sscan(v, &status)
			}
			if q.Get("chunked") != "" {
				w.WriteHeader(status)
				io.WriteString(w, name)
				w.(http.Flusher).Flush()
				io.WriteString(w, "-more")
				return
			}
			w.WriteHeader(status)
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		o.addrs = append(o.addrs, srv.Listener.Addr().String())
	}
	return o
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", privateLoopback()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// privateLoopback returns a random address of 127.0.0.0/8 away from
// 127.0.0.1, so that a port this package frees and binds again is not
// taken in between by another test process, which listens on 127.0.0.1.
func privateLoopback() string {
	return fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(256), 1+rand.IntN(254))
}

// pair is HAProxy and Tether running the same configuration.
type pair struct {
	t           *testing.T
	haproxyURL  string
	tetherURL   string
	haproxySock string
	// haproxyCalls counts the Runtime API connections made to HAProxy,
	// which it counts in show info's CumConns and CumReq.
	haproxyCalls int
	tether       *balancer.Balancer
	// haproxyOut is HAProxy's standard output, tetherLog what Tether's
	// access log writes to stdout: both hold the lines of a configuration
	// with "log stdout".
	haproxyOut, tetherLog *lineBuffer
}

// startPair renders cfg (a text/template-free format string whose %[1]s is
// the frontend bind address and %[2]s the admin socket line) for both.
func startPair(t *testing.T, cfgFor func(bind, socket string) string) *pair {
	t.Helper()
	bin := e2etest.RequireProgram(t, "haproxy")
	dir := t.TempDir()
	p := &pair{t: t, haproxySock: filepath.Join(dir, "haproxy.sock"), haproxyOut: &lineBuffer{}, tetherLog: &lineBuffer{}}

	hBind := freePort(t)
	hCfg := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(hCfg, []byte(cfgFor(hBind, "stats socket "+p.haproxySock+" level admin")), 0o600)
	cmd := exec.Command(bin, "-db", "-f", hCfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdout = p.haproxyOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p.haproxyURL = "http://" + hBind

	tBind := freePort(t)
	cfg, _, err := haproxycfg.Parse("tether.cfg", []byte(cfgFor(tBind, "")))
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	accessLog := accesslog.New(p.tetherLog, 0)
	syslog := accesslog.NewSyslog(0)
	b, err := balancer.New(cfg, balancer.Options{AccessLogs: map[string]*accesslog.Logger{"stdout": accessLog, accesslog.Syslog: syslog}})
	if err != nil {
		t.Fatalf("balancer: %v", err)
	}
	p.tether = b
	ctx, stopChecks := context.WithCancel(context.Background())
	checksDone, logDone, syslogDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { b.Run(ctx); close(checksDone) }()
	go func() { accessLog.Run(ctx); close(logDone) }()
	go func() { syslog.Run(ctx); close(syslogDone) }()
	t.Cleanup(func() { stopChecks(); <-checksDone; <-logDone; <-syslogDone })
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", tBind)
	if err != nil {
		t.Fatal(err)
	}
	// The frontend's server is the one tether serve runs, counters
	// included.
	feCfg := cfg.Frontends[0]
	for _, f := range cfg.Frontends {
		if f.Name == "fe" {
			feCfg = f
		}
	}
	srv := frontdoor.New(feCfg, cfg.Global, h, slog.New(slog.DiscardHandler))
	if ev, err := b.FrontendEvents("fe"); err == nil {
		srv.Counters = ev
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); b.Close() })
	p.tetherURL = "http://" + tBind

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", p.haproxySock)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// observed is what a client sees of one response.
type observed struct {
	Status      int
	Body        string
	Origin      string
	SetCookie   []string
	SeenCookie  string
	CacheHeader string
}

func (o observed) String() string {
	return fmt.Sprintf("status=%d body=%q origin=%s set-cookie=%q seen-cookie=%q cache-control=%q", o.Status, o.Body, o.Origin, o.SetCookie, o.SeenCookie, o.CacheHeader)
}

func fetch(t *testing.T, base, method, path, cookie string) observed {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	req.Close = true
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cc := ""
	for k, v := range resp.Header {
		if strings.EqualFold(k, "Cache-Control") && resp.Header.Get("X-Origin") != "" {
			cc = strings.Join(v, ",")
		}
	}
	return observed{Status: resp.StatusCode, Body: string(body), Origin: resp.Header.Get("X-Origin"), SetCookie: resp.Header.Values("Set-Cookie"), SeenCookie: resp.Header.Get("X-Seen-Cookie"), CacheHeader: cc}
}

// step is one request or one runtime command sent to both proxies.
type step struct {
	name    string
	command string // Runtime API command; when set, no request is made
	method  string
	path    string
	cookie  string // may contain {cookie:web2} to use that server's current cookie in HAProxy
	// anyServer marks a load-balanced request after admin-state changes,
	// where Tether's round-robin position may differ from HAProxy's: the
	// two answers must agree on everything but which server was chosen,
	// and each cookie set must be the chosen server's.
	anyServer bool
	// dates masks cookie dates, which both proxies take from the clock.
	dates bool
}

func (p *pair) haproxyCmd(cmd string) string {
	p.t.Helper()
	p.haproxyCalls++
	c, err := net.Dial("unix", p.haproxySock)
	if err != nil {
		p.t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, cmd+"\n")
	out, _ := io.ReadAll(c)
	return string(out)
}

// serverCookie reads a server's cookie from HAProxy's show stat.
func (p *pair) serverCookie(server string) string {
	out := p.haproxyCmd("show stat")
	lines := strings.Split(out, "\n")
	header := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	col := -1
	for i, h := range header {
		if h == "cookie" {
			col = i
		}
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) > col && len(f) > 1 && f[1] == server && col >= 0 {
			return f[col]
		}
	}
	return ""
}

func (p *pair) run(steps []step) {
	t := p.t
	t.Helper()
	for i, s := range steps {
		if s.command != "" {
			p.haproxyCmd(s.command)
			if err := applyCommand(p.tether, s.command); err != nil {
				t.Fatalf("step %d %s: tether: %v", i, s.name, err)
			}
			continue
		}
		cookie := s.cookie
		if strings.Contains(cookie, "{cookie:") {
			start := strings.Index(cookie, "{cookie:")
			end := strings.Index(cookie[start:], "}") + start
			cookie = cookie[:start] + p.serverCookie(cookie[start+8:end]) + cookie[end+1:]
		}
		method := s.method
		if method == "" {
			method = http.MethodGet
		}
		path := s.path
		if path == "" {
			path = "/"
		}
		h := fetch(t, p.haproxyURL, method, path, cookie)
		g := fetch(t, p.tetherURL, method, path, cookie)
		if s.anyServer {
			h, g = p.normalizeChoice(h), p.normalizeChoice(g)
		}
		if s.dates {
			h, g = maskDates(h), maskDates(g)
		}
		if h.String() != g.String() {
			t.Errorf("step %d %q (cookie %q):\nhaproxy %s\ntether  %s", i, s.name, cookie, h, g)
		}
	}
}

var cookieDate = regexp.MustCompile(`\|[A-Za-z0-9+/]{5}`)

// maskDates replaces the 5-character dates of Set-Cookie values.
func maskDates(o observed) observed {
	out := o
	out.SetCookie = nil
	for _, sc := range o.SetCookie {
		out.SetCookie = append(out.SetCookie, cookieDate.ReplaceAllString(sc, "|<date>"))
	}
	return out
}

// normalizeChoice replaces the chosen server, and its cookie value in
// Set-Cookie, by placeholders, after checking that the cookie set is the
// chosen server's in Tether.
func (p *pair) normalizeChoice(o observed) observed {
	p.t.Helper()
	snap := p.tether.Snapshot()
	cookie := ""
	for _, be := range snap.Backends {
		if s := be.Server(o.Origin); s != nil {
			cookie = s.Cookie
		}
	}
	out := o
	if o.Origin != "" {
		out.Body = strings.ReplaceAll(o.Body, o.Origin, "<chosen>")
	}
	out.Origin = "<chosen>"
	out.SetCookie = nil
	for _, sc := range o.SetCookie {
		if cookie != "" && strings.Contains(sc, "="+cookie) {
			sc = strings.Replace(sc, "="+cookie, "=<chosen>", 1)
		}
		out.SetCookie = append(out.SetCookie, sc)
	}
	return out
}

// applyCommand applies the few Runtime API commands the scenarios use
// directly through the change API.
func applyCommand(b *balancer.Balancer, cmd string) error {
	f := strings.Fields(cmd)
	o := balancer.Origin{Channel: "test"}
	switch {
	case len(f) == 4 && f[0] == "disable" && f[1] == "dynamic-cookie":
		return b.Apply(balancer.SetDynamicCookies{Backend: f[3], Enabled: false}, o)
	case len(f) == 4 && f[0] == "enable" && f[1] == "dynamic-cookie":
		return b.Apply(balancer.SetDynamicCookies{Backend: f[3], Enabled: true}, o)
	case len(f) == 5 && f[0] == "set" && f[1] == "dynamic-cookie-key":
		return b.Apply(balancer.SetDynamicCookieKey{Backend: f[3], Key: balancer.Secret(f[4])}, o)
	case len(f) == 5 && f[0] == "set" && f[1] == "server" && f[3] == "state":
		be, srv, _ := strings.Cut(f[2], "/")
		mode := map[string]balancer.AdminMode{"ready": balancer.Ready, "drain": balancer.Drain, "maint": balancer.Maint}[f[4]]
		return b.Apply(balancer.SetAdminState{ServerRef: balancer.ServerRef{Backend: be, Server: srv}, State: mode}, o)
	}
	return fmt.Errorf("unsupported command %q", cmd)
}

func backendLines(o *origins, extra string) string {
	var b strings.Builder
	for i, a := range o.addrs {
		fmt.Fprintf(&b, "    server web%d %s%s\n", i+1, a, extra)
	}
	return b.String()
}

const globalAndDefaults = `global
    %s

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

`

func TestDynamicCookieScenarioMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 3)
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend servers\n\n" +
			"backend servers\n    balance roundrobin\n    cookie SERVER_USED insert indirect nocache dynamic\n    dynamic-cookie-key mysecretphrase\n" +
			backendLines(o, "")
	})
	web1 := balancer.DynamicCookie("mysecretphrase", netip.MustParseAddrPort(o.addrs[0]).Addr(), int32(netip.MustParseAddrPort(o.addrs[0]).Port()))
	p.run([]step{
		{name: "first visit 1"},
		{name: "first visit 2"},
		{name: "first visit 3"},
		{name: "first visit 4, other cookies", cookie: "a=1; b=2"},
		{name: "cacheable first visit", path: "/?cacheable=1"},
		{name: "return visit", cookie: "a=1; SERVER_USED={cookie:web2}; b=2"},
		{name: "return visit, only cookie", cookie: "SERVER_USED={cookie:web3}"},
		{name: "invalid cookie", cookie: "SERVER_USED=0123456789abcdef"},
		{name: "empty cookie", cookie: "SERVER_USED="},
		{command: "set server servers/web2 state drain"},
		{name: "drained server keeps its client", cookie: "SERVER_USED={cookie:web2}"},
		{name: "drained server takes no new client 1", anyServer: true},
		{name: "drained server takes no new client 2", anyServer: true},
		{command: "set server servers/web2 state maint"},
		{name: "cookie for a server in maintenance", cookie: "SERVER_USED={cookie:web2}", anyServer: true},
		{command: "set server servers/web2 state ready"},
		{name: "server back", cookie: "SERVER_USED={cookie:web2}"},
		{command: "disable dynamic-cookie backend servers"},
		{name: "dynamic cookies disabled", cookie: "SERVER_USED=" + web1, anyServer: true},
		{name: "dynamic cookies disabled, no cookie", anyServer: true},
		{command: "enable dynamic-cookie backend servers"},
		{name: "dynamic cookies enabled again", cookie: "SERVER_USED=" + web1},
		{command: "set dynamic-cookie-key backend servers anotherkey"},
		{name: "old cookie after key change", cookie: "SERVER_USED=" + web1, anyServer: true},
		{name: "new cookie after key change", cookie: "SERVER_USED={cookie:web3}"},
		{name: "POST first visit", method: http.MethodPost, anyServer: true},
	})
}

func TestCookieModesMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 2)
	modes := []struct {
		name   string
		cookie string
		steps  []step
	}{
		{"rewrite", "cookie JSID rewrite", []step{
			{name: "server sets cookie", path: "/?setcookie=JSID%3Dabc%3B%20Path%3D%2Fapp"},
			{name: "return visit", cookie: "JSID=w2"},
			{name: "unknown", cookie: "JSID=zzz"},
		}},
		{"prefix", "cookie JSID prefix", []step{
			{name: "server sets cookie", path: "/?setcookie=JSID%3Dabc"},
			{name: "prefixed return visit", cookie: "x=1; JSID=w2~abc"},
			{name: "unprefixed value", cookie: "JSID=abc"},
		}},
		{"insert options", "cookie SRV insert indirect nocache httponly secure domain .example.com attr SameSite=Lax", []step{
			{name: "first visit"},
			{name: "cacheable", path: "/?cacheable=1"},
			{name: "return visit", cookie: "SRV=w1"},
			{name: "server sets the same cookie", path: "/?setcookie=SRV%3Dapp", cookie: "SRV=w1"},
		}},
		{"insert without indirect", "cookie SRV insert", []step{
			{name: "first visit"},
			{name: "return visit keeps cookie for server", cookie: "SRV=w2; other=1"},
			{name: "server sets the cookie", path: "/?setcookie=SRV%3Dapp"},
		}},
		{"preserve", "cookie SRV insert preserve indirect", []step{
			{name: "server logs out", path: "/?setcookie=SRV%3D%3B%20Max-Age%3D0", cookie: "SRV=w1"},
			{name: "first visit"},
		}},
		{"dates", "cookie SRV insert indirect maxidle 30m maxlife 8h", []step{
			{name: "first visit gets both dates", dates: true},
			{name: "expired by maxlife", cookie: "SRV=w1|ZVPxA|ZVPxA", dates: true},
			{name: "dates on a cookie without them", cookie: "SRV=w2", dates: true},
			{name: "date in the far future", cookie: "SRV=w2|zzzzz", dates: true},
		}},
		{"maxidle only", "cookie SRV insert indirect maxidle 1h", []step{
			{name: "last date only", dates: true},
			{name: "first date dropped", cookie: "SRV=w2|ZVPxA|ZVPxA", dates: true},
		}},
		{"responses", "cookie SRV insert indirect nocache", []step{
			{name: "several Set-Cookie from the server", path: "/?setcookie=a%3D1&setcookie=SRV%3Dx&setcookie=b%3D2"},
			{name: "cacheable by validator only", path: "/?etag=1"},
			{name: "cacheable 404", path: "/?status=404&cacheable=1"},
			{name: "non-cacheable 302", path: "/?status=302&cacheable=1"},
			{name: "304", path: "/?status=304&etag=1"},
			{name: "server error", path: "/?status=500"},
			{name: "chunked body", path: "/?chunked=1"},
			{name: "HEAD", method: http.MethodHead},
			{name: "two persistence cookies, first invalid", cookie: "SRV=bad; SRV=w2"},
			{name: "two persistence cookies, first valid", cookie: "SRV=w2; SRV=w1"},
			{name: "cookie name as a prefix of another", cookie: "SRVX=w2; SRV=w1"},
		}},
		{"postonly", "cookie SRV insert postonly", []step{
			{name: "GET gets no cookie"},
			{name: "POST gets a cookie", method: http.MethodPost},
		}},
		{"passive", "cookie SRV", []step{
			{name: "no insert"},
			{name: "cookie routes", cookie: "SRV=w2"},
			{name: "server cookie untouched", path: "/?setcookie=SRV%3Dw1"},
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			p := startPair(t, func(bind, socket string) string {
				return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
					"backend app\n    " + m.cookie + "\n" +
					fmt.Sprintf("    server web1 %s cookie w1\n    server web2 %s cookie w2\n", o.addrs[0], o.addrs[1])
			})
			p.run(m.steps)
		})
	}
}
