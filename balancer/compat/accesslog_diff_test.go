package compat

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineBuffer collects what a process writes, safe for a writer and a
// reader.
type lineBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// accessLines returns the complete lines that have the layout of an
// access-log line: HAProxy's standard output also carries its server
// state changes, which Tether reports through its own logger.
func (b *lineBuffer) accessLines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines []string
	text := b.buf.String()
	text = text[:strings.LastIndexByte(text, '\n')+1]
	for l := range strings.Lines(text) {
		if l = strings.TrimSuffix(l, "\n"); accessLine.MatchString(l) {
			lines = append(lines, l)
		}
	}
	return lines
}

// accessLine matches the fixed layout of an "option httplog" line:
// client, date, frontend, backend/server, timers, status, bytes, the two
// captured cookies, termination state, connection counts, queues, the
// captured headers in braces (when the frontend captures any) and the
// quoted request line.
var accessLine = regexp.MustCompile(`^(\S+):(\d+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] (\S+) (\S+/\S+) (-?\d+/-?\d+/-?\d+/-?\d+/-?\d+) (-?\d+) (\d+) (\S+) (\S+) (\S{4}) (\d+/\d+/\d+/\d+/\+?\d+) (\d+/\d+)((?: \{[^}]*\}){0,2}) "([^"]*)"$`)

// maskedLine returns an access-log line's fields, with the ones that
// differ by nature replaced:
//   - the client port (each process gets its own connections) and the
//     accept date (the processes run the same request at different
//     moments) are dropped;
//   - each timer that ran is written "T" (durations differ from run to
//     run; timersClose compares their values within a tolerance); a
//     timer HAProxy writes -1, for a phase that did not happen, stays
//     -1, so that which phases happened is compared;
//   - the byte count is dropped: the proxies send different header sets
//     (HAProxy passes the origin's Date, Tether's error pages have their
//     own length), which "response headers" tests compare elsewhere;
//   - the four connection counts (process, frontend, backend, server) are
//     written "C": they are snapshots of concurrency, and whether the
//     previous request's connection is still being closed when a line is
//     written differs between the processes from run to run.
//
// Everything else is compared as written: client address, frontend,
// backend/server, status, captured cookies, termination state with the
// persistence cookie flags, retries (with the "+" of a redispatch),
// queues, captured headers and the request line.
func maskedLine(line string) []string {
	m := accessLine.FindStringSubmatch(line)
	if m == nil {
		return []string{"not an access-log line: " + line}
	}
	timers := strings.Split(m[6], "/")
	for i, v := range timers {
		if v != "-1" {
			timers[i] = "T"
		}
	}
	conns := strings.Split(m[12], "/")
	for i := range 4 {
		conns[i] = "C"
	}
	return []string{
		"client " + m[1],
		"frontend " + m[4],
		"backend/server " + m[5],
		"timers " + strings.Join(timers, "/"),
		"status " + m[7],
		"termination " + m[11],
		"conns " + strings.Join(conns, "/"),
		"queues " + m[13],
		"request " + m[15],
		"captured cookies " + m[9] + " " + m[10],
		"captured headers" + m[14],
	}
}

// timerTolerance is how far apart the two proxies' values of a timer may
// be: both measure the same exchange, on a machine that may be busy.
const timerTolerance = 100

// lineTimers returns the timers of an access-log line, in order: the
// TR/Tw/Tc/Tr/Ta of an httplog line, or the values of the timer fields of
// a key=value line.
func lineTimers(line string) []int {
	var values []string
	if m := accessLine.FindStringSubmatch(line); m != nil {
		values = strings.Split(m[6], "/")
	} else {
		for _, tok := range logTokens(line) {
			if key, value, ok := strings.Cut(tok, "="); ok && hasWord("Th Ti TR Tq Tw Tc Tr Ta Tt Td", key) {
				values = append(values, value)
			}
		}
	}
	timers := make([]int, len(values))
	for i, v := range values {
		fmt.Sscan(v, &timers[i])
	}
	return timers
}

// timersClose reports how the timers of two lines for the same request
// differ beyond timerTolerance, nil when they do not: the masks keep
// which timers ran, this compares their values.
func timersClose(h, t string) error {
	ht, tt := lineTimers(h), lineTimers(t)
	if len(ht) != len(tt) {
		return fmt.Errorf("%d timers against %d", len(ht), len(tt))
	}
	for i := range ht {
		if ht[i] >= 0 && tt[i] >= 0 && (ht[i]-tt[i] > timerTolerance || tt[i]-ht[i] > timerTolerance) {
			return fmt.Errorf("timer %d: %d against %d", i+1, ht[i], tt[i])
		}
	}
	return nil
}

// startGarbageOrigin starts a server that answers every request with
// something that is not HTTP, which both proxies turn into a 502.
func startGarbageOrigin(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil || strings.TrimSpace(l) == "" {
						break
					}
				}
				io.WriteString(c, "garbage\r\n\r\n")
			}()
		}
	}()
	return ln.Addr().String()
}

// TestAccessLogMatchesHAProxy runs HAProxy and Tether with "log stdout
// format raw local0" and "option httplog", sends both the same requests,
// one connection each, and compares their access-log lines field by field
// (see maskedLine for what is masked). The termination state, whose last
// two letters tell what became of the persistence cookie, must be the same.
func TestAccessLogMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 2)
	dead := deadAddr(t)
	garbage := startGarbageOrigin(t)
	p := startPair(t, func(bind, socket string) string {
		return "global\n    " + socket + "\n    log stdout format raw local0\n\n" +
			"defaults\n    mode http\n    log global\n    option httplog\n    option dontlognull\n" +
			"    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n" +
			"frontend fe\n    bind " + bind + "\n" +
			"    http-request deny if { path_beg /deny }\n" +
			"    http-request return status 200 content-type text/plain string ok if { path_beg /return }\n" +
			"    http-request redirect location /elsewhere if { path_beg /redirect }\n" +
			"    use_backend none if { path_beg /none }\n    use_backend bad if { path_beg /bad }\n    default_backend app\n\n" +
			"backend app\n    cookie SRV insert indirect nocache\n    option redispatch\n" +
			fmt.Sprintf("    server web1 %s cookie w1\n    server web2 %s cookie w2\n", o.addrs[0], o.addrs[1]) +
			fmt.Sprintf("    server dead %s cookie dd check inter 100ms fall 1 rise 1\n\n", dead) +
			"backend none\n    server off " + o.addrs[0] + " disabled\n\n" +
			"backend bad\n    server junk " + garbage + "\n"
	})
	deadline := time.Now().Add(10 * time.Second)
	for serverStatus(p.haproxyCmd("show stat"), "dead") != "DOWN" || p.tether.Snapshot().Backend("app").Server("dead").StatusText() != "DOWN" {
		if time.Now().After(deadline) {
			t.Fatalf("dead server not down in both: haproxy %q, tether %q", serverStatus(p.haproxyCmd("show stat"), "dead"),
				p.tether.Snapshot().Backend("app").Server("dead").StatusText())
		}
		time.Sleep(20 * time.Millisecond)
	}

	compareAccessLogs(t, p, []logRequest{
		{name: "new client without cookie", path: "/", want: "--NI"},
		{name: "valid cookie", path: "/", cookie: "SRV=w1", want: "--VN"},
		{name: "cookie naming a down server, redispatched", path: "/", cookie: "SRV=dd", want: "--DI"},
		{name: "invalid cookie", path: "/", cookie: "SRV=zz", want: "--II"},
		{name: "404 from the origin", path: "/?status=404", want: "--NI"},
		{name: "503, no server", path: "/none/x", want: "SC--"},
		{name: "502, the origin answers garbage", path: "/bad/y", want: "PH--"},
		{name: "query string, valid cookie for the other server", path: "/q?a=%22b%22", cookie: "SRV=w2", want: "--VN"},
		{name: "http-request deny", path: "/deny", want: "PR--"},
		{name: "http-request return", path: "/return", want: "LR--"},
		{name: "http-request redirect", path: "/redirect", want: "LR--"},
	})
}

// logRequest is a request both proxies get, and the termination state
// both must write for it.
type logRequest struct {
	name, path, cookie string
	want               string
	// header holds more request header fields, name then value.
	header []string
}

// compareAccessLogs sends each request to both proxies, one connection
// each, and compares the access-log lines they write, masked by
// maskedLine.
func compareAccessLogs(t *testing.T, p *pair, requests []logRequest) {
	t.Helper()
	compareLogLines(t, p, requests, (*lineBuffer).accessLines, maskedLine)
}

// compareLogLines sends each request to both proxies, one connection
// each, and compares the log lines that lines picks from their outputs,
// masked by mask. A request's want, when set, is the termination state
// HAProxy's line must show.
func compareLogLines(t *testing.T, p *pair, requests []logRequest, lines func(*lineBuffer) []string, mask func(string) []string) {
	t.Helper()
	client := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// HAProxy writes a line when the request's stream ends, which may be
	// after the next request's: each request waits for the previous
	// one's lines, so that lines and requests come in the same order.
	var hLines, tLines []string
	for i, rq := range requests {
		for _, base := range []string{p.haproxyURL, p.tetherURL} {
			url, c := base+rq.path, client
			if strings.HasPrefix(rq.path, "http://") {
				// An absolute URI: the proxy is asked as a forward proxy.
				url = rq.path
				proxy, err := neturl.Parse(base)
				if err != nil {
					t.Fatal(err)
				}
				c = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyURL(proxy)}}
			}
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rq.cookie != "" {
				req.Header.Set("Cookie", rq.cookie)
			}
			for i := 0; i+1 < len(rq.header); i += 2 {
				if rq.header[i] == "Host" {
					req.Host = rq.header[i+1]
					continue
				}
				req.Header.Add(rq.header[i], rq.header[i+1])
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s: %s: %v", rq.name, base, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			hLines, tLines = lines(p.haproxyOut), lines(p.tetherLog)
			if len(hLines) > i && len(tLines) > i {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: access-log lines: haproxy %d, tether %d, want %d each\nhaproxy's output:\n%s\ntether's:\n%s",
					rq.name, len(hLines), len(tLines), i+1, p.haproxyOut.String(), p.tetherLog.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if len(hLines) != len(requests) || len(tLines) != len(requests) {
		t.Fatalf("access-log lines: haproxy %d, tether %d, want %d each", len(hLines), len(tLines), len(requests))
	}
	for i, rq := range requests {
		h, tt := mask(hLines[i]), mask(tLines[i])
		for j := range h {
			if j >= len(tt) || h[j] != tt[j] {
				t.Errorf("%s: field %q differs\nhaproxy: %q\ntether:  %q", rq.name, h[j], hLines[i], tLines[i])
				break
			}
		}
		if err := timersClose(hLines[i], tLines[i]); err != nil {
			t.Errorf("%s: timers differ: %v\nhaproxy: %q\ntether:  %q", rq.name, err, hLines[i], tLines[i])
		}
		if len(tt) > len(h) {
			t.Errorf("%s: tether's line has more fields\nhaproxy: %q\ntether:  %q", rq.name, hLines[i], tLines[i])
		}
		if rq.want != "" && !slices.Contains(h, "termination "+rq.want) && !slices.Contains(h, rq.want) && !slices.Contains(h, "tsc="+rq.want) {
			t.Errorf("%s: haproxy's line has no termination state %s: %s", rq.name, rq.want, hLines[i])
		}
	}
	if t.Failed() {
		t.Logf("haproxy:\n%s\ntether:\n%s", strings.Join(hLines, "\n"), strings.Join(tLines, "\n"))
	}
}

// TestAccessLogCookieFlagsMatchHAProxy covers the response side of the
// persistence cookie flags, one backend per cookie mode, and a retry
// redispatched to another server (a "+" before the retry count).
func TestAccessLogCookieFlagsMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 2)
	dead := deadAddr(t)
	servers := fmt.Sprintf("    server web1 %s cookie w1\n", o.addrs[0])
	p := startPair(t, func(bind, socket string) string {
		return "global\n    " + socket + "\n    log stdout format raw local0\n\n" +
			"defaults\n    mode http\n    log global\n    option httplog\n" +
			"    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n" +
			"frontend fe\n    bind " + bind + "\n" +
			"    use_backend rewrite if { path_beg /rewrite }\n    use_backend prefix if { path_beg /prefix }\n" +
			"    use_backend preserve if { path_beg /preserve }\n    use_backend idle if { path_beg /idle }\n" +
			"    use_backend retry if { path_beg /retry }\n    default_backend insert\n\n" +
			"backend insert\n    cookie SRV insert indirect nocache\n" + servers + "\n" +
			"backend rewrite\n    cookie SRV rewrite\n" + servers + "\n" +
			"backend prefix\n    cookie SRV prefix\n" + servers + "\n" +
			"backend preserve\n    cookie SRV insert preserve\n" + servers + "\n" +
			"backend idle\n    cookie SRV insert maxidle 1h\n" + servers + "\n" +
			"backend retry\n    cookie SRV insert indirect\n    option redispatch\n    retries 2\n    timeout connect 200ms\n" +
			fmt.Sprintf("    server dead %s cookie dd\n", dead) + servers
	})
	compareAccessLogs(t, p, []logRequest{
		{name: "insert, server sets the cookie, new client", path: "/?setcookie=SRV=app", want: "--NI"},
		{name: "insert indirect, server sets the cookie, valid cookie", path: "/?setcookie=SRV=app", cookie: "SRV=w1", want: "--VD"},
		{name: "rewrite, server sets the cookie", path: "/rewrite?setcookie=SRV=app", want: "--NR"},
		{name: "rewrite, server sets none", path: "/rewrite", want: "--NN"},
		{name: "rewrite, valid cookie", path: "/rewrite", cookie: "SRV=w1", want: "--VN"},
		{name: "prefix, server sets the cookie", path: "/prefix?setcookie=SRV=app", want: "--NR"},
		{name: "prefix, valid prefixed cookie", path: "/prefix", cookie: "SRV=w1~app", want: "--VN"},
		{name: "preserve, server sets the cookie", path: "/preserve?setcookie=SRV=app", want: "--NP"},
		{name: "maxidle, valid cookie without a date", path: "/idle", cookie: "SRV=w1", want: "--VU"},
		{name: "cookie for a dead server, redispatched after a failed connection", path: "/retry", cookie: "SRV=dd", want: "--DI"},
	})
}

// TestAccessLogCapturesMatchHAProxy compares httplog lines with captured
// request and response headers and a captured cookie: the {…} blocks, in
// declaration order, cut to their lengths, with absent headers empty and
// special characters encoded; the cookie from the request's Cookie and
// from the server's Set-Cookie.
func TestAccessLogCapturesMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	p := startPair(t, func(bind, socket string) string {
		return "global\n    " + socket + "\n    log stdout format raw local0\n\n" +
			"defaults\n    mode http\n    log global\n    option httplog\n" +
			"    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n" +
			"frontend fe\n    bind " + bind + "\n" +
			"    capture request header Host len 9\n    capture request header X-Trace len 12\n" +
			"    capture request header x-missing len 5\n" +
			"    capture response header X-Origin len 3\n    capture response header Set-Cookie len 40\n" +
			"    capture cookie SRV len 12\n" +
			"    http-request deny if { path_beg /deny }\n    default_backend app\n\n" +
			"backend app\n    cookie SRV insert indirect nocache\n" +
			fmt.Sprintf("    server web1 %s cookie w1\n", o.addrs[0])
	})
	requests := []logRequest{
		{name: "no cookie, cookie inserted", path: "/", want: "--NI"},
		{name: "valid cookie among others", path: "/", cookie: "a=1; SRV=w1; b=2", want: "--VN"},
		{name: "cookie longer than the capture", path: "/", cookie: "SRVLONGNAME=0123456789", want: "--NI"},
		{name: "headers to encode and cut", path: "/", header: []string{"X-Trace", `a{b|c}"d#e`}, want: "--NI"},
		{name: "header given twice: the last one", path: "/", header: []string{"X-Trace", "first", "X-Trace", "second"}, want: "--NI"},
		{name: "server sets the cookie", path: "/?setcookie=SRV%3Dfrom-server%3B%20Path%3D%2F", cookie: "SRV=w1", want: "--VD"},
		{name: "server sets another cookie", path: "/?setcookie=other%3D1", want: "--NI"},
		{name: "denied: response headers absent", path: "/deny", cookie: "SRV=w1", want: "PR--"},
	}
	// The proxies listen on different addresses: each request names the
	// same host.
	for i := range requests {
		requests[i].header = append(requests[i].header, "Host", "shop.example.test")
	}
	compareAccessLogs(t, p, requests)
}

// prefixedLines returns the complete lines that start with prefix.
func (b *lineBuffer) prefixedLines(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines []string
	text := b.buf.String()
	text = text[:strings.LastIndexByte(text, '\n')+1]
	for l := range strings.Lines(text) {
		if strings.HasPrefix(l, prefix) {
			lines = append(lines, strings.TrimSuffix(l, "\n"))
		}
	}
	return lines
}

// logTokens splits a log line at spaces, keeping a quoted string or a
// bracketed date whole, and notes whether the line ends with a space.
func logTokens(line string) []string {
	var tokens []string
	for i := 0; i < len(line); {
		if line[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			switch line[j] {
			case '"':
				if k := strings.IndexByte(line[j+1:], '"'); k >= 0 {
					j += k + 1
				}
			case '[':
				if k := strings.IndexByte(line[j+1:], ']'); k >= 0 {
					j += k + 1
				}
			}
			j++
		}
		tokens = append(tokens, line[i:j])
		i = j
	}
	if strings.HasSuffix(line, " ") {
		tokens = append(tokens, "(trailing space)")
	}
	return tokens
}

var (
	logDate   = regexp.MustCompile(`\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(\.\d{3})?`)
	zoneToken = regexp.MustCompile(`^[+-]\d{4}\]?$`)
)

// maskedKeyValues masks a line of "key=value" fields written by the
// log-format of TestLogFormatMatchesHAProxy: dates, ports, the pid and
// byte counts are dropped, timers that ran become "T", connection counts
// "C".
func maskedKeyValues(line string) []string {
	tokens := logTokens(logDate.ReplaceAllString(line, "DATE"))
	for i, tok := range tokens {
		key, value, ok := strings.Cut(tok, "=")
		switch {
		case zoneToken.MatchString(tok):
			tokens[i] = "ZONE"
		case !ok:
		case hasWord("cp ms pid B", key):
			tokens[i] = key + "=X"
		case hasWord("Th Ti TR Tq Tw Tc Tr Ta Tt Td", key) && value != "-1":
			tokens[i] = key + "=T"
		case hasWord("ac fc bc sc", key):
			tokens[i] = key + "=C"
		}
	}
	return tokens
}

// hasWord reports whether the space-separated list holds w.
func hasWord(list, w string) bool { return slices.Contains(strings.Fields(list), w) }

// maskedCLF masks a line in HAProxy's CLF layout (option httplog clf):
// date, byte count, client port and accept milliseconds dropped, timers
// that ran written "T", connection counts "C".
func maskedCLF(line string) []string {
	tokens := logTokens(logDate.ReplaceAllString(line, "DATE"))
	for i := range tokens {
		switch {
		case i == 6 || i == 9 || i == 10:
			tokens[i] = "X"
		case i >= 14 && i <= 18 && tokens[i] != "-1":
			tokens[i] = "T"
		case i >= 20 && i <= 23:
			tokens[i] = "C"
		}
	}
	return tokens
}

// TestLogFormatMatchesHAProxy compares lines written by log-format with
// every variable Tether writes, quoted and not, with captures, and by
// HAProxy's definition of the CLF log, whose %{+Q}o quotes the text
// fields after it.
func TestLogFormatMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	requests := []logRequest{
		{name: "no cookie, cookie inserted", path: "/a/b?c=1", want: "--NI"},
		{name: "valid cookie, captured headers", path: "/", cookie: "SRV=w1", header: []string{"X-A", "one", "X-B", "a{b}"}, want: "--VN"},
		{name: "server sets a cookie", path: "/?setcookie=SRV%3Dz", want: "--NI"},
		{name: "absolute URI", path: "http://abs.example.test/x?y", want: "--NI"},
		{name: "denied", path: "/deny?q", want: "PR--"},
		{name: "no server", path: "/none/", want: "SC--"},
	}
	frontend := func(bind, logFormat string) string {
		return "frontend fe\n    bind " + bind + "\n    log-format " + logFormat + "\n" +
			"    capture request header X-A len 10\n    capture request header X-B len 10\n" +
			"    capture response header X-Origin len 10\n    capture cookie SRV len 20\n" +
			"    http-request deny if { path_beg /deny }\n    use_backend none if { path_beg /none }\n    default_backend app\n\n"
	}
	config := func(logFormat string) func(bind, socket string) string {
		return func(bind, socket string) string {
			return "global\n    " + socket + "\n    log stdout format raw local0\n\n" +
				"defaults\n    mode http\n    log global\n" +
				"    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n" +
				frontend(bind, logFormat) +
				"backend app\n    cookie SRV insert indirect nocache\n" +
				fmt.Sprintf("    server web1 %s cookie w1\n\n", o.addrs[0]) +
				"backend none\n    server off " + o.addrs[0] + " disabled\n"
		}
	}
	t.Run("every variable", func(t *testing.T) {
		format := `"LF ci=%ci cp=%cp t=%t tr=%tr trg=%trg trl=%trl ms=%ms ft=%ft f=%f b=%b s=%s ST=%ST B=%B ` +
			`Th=%Th Ti=%Ti TR=%TR Tq=%Tq Tw=%Tw Tc=%Tc Tr=%Tr Ta=%Ta Tt=%Tt Td=%Td ts=%ts tsc=%tsc CC=%CC CS=%CS ` +
			`hr=%hr hs=%hs hrl=%hrl hsl=%hsl r=%{+Q}r HM=%HM HU=%HU HP=%HP HPO=%HPO HQ=%HQ HV=%HV ` +
			`ac=%ac fc=%fc bc=%bc sc=%sc rc=%rc sq=%sq bq=%bq pid=%pid ` +
			`end %{+Q}b %{+Q}HM %{+Q}ci %{+Q}CC %{+Q}HQ %{+Q}ts %{+Q}hr  %{+Q}hrl %{+Q}T %Tl 100%%"`
		p := startPair(t, config(format))
		compareLogLines(t, p, requests, func(b *lineBuffer) []string { return b.prefixedLines("LF ") }, maskedKeyValues)
	})
	t.Run("option httplog clf", func(t *testing.T) {
		p := startPair(t, func(bind, socket string) string {
			return strings.Replace(config(`"%ci"`)(bind, socket), "    log-format \"%ci\"\n", "    option httplog clf\n", 1)
		})
		compareLogLines(t, p, requests, func(b *lineBuffer) []string { return b.prefixedLines("127.0.0.1 - - ") }, maskedCLF)
	})
	t.Run("clf", func(t *testing.T) {
		format := `"%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl"`
		p := startPair(t, config(format))
		compareLogLines(t, p, requests, func(b *lineBuffer) []string { return b.prefixedLines("127.0.0.1 - - ") }, maskedCLF)
	})
}

// gatedOrigin answers "/hold" only when released, and anything else at
// once.
type gatedOrigin struct {
	addr    string
	arrived chan struct{}
	release chan struct{}
}

func startGatedOrigin(t *testing.T) *gatedOrigin {
	t.Helper()
	g := &gatedOrigin{arrived: make(chan struct{}, 4), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			g.arrived <- struct{}{}
			select {
			case <-g.release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	g.addr = srv.Listener.Addr().String()
	return g
}

// TestAccessLogQueueMatchesHAProxy compares the lines of a request that
// waited for a server slot (maxconn 1) and of the one it waited for: the
// queue timer (Tw), connect and response timers, and the server and
// backend queue positions (%sq/%bq). A request without a cookie waits in
// the backend's queue, one whose cookie names the server in the server's.
func TestAccessLogQueueMatchesHAProxy(t *testing.T) {
	for _, tc := range []struct {
		name, cookie string
		// queued reads the length of the queue the request waits in:
		// the backend's or the server's.
		row string
	}{
		{name: "backend queue", row: "BACKEND"},
		{name: "server queue", cookie: "SRV=w1", row: "web1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGatedOrigin(t)
			p := startPair(t, func(bind, socket string) string {
				return "global\n    " + socket + "\n    log stdout format raw local0\n\n" +
					"defaults\n    mode http\n    log global\n    option httplog\n" +
					"    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout queue 5s\n\n" +
					"frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
					"backend app\n    cookie SRV insert indirect nocache\n    server web1 " + g.addr + " cookie w1 maxconn 1\n"
			})
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			get := func(url string, done chan<- error) {
				req, err := http.NewRequest(http.MethodGet, url, nil)
				if err != nil {
					done <- err
					return
				}
				if tc.cookie != "" {
					req.Header.Set("Cookie", tc.cookie)
				}
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				done <- err
			}
			queued := map[string]func() bool{
				p.haproxyURL: func() bool { return statColumn(p.haproxyCmd("show stat"), tc.row, "qcur") == "1" },
				p.tetherURL: func() bool {
					be := p.tether.Snapshot().Backend("app")
					if tc.row == "BACKEND" {
						return be.Stats.QueueCur == 1
					}
					return be.Server(tc.row).Stats.QueueCur == 1
				},
			}
			for i, base := range []string{p.haproxyURL, p.tetherURL} {
				done := make(chan error, 2)
				go get(base+"/hold", done)
				<-g.arrived
				go get(base+"/queued", done)
				if !pollUntil(5*time.Second, queued[base]) {
					t.Fatalf("%s: the second request is not queued", base)
				}
				g.release <- struct{}{}
				for range 2 {
					if err := <-done; err != nil {
						t.Fatal(err)
					}
				}
				buf := []*lineBuffer{p.haproxyOut, p.tetherLog}[i]
				if !pollUntil(5*time.Second, func() bool { return len(buf.accessLines()) == 2 }) {
					t.Fatalf("%s: access-log lines %q, want 2", base, buf.accessLines())
				}
			}
			// Lines in request order: the held request's first.
			h, tt := p.haproxyOut.accessLines(), p.tetherLog.accessLines()
			byRequest := func(a, b string) int {
				ha, hb := strings.Contains(a, "GET /hold "), strings.Contains(b, "GET /hold ")
				switch {
				case ha == hb:
					return 0
				case ha:
					return -1
				}
				return 1
			}
			slices.SortFunc(h, byRequest)
			slices.SortFunc(tt, byRequest)
			for i := range h {
				if hm, tm := maskedLine(h[i]), maskedLine(tt[i]); !slices.Equal(hm, tm) {
					t.Errorf("lines differ\nhaproxy: %s\ntether:  %s", h[i], tt[i])
				}
				if err := timersClose(h[i], tt[i]); err != nil {
					t.Errorf("timers differ: %v\nhaproxy: %s\ntether:  %s", err, h[i], tt[i])
				}
			}
			if q := maskedLine(h[1])[7]; q == "queues 0/0" {
				t.Errorf("haproxy's queued request shows %s: %s", q, h[1])
			}
		})
	}
}

// TestAccessLogBadRequestsMatchHAProxy compares the lines of requests the
// proxies refuse before any backend: header block too large and malformed
// header (400, PR--), a request head cut short by timeout http-request
// (408, cR--), a head cut short by the client's closing (400, CR--), all
// "<BADREQ>" and without captures. Connections that carry no byte are
// logged (408 cR--, or 400 CR-- when the client closes) unless option
// dontlognull is set.
func TestAccessLogBadRequestsMatchHAProxy(t *testing.T) {
	for _, tc := range []struct {
		option string
		terms  []string
	}{
		{"option dontlognull", []string{"PR--", "PR--", "cR--", "CR--", "CR--", "--NI"}},
		{"no option dontlognull", []string{"PR--", "PR--", "cR--", "cR--", "CR--", "CR--", "CR--", "--NI"}},
	} {
		t.Run(tc.option, func(t *testing.T) {
			o := startOrigins(t, 1)
			p := startPair(t, func(bind, socket string) string {
				return "global\n    " + socket + "\n    log stdout format raw local0\n\n" +
					"defaults\n    mode http\n    log global\n    option httplog\n    " + tc.option + "\n" +
					"    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout http-request 300ms\n\n" +
					"frontend fe\n    bind " + bind + "\n    capture request header Host len 10\n    default_backend app\n\n" +
					"backend app\n    cookie SRV insert indirect nocache\n" +
					fmt.Sprintf("    server web1 %s cookie w1\n", o.addrs[0])
			})
			cases := []struct {
				name, send string
				closeWrite bool
			}{
				{name: "header block too large", send: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 17000) + "\r\n\r\n"},
				{name: "malformed header line", send: "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"},
				{name: "head cut short by timeout http-request", send: "GET / HTTP/1.1\r\nHost: a\r\n"},
				{name: "nothing sent until the timeout", send: ""},
				{name: "closed without a byte", send: "", closeWrite: true},
				{name: "closed after part of the head", send: "GET / HTTP/1.1\r\nHost: a\r\n", closeWrite: true},
				{name: "closed within the request line", send: "GET /pa", closeWrite: true},
				// Not compared: a second head cut short by the client's
				// closing, sent with the first request, which HAProxy 2.6
				// logs (400 CR--) or not from run to run.
				{name: "a request after them", send: "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
			}
			want := len(tc.terms)
			for _, buf := range []*lineBuffer{p.haproxyOut, p.tetherLog} {
				base := map[*lineBuffer]string{p.haproxyOut: p.haproxyURL, p.tetherLog: p.tetherURL}[buf]
				for _, c := range cases {
					conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
					if err != nil {
						t.Fatal(err)
					}
					io.WriteString(conn, c.send)
					if c.closeWrite {
						conn.(*net.TCPConn).CloseWrite()
					}
					conn.SetDeadline(time.Now().Add(5 * time.Second))
					io.Copy(io.Discard, conn) // until the proxy closes
					conn.Close()
				}
				if !pollUntil(5*time.Second, func() bool { return len(buf.accessLines()) >= want }) {
					t.Fatalf("%s: access-log lines %q, want %d", base, buf.accessLines(), want)
				}
			}
			h, tt := p.haproxyOut.accessLines(), p.tetherLog.accessLines()
			if len(h) != want || len(tt) != want {
				t.Fatalf("lines: haproxy %d, tether %d, want %d\nhaproxy:\n%s\ntether:\n%s", len(h), len(tt), want, strings.Join(h, "\n"), strings.Join(tt, "\n"))
			}
			for i := range h {
				if hm, tm := maskedLine(h[i]), maskedLine(tt[i]); !slices.Equal(hm, tm) {
					t.Errorf("line %d differs\nhaproxy: %s\ntether:  %s", i, h[i], tt[i])
				}
				if err := timersClose(h[i], tt[i]); err != nil {
					t.Errorf("line %d: timers differ: %v\nhaproxy: %s\ntether:  %s", i, err, h[i], tt[i])
				}
				if !strings.Contains(h[i], " "+tc.terms[i]+" ") {
					t.Errorf("haproxy's line %d has no %s: %s", i, tc.terms[i], h[i])
				}
			}
		})
	}
}
