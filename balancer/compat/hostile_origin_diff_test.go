package compat

// The hostile-origin differential tests: an origin that breaks HTTP/1.1
// framing in one way per case, behind HAProxy and behind Tether on the same
// configuration (hostileConfig: timeout server 500ms), then canaries from
// other clients. A class reads "client ANSWER, conn AFTERWARDS, origin
// REQUESTS NOTES, canaries ok|FAILED"; see hostile_harness_test.go.
//
// HAProxy 2.6.12 (Debian 12), observed by running each case:
//
//	body on HEAD                          200, conn usable, origin [HEAD], canaries ok
//	body on 204                           204, conn usable, origin [GET], canaries ok
//	body on 304                           304, conn usable, origin [GET], canaries ok
//	Content-Length smaller than the body  200, conn usable, origin [GET], canaries ok
//	(an unsolicited second response sent with the first is the case above;
//	sent a moment later, it races the client's next request for the server
//	connection in HAProxy and Tether alike: either may hand it to that
//	request, so it is not a case here)
//	bytes while idle                      200, conn usable, origin [GET]; the upstream
//	                                      connection that got them is closed, canaries ok
//	chunked body cut off                  200 truncated (the client sees the cut), canaries ok
//	invalid chunk size                    502, conn usable, canaries ok
//	Content-Length body cut short         200 truncated, canaries ok
//	Content-Length body missing           200 head, then cut, canaries ok
//	Content-Length +5                     502, conn usable, canaries ok
//	duplicate identical Content-Length    200, conn usable (the two are merged), canaries ok
//	differing duplicate Content-Length    502, conn usable, canaries ok
//	bare CR in a header                   502, conn usable, canaries ok
//	101 without Upgrade                   502, conn usable, canaries ok
//	20 KB response header                 502 (over tune.bufsize), conn usable, canaries ok
//	GET slower than timeout server        504, conn usable, origin [GET] once, upstream
//	                                      closed by the proxy, canaries ok
//	POST slower than timeout server       504, conn usable, origin [POST] once, canaries ok
//	reset on a reused connection, GET     closed without a response (the client may
//	                                      retry), origin [GET] once, canaries ok
//	reset on a reused connection, POST    closed without a response, origin [POST] once,
//	                                      canaries ok
//
// Fuzz (TestHostileOriginFuzz, 24 seeds): every seed's canaries get their
// own responses through HAProxy.

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// originDifferences are the cases in which Tether ends a hostile origin
// otherwise than HAProxy on purpose, each with the reason. Canaries must
// get their own responses in every case.
var originDifferences = map[string]string{
	"bytes while idle": "an idle server connection is checked (one non-blocking peek) when it is " +
		"taken for a request and closed if the server wrote to it, instead of being watched while idle; " +
		"the client here idles past timeout http-keep-alive while the test waits for HAProxy's close",
	"Content-Length body missing": "a response is sent to the client with the first bytes of its " +
		"body, so a server that closes after the head, before any body byte, gets the client a 502; " +
		"HAProxy forwards the 200 head, then cuts the connection",
	"reset on a reused connection, GET": "a safe request without a body, on a reused connection " +
		"that fails before any response byte, is sent once more on a new connection (the server may " +
		"have closed it while idle), as browsers and Go's client do; HAProxy closes the client connection",
}

// hostileOriginCase is one misbehaving origin: the client's request, the
// origin's script, and what happens between the answer and the canaries.
type hostileOriginCase struct {
	name   string
	method string // GET when empty
	// prime sends a canary on the same client connection first, so that
	// the case's request goes over a reused upstream connection.
	prime  bool
	script originScript
	// afterAnswer runs once the client has the answer (or gave up), before
	// the connection is probed.
	afterAnswer func(o *rawOrigin)
}

// writeAndKeep answers with raw and keeps the connection open for the next
// request, as an origin that believes it framed its response correctly.
func writeAndKeep(raw string) originScript {
	return func(c *originConn, _ *originRequest) bool {
		_, err := io.WriteString(c, raw)
		return err == nil
	}
}

// writeAndClose answers with raw and closes the connection.
func writeAndClose(raw string) originScript {
	return func(c *originConn, _ *originRequest) bool {
		io.WriteString(c, raw)
		return false
	}
}

// originHoldLimit bounds how long a slow origin waits for the proxy to give
// up, several times timeout server.
const originHoldLimit = 2 * time.Second

// slowAnswer waits for the proxy to close the connection (timeout server)
// and answers only if it did not.
func slowAnswer(c *originConn, _ *originRequest) bool {
	if c.waitPeerClose(originHoldLimit) {
		c.o.note("closed by proxy")
		return false
	}
	c.o.note("answered late")
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
	return true
}

// resetWhenReused resets a reused connection right after reading the
// request, so that the proxy sees the failure only after writing it; on a
// new connection (a retry) it answers.
func resetWhenReused(c *originConn, _ *originRequest) bool {
	if c.served > 0 {
		c.o.note("reset")
		c.reset()
		return false
	}
	c.o.note("answered on a new connection")
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	return true
}

// idleBytes answers correctly and keeps the connection so that poison can
// be written on it once it is idle.
func idleBytes(c *originConn, _ *originRequest) bool {
	c.hold()
	_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	return err == nil
}

// writeIdlePoison writes a whole response on the idle connection, then waits
// a bounded time for the proxy to close it.
func writeIdlePoison(o *rawOrigin) {
	c := o.heldConn()
	if c == nil {
		o.note("no idle connection")
		return
	}
	io.WriteString(c, poisonResponse)
	select {
	case <-c.gone:
		o.note("idle connection closed by proxy")
	case <-time.After(time.Second):
		o.note("idle connection kept")
	}
}

var hostileOriginCases = []hostileOriginCase{
	{name: "body on HEAD", method: http.MethodHead,
		script: writeAndKeep(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(poisonResponse), poisonResponse))},
	{name: "body on 204", script: writeAndKeep("HTTP/1.1 204 No Content\r\n\r\n" + poisonResponse)},
	{name: "body on 304", script: writeAndKeep("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n" + poisonResponse)},
	{name: "Content-Length smaller than the body", script: writeAndKeep("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + poisonResponse)},
	{name: "bytes while idle", script: idleBytes, afterAnswer: writeIdlePoison},
	{name: "chunked body cut off", script: writeAndClose("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")},
	{name: "invalid chunk size", script: writeAndKeep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n")},
	{name: "Content-Length body cut short", script: writeAndClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")},
	{name: "Content-Length body missing", script: writeAndClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")},
	{name: "Content-Length +5", script: writeAndKeep("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello")},
	{name: "duplicate identical Content-Length", script: writeAndKeep("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")},
	{name: "differing duplicate Content-Length", script: writeAndKeep("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")},
	{name: "bare CR in a header", script: writeAndKeep("HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 5\r\n\r\nhello")},
	{name: "101 without Upgrade", script: writeAndKeep("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + poisonResponse)},
	{name: "20 KB response header", script: writeAndKeep("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\nContent-Length: 5\r\n\r\nhello")},
	{name: "GET slower than timeout server", script: slowAnswer},
	{name: "POST slower than timeout server", method: http.MethodPost, script: slowAnswer},
	{name: "reset on a reused connection, GET", prime: true, script: resetWhenReused},
	{name: "reset on a reused connection, POST", method: http.MethodPost, prime: true, script: resetWhenReused},
}

// runHostileOriginCase plays one case against one proxy and returns its
// class, logging what the canaries saw when they failed.
func runHostileOriginCase(t *testing.T, w *hostileWorld, c hostileOriginCase) string {
	t.Helper()
	addr, o := w.binds[c.name], w.origins[c.name]
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	cl := dialRaw(t, addr)
	prime := ""
	if c.prime {
		if p := canaryProblem(cl.roundTrip(canaryRequest("prime"), http.MethodGet, probeLimit), "prime"); p != "" {
			prime = "prime failed: " + p + ", "
		}
	}
	req := method + " /h/" + sectionName(c.name) + " HTTP/1.1\r\nHost: origin.test\r\n"
	if method == http.MethodPost {
		req += "Content-Length: 0\r\n"
	}
	a := cl.roundTrip(req+"\r\n", method, answerLimit)
	if c.afterAnswer != nil {
		c.afterAnswer(o)
	}
	conn := "n/a"
	if a.complete() {
		conn = cl.probe("probe")
	}
	cl.conn.Close()
	o.waitScripts(answerLimit)
	canaries, details := runCanaries(t, addr, w.proxy)
	if details != "" {
		t.Logf("%s: %s: canaries: %s", w.proxy, c.name, details)
	}
	return fmt.Sprintf("%sclient %s, conn %s, origin %s, canaries %s", prime, a, conn, o.class(), canaries)
}

// TestHostileOriginMatchesHAProxy runs each misbehaving origin behind
// HAProxy and Tether and compares the outcome classes. Whatever the class,
// canaries from other clients must get their own responses afterwards.
func TestHostileOriginMatchesHAProxy(t *testing.T) {
	specs := make([]hostileCaseSpec, len(hostileOriginCases))
	for i, c := range hostileOriginCases {
		specs[i] = hostileCaseSpec{name: c.name, script: c.script}
	}
	haproxy, tether := startHostileWorlds(t, specs)
	for _, c := range hostileOriginCases {
		t.Run(c.name, func(t *testing.T) {
			want := runHostileOriginCase(t, haproxy, c)
			got := runHostileOriginCase(t, tether, c)
			compareClasses(t, originDifferences, c.name, want, got)
		})
	}
}

// fuzzSeeds is how many random mutations of a valid response the fuzz
// test plays; the seeds are 1..fuzzSeeds, so every run plays the same ones.
const fuzzSeeds = 24

// fuzzResponse mutates a valid response (plain or chunked) one to three
// times; close says whether the origin closes the connection after it.
func fuzzResponse(seed uint64) (raw string, close bool, desc []string) {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	b := []byte(canaryResponse("fuzz"))
	if r.IntN(2) == 0 {
		b = []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Token: fuzz\r\nSet-Cookie: tok=fuzz\r\n\r\n4\r\ntoke\r\n6\r\nn=fuzz\r\n0\r\n\r\n")
		desc = append(desc, "chunked")
	}
	special := []byte("\r\n :09a+-,;\x00\t")
	for range 1 + r.IntN(3) {
		switch k := r.IntN(8); k {
		case 0:
			i, c := r.IntN(len(b)), special[r.IntN(len(special))]
			desc = append(desc, fmt.Sprintf("byte %d=%q", i, c))
			b[i] = c
		case 1:
			i, c := r.IntN(len(b)+1), special[r.IntN(len(special))]
			desc = append(desc, fmt.Sprintf("insert %q at %d", c, i))
			b = append(b[:i], append([]byte{c}, b[i:]...)...)
		case 2:
			i := r.IntN(len(b))
			desc = append(desc, fmt.Sprintf("delete %d", i))
			b = append(b[:i], b[i+1:]...)
		case 3:
			lines := strings.SplitAfter(string(b), "\r\n")
			i := 1 + r.IntN(max(1, min(len(lines)-1, 4)))
			if i < len(lines) {
				desc = append(desc, fmt.Sprintf("repeat line %q", lines[i]))
				lines = append(lines[:i+1], lines[i:]...)
			}
			b = []byte(strings.Join(lines, ""))
		case 4:
			cl := []string{"+10", "10 10", "010", "-1", "99999", "9", "11", "0", "10, 10", "0x0a"}[r.IntN(10)]
			desc = append(desc, "Content-Length "+cl)
			head, body, _ := strings.Cut(string(b), "\r\n\r\n")
			b = []byte(head + "\r\nContent-Length: " + cl + "\r\n\r\n" + body)
		case 5:
			desc = append(desc, "poison appended")
			b = append(b, poisonResponse...)
		case 6:
			n := 1 + r.IntN(len(b)-1)
			desc = append(desc, fmt.Sprintf("cut at %d, close", n))
			b, close = b[:n], true
		case 7:
			st := []string{"100 Continue", "101 Switching Protocols", "204 No Content", "304 Not Modified", "199 Odd", "600 Beyond", "20 Short"}[r.IntN(7)]
			desc = append(desc, "status "+st)
			_, rest, _ := strings.Cut(string(b), "\r\n")
			b = []byte("HTTP/1.1 " + st + "\r\n" + rest)
		}
	}
	return string(b), close, desc
}

// TestHostileOriginFuzz plays seeded random mutations of a valid response
// behind both proxies. It asserts only the safety property, for Tether:
// canaries from other clients get their own responses. Both classes are
// logged side by side.
func TestHostileOriginFuzz(t *testing.T) {
	var specs []hostileCaseSpec
	var descs []string
	for seed := range uint64(fuzzSeeds) {
		raw, closeAfter, desc := fuzzResponse(seed + 1)
		descs = append(descs, strings.Join(desc, "; "))
		script := writeAndKeep(raw)
		if closeAfter {
			script = writeAndClose(raw)
		}
		specs = append(specs, hostileCaseSpec{name: "fuzz-" + strconv.FormatUint(seed+1, 10), script: script})
	}
	haproxy, tether := startHostileWorlds(t, specs)
	// The seeds share nothing (each has its frontend, backend and origin),
	// so they run side by side to keep the test short.
	t.Run("seeds", func(t *testing.T) {
		for i, s := range specs {
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				c := hostileOriginCase{name: s.name}
				h, g := runHostileOriginCase(t, haproxy, c), runHostileOriginCase(t, tether, c)
				t.Logf("%s\n  haproxy %s\n  tether  %s", descs[i], h, g)
				if !strings.HasSuffix(h, "canaries ok") {
					t.Logf("HAProxy's canaries failed too")
				}
				if strings.HasSuffix(g, "canaries ok") {
					return
				}
				t.Errorf("%s (%s): a canary did not get its own response through Tether: %s", s.name, descs[i], g)
			})
		}
	})
}
