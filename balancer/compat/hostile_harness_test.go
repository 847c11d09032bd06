package compat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tether/balancer/e2etest"
)

// This file is the harness of the hostile differential suites: HAProxy and
// the tether binary run the same configuration, each in front of its own
// scripted origins, one frontend, backend and origin per case, so that no
// case shares an upstream connection with another. Each case's outcome is
// reduced to a class (status or how the connection ended, whether it stays
// usable, what the origin received, whether canaries from other clients
// still get their own responses) and the classes are compared.

// tetherBuild is the tether binary built once per test binary, removed by
// TestMain.
var tetherBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tetherBuild.dir != "" {
		os.RemoveAll(tetherBuild.dir)
	}
	os.Exit(code)
}

// tetherBinary builds ./cmd/tether once and returns its path.
func tetherBinary(t *testing.T) string {
	t.Helper()
	tetherBuild.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		dir, err := os.MkdirTemp("", "tether-hostile-")
		if err != nil {
			tetherBuild.err = fmt.Errorf("make a directory for the tether binary: %w", err)
			return
		}
		tetherBuild.dir = dir
		path := filepath.Join(dir, "tether")
		out, err := exec.Command(goBin, "build", "-o", path, "tether/cmd/tether").CombinedOutput()
		if err != nil {
			tetherBuild.err = fmt.Errorf("go build tether/cmd/tether: %v\n%s", err, out)
			return
		}
		tetherBuild.path = path
	})
	if tetherBuild.err != nil {
		t.Fatal(tetherBuild.err)
	}
	return tetherBuild.path
}

// hostileTimeouts are the defaults both proxies run with: short, so that
// every timeout case ends quickly.
const hostileTimeouts = `    timeout connect 1s
    timeout client 400ms
    timeout server 500ms
    timeout http-request 300ms
    timeout tunnel 500ms
`

// Bounds of the client side. None is a timing assertion: each only stops
// a wait that would otherwise be endless, well past the proxies' timeouts.
const (
	answerLimit = 3 * time.Second // for a response to a hostile request
	probeLimit  = 2 * time.Second // for a response to a canary
)

// hostileCaseSpec is what the harness needs of a case: its name (also the
// frontend and backend names), the script of its origin and any lines of
// its own for the backend.
type hostileCaseSpec struct {
	name    string
	script  originScript
	backend string
}

// hostileWorld is one proxy with its own origins.
type hostileWorld struct {
	proxy   string                // "haproxy" or "tether"
	binds   map[string]string     // case name → frontend address
	origins map[string]*rawOrigin // case name → its origin
}

var nameUnsafe = regexp.MustCompile(`[^a-z0-9_-]+`)

// sectionName is a case name usable as a proxy name.
func sectionName(s string) string { return nameUnsafe.ReplaceAllString(strings.ToLower(s), "_") }

// hostileConfig renders the configuration: one frontend, backend and
// server per case.
func hostileConfig(specs []hostileCaseSpec, binds map[string]string, origins map[string]*rawOrigin) string {
	var b strings.Builder
	b.WriteString("global\n    noreuseport\n\ndefaults\n    mode http\n" + hostileTimeouts + "\n")
	for _, s := range specs {
		n := sectionName(s.name)
		fmt.Fprintf(&b, "frontend f_%s\n    bind %s\n    default_backend b_%s\n\n", n, binds[s.name], n)
		fmt.Fprintf(&b, "backend b_%s\n%s    server s1 %s\n\n", n, s.backend, origins[s.name].addr())
	}
	return b.String()
}

// startHostileWorlds starts HAProxy and tether, each with its own origins
// scripted by specs, and waits until every frontend accepts connections.
// Their configurations are the same text but for the addresses.
func startHostileWorlds(t *testing.T, specs []hostileCaseSpec) (haproxy, tether *hostileWorld) {
	t.Helper()
	haproxyBin := e2etest.RequireProgram(t, "haproxy")
	tetherBin := tetherBinary(t)
	dir := t.TempDir()
	// Origins first, then the frontend ports, all reserved at once: a port
	// reserved and released could otherwise be handed out again to an
	// origin or a client connection before its proxy binds it.
	haproxy = &hostileWorld{proxy: "haproxy", binds: map[string]string{}, origins: map[string]*rawOrigin{}}
	tether = &hostileWorld{proxy: "tether", binds: map[string]string{}, origins: map[string]*rawOrigin{}}
	worlds := []*hostileWorld{haproxy, tether}
	for _, w := range worlds {
		for _, s := range specs {
			w.origins[s.name] = startRawOrigin(t, s.script)
		}
	}
	ports := distinctPorts(t, len(worlds)*len(specs))
	for i, w := range worlds {
		for j, s := range specs {
			w.binds[s.name] = ports[i*len(specs)+j]
		}
	}
	hCfg, tCfg := filepath.Join(dir, "haproxy.cfg"), filepath.Join(dir, "tether.cfg")
	for path, w := range map[string]*hostileWorld{hCfg: haproxy, tCfg: tether} {
		if err := os.WriteFile(path, []byte(hostileConfig(specs, w.binds, w.origins)), 0o600); err != nil {
			t.Fatalf("write %s configuration: %v", w.proxy, err)
		}
	}
	hWait := runProxy(t, haproxy, exec.Command(haproxyBin, "-db", "-f", hCfg))
	tWait := runProxy(t, tether, exec.Command(tetherBin, "serve", "-f", tCfg, "-db", filepath.Join(dir, "x.db"), "-console", "", "-socket", filepath.Join(dir, "t.sock")))
	hWait()
	tWait()
	return haproxy, tether
}

// runProxy starts cmd and stops it at cleanup, showing its output if the
// test failed. The function it returns waits until every frontend of w
// accepts connections.
func runProxy(t *testing.T, w *hostileWorld, cmd *exec.Cmd) (waitListening func()) {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", w.proxy, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", w.proxy, out.String())
		}
	})
	return func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for _, addr := range w.binds {
			for {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
					break
				}
				select {
				case <-exited:
					t.Fatalf("%s exited before listening on %s", w.proxy, addr)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s does not listen on %s: %v", w.proxy, addr, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// rawClient is one client connection sending hand-written requests.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{conn: c, br: bufio.NewReader(c)}
}

// answer is how one response ended, as a client sees it.
type answer struct {
	Status int    // 0 when no response head arrived
	End    string // "" (complete), "truncated", "stalled", "closed without response", "reset", "no response"
	Header http.Header
	Body   []byte
	Close  bool // the response said the connection closes
}

// String is the answer's class: "200", "200 truncated", "reset", ...
func (a answer) String() string {
	switch {
	case a.Status == 0:
		return a.End
	case a.End == "":
		return fmt.Sprint(a.Status)
	default:
		return fmt.Sprintf("%d %s", a.Status, a.End)
	}
}

func (a answer) complete() bool { return a.Status != 0 && a.End == "" }

// send writes raw; a write error is left for the read to classify.
func (c *rawClient) send(raw string) {
	c.conn.SetWriteDeadline(time.Now().Add(answerLimit))
	io.WriteString(c.conn, raw)
}

// read reads one response to a request of the given method.
func (c *rawClient) read(method string, limit time.Duration) answer {
	c.conn.SetReadDeadline(time.Now().Add(limit))
	defer c.conn.SetReadDeadline(time.Time{})
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return answer{End: endOf(err, "closed without response")}
	}
	body, err := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: body, Close: resp.Close}
	if err != nil {
		a.End = "truncated"
		if endOf(err, "") == "no response" {
			a.End = "stalled"
		}
	}
	return a
}

// endOf names how a read ended: reset, timeout or orElse.
func endOf(err error, orElse string) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "no response"
	}
	return orElse
}

// roundTrip sends raw and reads the response.
func (c *rawClient) roundTrip(raw, method string, limit time.Duration) answer {
	c.send(raw)
	return c.read(method, limit)
}

// canaryRequest is a keep-alive GET for the given token.
func canaryRequest(tok string) string {
	return "GET /canary/" + tok + " HTTP/1.1\r\nHost: canary.test\r\n\r\n"
}

// canaryProblem checks that a is the canary response for tok, and says
// what is wrong with it otherwise.
func canaryProblem(a answer, tok string) string {
	if !a.complete() {
		return "got " + a.String()
	}
	want := "token=" + tok
	if a.Status != 200 || a.Header.Get("X-Token") != tok || string(a.Body) != want || !slices.Equal(a.Header.Values("Set-Cookie"), []string{"tok=" + tok}) {
		return fmt.Sprintf("got %d X-Token %q Set-Cookie %q body %q", a.Status, a.Header.Get("X-Token"), a.Header.Values("Set-Cookie"), truncateForLog(a.Body))
	}
	return ""
}

// probe sends a canary on an existing connection, after a complete
// response, and classifies the connection: usable, closed or desync (it
// answered with someone else's response).
func (c *rawClient) probe(tok string) string {
	a := c.roundTrip(canaryRequest(tok), http.MethodGet, probeLimit)
	switch p := canaryProblem(a, tok); {
	case p == "":
		return "usable"
	case a.Status == 0 && a.End == "no response":
		return "hung"
	case a.Status == 0:
		return "closed"
	default:
		return "desync"
	}
}

// canaryClients is how many new client connections check a case's
// frontend afterwards; each sends two requests on one connection, so that
// the second may reuse an idle upstream connection in either proxy.
const canaryClients = 3

// runCanaries sends the canaries and returns "ok" or "FAILED", and what
// went wrong.
func runCanaries(t *testing.T, addr, prefix string) (class, details string) {
	t.Helper()
	var problems []string
	for i := range canaryClients {
		c := dialRaw(t, addr)
		for j := range 2 {
			tok := fmt.Sprintf("%s-%d-%d", prefix, i, j)
			if p := canaryProblem(c.roundTrip(canaryRequest(tok), http.MethodGet, probeLimit), tok); p != "" {
				problems = append(problems, tok+": "+p)
				break
			}
		}
		c.conn.Close()
	}
	if len(problems) == 0 {
		return "ok", ""
	}
	return "FAILED", strings.Join(problems, "; ")
}

func truncateForLog(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// compareClasses fails a case whose canaries did not get their own
// responses through Tether (even if they failed through HAProxy too), or
// whose class differs from HAProxy's unless the difference is deliberate;
// a deliberate difference that no longer shows fails too, so the list
// stays true.
func compareClasses(t *testing.T, deliberate map[string]string, name, haproxy, tether string) {
	t.Helper()
	why, isDeliberate := deliberate[name]
	t.Logf("classes\n  haproxy %s\n  tether  %s", haproxy, tether)
	if !strings.HasSuffix(tether, "canaries ok") {
		// No difference excuses another client's response.
		t.Errorf("%s: a canary did not get its own response through Tether", name)
		return
	}
	if haproxy == tether {
		if isDeliberate {
			// A stale entry would hide a later regression.
			t.Errorf("%s now matches HAProxy: remove it from the deliberate differences", name)
		}
		return
	}
	if isDeliberate {
		t.Logf("deliberate difference: %s", why)
		return
	}
	t.Errorf("%s differs from HAProxy", name)
}

// pollUntil polls cond every 10 ms until it holds or limit passes.
func pollUntil(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
