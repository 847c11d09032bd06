package compat

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
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
// captured cookies, termination state, connection counts, queues and the
// quoted request line.
var accessLine = regexp.MustCompile(`^(\S+):(\d+) \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] (\S+) (\S+/\S+) (-?\d+/-?\d+/-?\d+/-?\d+/-?\d+) (-?\d+) (\d+) - - (\S{4}) (\d+/\d+/\d+/\d+/\+?\d+) (\d+/\d+) "([^"]*)"$`)

// maskedLine returns an access-log line's fields, with the ones that
// differ by nature replaced:
//   - the client port (each process gets its own connections) and the
//     accept date (the processes run the same request at different
//     moments) are dropped;
//   - each timer that ran is written "T" (durations differ from run to
//     run); a timer HAProxy writes -1, for a phase that did not happen,
//     stays -1, so that which phases happened is compared;
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
// queues and the request line.
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
	conns := strings.Split(m[10], "/")
	for i := range 4 {
		conns[i] = "C"
	}
	return []string{
		"client " + m[1],
		"frontend " + m[4],
		"backend/server " + m[5],
		"timers " + strings.Join(timers, "/"),
		"status " + m[7],
		"termination " + m[9],
		"conns " + strings.Join(conns, "/"),
		"queues " + m[11],
		"request " + m[12],
	}
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
}

// compareAccessLogs sends each request to both proxies, one connection
// each, and compares the access-log lines they write, masked by
// maskedLine.
func compareAccessLogs(t *testing.T, p *pair, requests []logRequest) {
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
			req, err := http.NewRequest(http.MethodGet, base+rq.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rq.cookie != "" {
				req.Header.Set("Cookie", rq.cookie)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %s: %v", rq.name, base, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			hLines, tLines = p.haproxyOut.accessLines(), p.tetherLog.accessLines()
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
		h, tt := maskedLine(hLines[i]), maskedLine(tLines[i])
		for j := range h {
			if j >= len(tt) || h[j] != tt[j] {
				t.Errorf("%s: field %q differs\nhaproxy: %s\ntether:  %s", rq.name, h[j], hLines[i], tLines[i])
				break
			}
		}
		if term := "termination " + rq.want; h[5] != term {
			t.Errorf("%s: haproxy wrote %s, the test expects %s: %s", rq.name, h[5], term, hLines[i])
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
