package compat

import (
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

// datagramSink collects the datagrams a UDP syslog listener receives.
type datagramSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []string
}

// startDatagramSink listens on a loopback UDP port until the test ends.
func startDatagramSink(t *testing.T) *datagramSink {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &datagramSink{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 70000)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

func (s *datagramSink) addr() string { return s.conn.LocalAddr().String() }

func (s *datagramSink) datagrams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// Parts of a syslog header that differ by nature: the date and the
// process id.
var (
	rfc3164Date = regexp.MustCompile(`^(<\d+>)[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d `)
	isoDate     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d `)
	bracketPID  = regexp.MustCompile(`^([^:]*)\[\d+\]: `)
	rfc5424PID  = regexp.MustCompile(`^(<\d+>1 DATE \S+ \S+) \d+ - - `)
)

// maskedDatagram splits a syslog datagram into its header, dates and pid
// masked, and its access-log line, masked by maskedLine; a datagram cut
// short by "len" keeps its length instead of its line.
func maskedDatagram(d string, cut bool) (header string, line []string) {
	d = rfc3164Date.ReplaceAllString(d, "${1}DATE ")
	d = isoDate.ReplaceAllString(d, "DATE ")
	d = bracketPID.ReplaceAllString(d, "${1}[PID]: ")
	d = rfc5424PID.ReplaceAllString(d, "${1} PID - - ")
	i := strings.Index(d, "127.0.0.1:")
	if i < 0 {
		return d, nil
	}
	if cut {
		return d[:i], nil
	}
	return d[:i], maskedLine(strings.TrimSuffix(d[i:], "\n"))
}

// TestSyslogMatchesHAProxy sends HAProxy's and Tether's access logs to a
// UDP syslog listener each, with one "log" line per header format, and
// compares the datagrams: header layout (priority, date, host name, tag,
// pid), the line behind it and the trailing line feed, the lengths of
// lines cut by "len", and the levels that filter or raise the priority.
func TestSyslogMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	sinks := map[bool]*datagramSink{true: startDatagramSink(t), false: startDatagramSink(t)}
	p := startPair(t, func(bind, socket string) string {
		udp := sinks[socket != ""].addr()
		return "global\n    " + socket + "\n    log-tag app\n" +
			"    log " + udp + " local0\n" +
			"    log " + udp + " format rfc3164 local1\n" +
			"    log " + udp + " format rfc5424 local2 info\n" +
			"    log " + udp + " format short local3\n" +
			"    log " + udp + " format priority local4 debug\n" +
			"    log " + udp + " format timed local5\n" +
			"    log " + udp + " format iso local6\n" +
			"    log " + udp + " format raw local7\n" +
			"    log " + udp + " local0 err\n" +
			"    log " + udp + " local1 debug debug\n" +
			"    log udp@" + udp + " len 100 local2\n\n" +
			"defaults\n    mode http\n    log global\n    option httplog\n" +
			"    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n" +
			"frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
			"backend app\n    cookie SRV insert indirect nocache\n" +
			fmt.Sprintf("    server web1 %s cookie w1\n", o.addrs[0])
	})
	// One target drops info lines: ten datagrams per request.
	const perRequest = 10
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	paths := []string{"/", "/long/" + strings.Repeat("x", 200)}
	for i, path := range paths {
		for _, base := range []string{p.haproxyURL, p.tetherURL} {
			resp, err := client.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		want := (i + 1) * perRequest
		if !pollUntil(10*time.Second, func() bool {
			return len(sinks[true].datagrams()) >= want && len(sinks[false].datagrams()) >= want
		}) {
			t.Fatalf("datagrams after %d requests: haproxy %d, tether %d, want %d\nhaproxy: %q\ntether: %q", i+1,
				len(sinks[true].datagrams()), len(sinks[false].datagrams()), want, sinks[true].datagrams(), sinks[false].datagrams())
		}
	}
	h, tt := sinks[true].datagrams(), sinks[false].datagrams()
	if len(h) != len(tt) {
		t.Fatalf("haproxy sent %d datagrams, tether %d", len(h), len(tt))
	}
	for i := range h {
		cut := i%perRequest == perRequest-1
		hh, hl := maskedDatagram(h[i], cut)
		th, tl := maskedDatagram(tt[i], cut)
		if hh != th {
			t.Errorf("datagram %d: header differs\nhaproxy: %q\ntether:  %q", i, h[i], tt[i])
		}
		if fmt.Sprint(hl) != fmt.Sprint(tl) {
			t.Errorf("datagram %d: line differs\nhaproxy: %q\ntether:  %q", i, h[i], tt[i])
		}
		if cut && (len(h[i]) != 101 || len(tt[i]) != 101 || !strings.HasSuffix(tt[i], "\n")) {
			t.Errorf("datagram %d cut by len 100: haproxy %d bytes, tether %d, want 101 with the line feed", i, len(h[i]), len(tt[i]))
		}
		if !strings.HasSuffix(tt[i], "\n") || !strings.HasSuffix(h[i], "\n") {
			t.Errorf("datagram %d does not end with a line feed: haproxy %q, tether %q", i, h[i], tt[i])
		}
	}
}
