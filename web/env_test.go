package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"tether/balancer"
	"tether/balancer/haproxycfg"
	"tether/balancer/runtimeapi"
	"tether/store"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// origin is a test origin server that says who it is and can be stopped
// and started again on the same port.
type origin struct {
	name string
	addr string
	mu   sync.Mutex
	srv  *http.Server
	ln   net.Listener
}

func startOrigin(t testing.TB, name string) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for origin %s: %v", name, err)
	}
	o := &origin{name: name, addr: ln.Addr().String()}
	o.serve(ln)
	t.Cleanup(o.stop)
	return o
}

func (o *origin) serve(ln net.Listener) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ln = ln
	o.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin", o.name)
		fmt.Fprintf(w, "hello from %s\n", o.name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = o.srv.Serve(ln) }()
}

func (o *origin) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.srv != nil {
		_ = o.srv.Close()
		o.srv = nil
	}
}

func (o *origin) port() string {
	_, p, _ := net.SplitHostPort(o.addr)
	return p
}

// env is a whole console on loopback: origins, the real balancer with its
// frontend, the runtime API dispatcher, a SQLite store, and the console.
type env struct {
	t        testing.TB
	origins  []*origin
	bal      *balancer.Balancer
	disp     *runtimeapi.Dispatcher
	st       *store.Store
	srv      *Server
	console  *httptest.Server
	frontend *httptest.Server
	cancel   context.CancelFunc
	// stop ends everything newEnv started, once; the test's cleanup calls
	// it too.
	stop func()
}

const testConfig = `
frontend fe
    bind 127.0.0.1:8080
    default_backend servers

backend servers
    balance roundrobin
    cookie SERVERID insert indirect nocache dynamic
    dynamic-cookie-key s3cr3t-key
    option httpchk GET /
    server s1 127.0.0.1:%s check inter 100ms fall 2 rise 2
    server s2 127.0.0.1:%s check inter 100ms fall 2 rise 2
    server s3 127.0.0.1:%s check inter 100ms fall 2 rise 2
`

// testPassword is the password of a test user.
func testPassword(name string) string { return name + "-plum-orbit" }

// newEnv starts everything; users alice (admin), olga (operator) and
// victor (viewer) exist. Each wrap may replace dependencies of the console,
// for instance to count calls.
func newEnv(t testing.TB, opts Options, wrap ...func(*Deps)) *env {
	t.Helper()
	return newEnvAt(t, filepath.Join(t.TempDir(), "tether.db"), testConfig, opts, wrap...)
}

// newEnvConfig is newEnv with another configuration: config is a format
// given the ports of the three origins s1, s2 and s3, in that order.
func newEnvConfig(t testing.TB, config string, opts Options, wrap ...func(*Deps)) *env {
	t.Helper()
	return newEnvAt(t, filepath.Join(t.TempDir(), "tether.db"), config, opts, wrap...)
}

// newEnvAt is newEnvConfig on the database at dbPath, which may hold what
// an earlier env (a process before a restart) left.
func newEnvAt(t testing.TB, dbPath, config string, opts Options, wrap ...func(*Deps)) *env {
	t.Helper()
	e := &env{t: t}
	for _, n := range []string{"s1", "s2", "s3"} {
		e.origins = append(e.origins, startOrigin(t, n))
	}
	text := fmt.Sprintf(config, e.origins[0].port(), e.origins[1].port(), e.origins[2].port())
	cfg, _, err := haproxycfg.Parse("test.cfg", []byte(text))
	if err != nil {
		t.Fatalf("parse test configuration: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.st, err = store.Open(ctx, dbPath, log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	e.bal, err = balancer.New(cfg, balancer.Options{Logger: log})
	if err != nil {
		t.Fatalf("build balancer: %v", err)
	}
	if err := e.st.ReplaceState(ctx, e.bal.State(), store.AuditEntry{Channel: "import", Command: "test setup"}); err != nil {
		t.Fatalf("seed store: %v", err)
	}
	e.bal.SetCommitter(e.st.Committer())
	e.disp = runtimeapi.NewDispatcher(e.bal, runtimeapi.DispatcherOptions{Logger: log,
		Audit: func(o balancer.Origin, command, result string) {
			_ = e.st.AppendAudit(context.Background(), store.AuditEntry{Actor: o.Actor, Channel: o.Channel, Source: o.Source, Command: command, Result: result})
		}})
	for name, role := range map[string]string{"alice": "admin", "olga": "operator", "victor": "viewer"} {
		if _, err := e.st.CreateUser(ctx, name, testPassword(name), role); err != nil && !errors.Is(err, store.ErrExists) {
			t.Fatalf("create user %s: %v", name, err)
		}
	}
	if opts.Batch == 0 {
		opts.Batch = 20 * time.Millisecond
	}
	if opts.Sample == 0 {
		opts.Sample = 100 * time.Millisecond
	}
	if opts.LoginCPUShare == 0 {
		opts.LoginCPUShare = -1 // password checks under -race are slow
	}
	if opts.HistorySample == 0 {
		opts.HistorySample = 50 * time.Millisecond
	}
	if opts.HistoryFlush == 0 {
		opts.HistoryFlush = 100 * time.Millisecond
	}
	deps := Deps{Balancer: e.bal, Runtime: e.disp, Sessions: e.st, Users: e.st, Audit: e.st, History: e.st}
	for _, w := range wrap {
		w(&deps)
	}
	e.srv = NewServer(log, deps, opts)
	h, err := e.bal.Handler("fe")
	if err != nil {
		t.Fatalf("frontend handler: %v", err)
	}
	e.frontend = httptest.NewServer(h)
	e.console = httptest.NewServer(e.srv)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = e.bal.Run(ctx) }()
	go func() { defer wg.Done(); _ = e.srv.Run(ctx) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			e.console.CloseClientConnections()
			e.console.Close()
			e.frontend.Close()
			cancel()
			wg.Wait()
			e.bal.Close()
			_ = e.st.Close()
		})
	}
	t.Cleanup(e.stop)
	return e
}

// client returns an HTTP client with a cookie jar that does not follow
// redirects.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login signs name in and returns the client holding the session.
func (e *env) login(name string) *http.Client {
	e.t.Helper()
	c := e.client()
	res, err := c.PostForm(e.console.URL+"/login", url.Values{"name": {name}, "password": {testPassword(name)}})
	if err != nil {
		e.t.Fatalf("log in %s: %v", name, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("log in %s: status %d, want 303", name, res.StatusCode)
	}
	return c
}

// get fetches a console page and parses it.
func (e *env) get(c *http.Client, path string) (*http.Response, *html.Node, string) {
	e.t.Helper()
	res, err := c.Get(e.console.URL + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	doc, err := html.Parse(strings.NewReader(string(body)))
	if err != nil {
		e.t.Fatalf("parse %s: %v", path, err)
	}
	return res, doc, string(body)
}

// post sends a form like a browser without JavaScript would (same-origin).
func (e *env) post(c *http.Client, path string, form url.Values, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.console.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.console.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// server returns a server's status from a fresh snapshot.
func (e *env) server(name string) *balancer.ServerStatus {
	s := e.bal.Snapshot().Backend("servers").Server(name)
	if s == nil {
		e.t.Fatalf("server %s not in snapshot", name)
	}
	return s
}

// attr returns an attribute of n.
func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// find returns the nodes below n for which match holds.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// byAttr matches elements with an attribute value ("" value: any).
func byAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		v, ok := attr(n, key)
		return ok && (val == "" || v == val)
	}
}

// text returns the text content of n.
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// cell returns the text of the field f of entity k in doc ("" and false
// when absent).
func cell(doc *html.Node, k, f string) (string, bool) {
	hasField := func(n *html.Node) bool {
		v, _ := attr(n, "data-f")
		for _, x := range strings.Split(v, ",") {
			if x == f {
				return true
			}
		}
		return false
	}
	for _, owner := range find(doc, byAttr("data-k", k)) {
		if hasField(owner) {
			return text(owner), true
		}
		for _, n := range find(owner, hasField) {
			return text(n), true
		}
	}
	return "", false
}
