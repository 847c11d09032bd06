package compat

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// timerDelay is the pause a timer test puts in one phase of a request:
// long enough to stand out of the others on a busy machine.
const timerDelay = 300 * time.Millisecond

// timerNames are the timers a timer test's log-format writes, in order.
var timerNames = strings.Fields("Th Ti TR Tw Tc Tr Ta Tt")

// timerFormat writes the timers and both dates, as key=value fields.
const timerFormat = `"LT Th=%Th Ti=%Ti TR=%TR Tw=%Tw Tc=%Tc Tr=%Tr Ta=%Ta Tt=%Tt t=%t tr=%tr %{+Q}r"`

// delayedListener hands out each accepted connection after a pause, so
// that a TLS handshake with it ends that much later.
type delayedListener struct {
	net.Listener
	delay time.Duration
}

func (l delayedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		time.Sleep(l.delay)
	}
	return c, err
}

// timerLine holds the fields of a timer test's log line.
type timerLine struct {
	timers map[string]int
	// accept and request are the %t and %tr dates.
	accept, request time.Time
	line            string
}

func parseTimerLine(line string) (timerLine, error) {
	tl := timerLine{timers: map[string]int{}, line: line}
	for _, tok := range strings.Fields(line) {
		key, value, ok := strings.Cut(tok, "=")
		if !ok {
			continue
		}
		switch key {
		case "t", "tr":
			d, err := time.ParseInLocation("02/Jan/2006:15:04:05.000", value, time.Local)
			if err != nil {
				return tl, fmt.Errorf("date %s: %v", tok, err)
			}
			if key == "t" {
				tl.accept = d
			} else {
				tl.request = d
			}
		default:
			n, err := strconv.Atoi(value)
			if err != nil {
				return tl, fmt.Errorf("timer %s: %v", tok, err)
			}
			tl.timers[key] = n
		}
	}
	for _, name := range timerNames {
		if _, ok := tl.timers[name]; !ok {
			return tl, fmt.Errorf("no %s in %q", name, line)
		}
	}
	return tl, nil
}

// checkTimers checks one proxy's line: each timer in slow at least three
// quarters of its pause (HAProxy reads its clock once per event-loop
// turn) and not absurdly more, every other timer that ran well under
// timerDelay, and the request date after the accept date by Th+Ti.
func checkTimers(tl timerLine, slow map[string]time.Duration) error {
	for _, name := range timerNames {
		v := tl.timers[name]
		min, ok := slow[name]
		switch {
		case ok && (v < int(min/time.Millisecond)*3/4 || v > int((min+5*time.Second)/time.Millisecond)):
			return fmt.Errorf("%s=%d, want at least %d", name, v, min/time.Millisecond)
		case !ok && v > int(timerDelay/time.Millisecond)*2/3:
			return fmt.Errorf("%s=%d, want under %d: the pause is counted in the wrong timer", name, v, timerDelay/time.Millisecond*2/3)
		}
	}
	if th, ti := tl.timers["Th"], tl.timers["Ti"]; th >= 0 && ti >= 0 {
		gap := int(tl.request.Sub(tl.accept) / time.Millisecond)
		if d := gap - th - ti; d < -2 || d > 2 {
			return fmt.Errorf("request date - accept date = %d ms, want Th+Ti = %d", gap, th+ti)
		}
	}
	return nil
}

// TestAccessLogTimersMatchHAProxy puts a pause in one phase of a request
// at a time — a slow server, a client sending its headers in two parts,
// a client idle after connecting or between two keep-alive requests, a
// TLS server slow to handshake — and checks that HAProxy and Tether both
// count it in the same timer of their log lines (Th Ti TR Tw Tc Tr, and
// the totals Ta and Tt), with the request date (%tr) after the accept
// date (%t) by Th+Ti. Timers are compared as ranges, never exactly.
func TestAccessLogTimersMatchHAProxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(timerDelay)
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	tlsOrigin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	tlsOrigin.Listener = delayedListener{Listener: tlsOrigin.Listener, delay: timerDelay}
	tlsOrigin.StartTLS()
	t.Cleanup(tlsOrigin.Close)

	p := startPair(t, func(bind, socket string) string {
		return "global\n    " + socket + "\n    log stdout format raw local0\n\n" +
			"defaults\n    mode http\n    log global\n" +
			"    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\n" +
			"frontend fe\n    bind " + bind + "\n    log-format " + timerFormat + "\n" +
			"    use_backend tls if { path_beg /tls }\n    default_backend app\n\n" +
			"backend app\n    server web1 " + origin.Listener.Addr().String() + "\n\n" +
			"backend tls\n    server sec " + tlsOrigin.Listener.Addr().String() + " ssl verify none\n"
	})

	cases := []timerCase{
		{
			name:  "server slow to answer: Tr",
			steps: []timerStep{{send: timerGet("/slow", true)}, {}},
			slow:  []map[string]time.Duration{{"Tr": timerDelay, "Ta": timerDelay, "Tt": timerDelay}},
		},
		{
			name:  "headers sent in two parts: TR",
			steps: []timerStep{{send: "GET / HTTP/1.1\r\nHost: a\r\n"}, {pause: timerDelay, send: "Connection: close\r\n\r\n"}, {}},
			slow:  []map[string]time.Duration{{"TR": timerDelay, "Ta": timerDelay, "Tt": timerDelay}},
		},
		{
			name:  "client idle after connecting: Ti",
			steps: []timerStep{{pause: timerDelay, send: timerGet("/", true)}, {}},
			slow:  []map[string]time.Duration{{"Ti": timerDelay, "Tt": timerDelay}},
		},
		{
			name:  "idle between keep-alive requests: Ti of the second",
			steps: []timerStep{{send: timerGet("/", false)}, {}, {pause: timerDelay, send: timerGet("/", true)}, {}},
			slow:  []map[string]time.Duration{{}, {"Ti": timerDelay, "Tt": timerDelay}},
		},
		{
			name:  "TLS server slow to handshake: Tc",
			steps: []timerStep{{send: timerGet("/tls", true)}, {}},
			slow:  []map[string]time.Duration{{"Tc": timerDelay, "Ta": timerDelay, "Tt": timerDelay}},
		},
	}
	compareTimers(t, [2]string{strings.TrimPrefix(p.haproxyURL, "http://"), strings.TrimPrefix(p.tetherURL, "http://")},
		[2]*lineBuffer{p.haproxyOut, p.tetherLog}, cases)
}

// TestAccessLogTLSTimersMatchHAProxy checks, against HAProxy, that a
// client slow to start its TLS handshake with a frontend shows in Th,
// and that Th is 0 for the next request of the connection.
func TestAccessLogTLSTimersMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	dir := t.TempDir()
	ca := writeTLSCerts(t, dir)
	p := startTLSPairWith(t, dir, ca, func(binds [3]string, socket string) string {
		return "global\n    " + socket + "\n\n" +
			"defaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n\n" +
			"frontend fe\n    bind " + binds[0] + "\n" +
			"    bind " + binds[1] + " ssl crt " + dir + "/default.pem\n    bind " + binds[2] + " ssl crt " + dir + "/default.pem\n" +
			"    log stdout format raw local0\n    log-format " + timerFormat + "\n    default_backend app\n\n" +
			"backend app\n    server web1 " + o.addrs[0] + "\n"
	})
	compareTimers(t, [2]string{p.haproxy[1], p.tether[1]}, [2]*lineBuffer{p.haproxyOut, p.tetherLog}, []timerCase{{
		name:  "client slow to start its handshake: Th of the first request only",
		steps: []timerStep{{pause: timerDelay, handshake: true}, {send: timerGet("/", false)}, {}, {send: timerGet("/", true)}, {}},
		slow:  []map[string]time.Duration{{"Th": timerDelay, "Tt": timerDelay}, {}},
	}})
}

// timerGet returns a GET request head, the connection's last when last.
func timerGet(path string, last bool) string {
	s := "GET " + path + " HTTP/1.1\r\nHost: a\r\n"
	if last {
		s += "Connection: close\r\n"
	}
	return s + "\r\n"
}

// timerStep is a step of a timer case on one connection: after a pause,
// start TLS when handshake is set, else send text, else (no text) read a
// response.
type timerStep struct {
	pause     time.Duration
	send      string
	handshake bool
}

// timerCase is a connection's steps and, per request it carries, the
// timers that must hold the pause.
type timerCase struct {
	name  string
	steps []timerStep
	slow  []map[string]time.Duration
}

// compareTimers runs each case on a connection to each proxy (addrs, the
// log lines in outs: HAProxy's first) and checks both lines of each
// request with checkTimers.
func compareTimers(t *testing.T, addrs [2]string, outs [2]*lineBuffer, cases []timerCase) {
	t.Helper()
	done := 0
	for _, tc := range cases {
		var lines [2][]timerLine
		for i, addr := range addrs {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			for _, s := range tc.steps {
				time.Sleep(s.pause)
				switch {
				case s.handshake:
					tlsConn := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: "default.test"})
					if err := tlsConn.Handshake(); err != nil {
						t.Fatalf("%s: %s: handshake: %v", tc.name, addr, err)
					}
					conn, br = tlsConn, bufio.NewReader(tlsConn)
				case s.send != "":
					io.WriteString(conn, s.send)
				default:
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("%s: %s: %v", tc.name, addr, err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			conn.Close()
			want := done + len(tc.slow)
			if !pollUntil(5*time.Second, func() bool { return len(outs[i].prefixedLines("LT ")) >= want }) {
				t.Fatalf("%s: %s: log lines %q, want %d", tc.name, addr, outs[i].prefixedLines("LT "), want)
			}
			for _, l := range outs[i].prefixedLines("LT ")[done:want] {
				tl, err := parseTimerLine(l)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				lines[i] = append(lines[i], tl)
			}
		}
		done += len(tc.slow)
		for j, slow := range tc.slow {
			t.Logf("%s, request %d\nhaproxy: %s\ntether:  %s", tc.name, j+1, lines[0][j].line, lines[1][j].line)
			for i, who := range []string{"haproxy", "tether"} {
				if err := checkTimers(lines[i][j], slow); err != nil {
					t.Errorf("%s, request %d: %s: %v\nhaproxy: %s\ntether:  %s", tc.name, j+1, who, err, lines[0][j].line, lines[1][j].line)
				}
			}
			// Which timers ran is the same for both.
			for _, name := range timerNames {
				if (lines[0][j].timers[name] < 0) != (lines[1][j].timers[name] < 0) {
					t.Errorf("%s, request %d: %s ran in one only\nhaproxy: %s\ntether:  %s", tc.name, j+1, name, lines[0][j].line, lines[1][j].line)
				}
			}
		}
	}
}
