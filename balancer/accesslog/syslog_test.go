package accesslog

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestTargetHeaders checks each format's header against what HAProxy 2.6
// wrote for the same "log" line (local0 is facility 16, info severity 6),
// on standard output and over UDP.
func TestTargetHeaders(t *testing.T) {
	now := time.Date(2026, 12, 1, 2, 36, 11, 903184000, time.FixedZone("", 0))
	e := Entry{Client: "127.0.0.1:39470", Start: now, Frontend: "fe", Backend: "fe", Tw: -1, Tc: -1, Tr: -1,
		Status: 200, Bytes: 73, Termination: [4]byte{'L', 'R', '-', '-'}, ActConn: 1, FeConn: 1,
		Method: "GET", URI: "/x", Proto: "HTTP/1.1"}
	const msg = `127.0.0.1:39470 [01/Dec/2026:02:36:11.903] fe fe/<NOSRV> 0/-1/-1/-1/0 200 73 - - LR-- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"` + "\n"
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"local, the default", Target{Output: Syslog, Format: FormatLocal, Facility: 16, Severity: 6, Tag: "haproxy"},
			"<134>Dec  1 02:36:11 haproxy[20364]: "},
		{"rfc3164 without a host name", Target{Output: Stdout, Format: FormatRFC3164, Facility: 16, Severity: 6, Tag: "haproxy"},
			"<134>Dec  1 02:36:11 localhost haproxy[20364]: "},
		{"rfc3164 with log-send-hostname", Target{Output: Syslog, Format: FormatRFC3164, Facility: 16, Severity: 7, Tag: "fetag", Hostname: "foo.example"},
			"<135>Dec  1 02:36:11 foo.example fetag[20364]: "},
		{"rfc5424", Target{Output: Syslog, Format: FormatRFC5424, Facility: 17, Severity: 6, Tag: "haproxy"},
			"<142>1 2026-12-01T02:36:11.903184+00:00 - haproxy 20364 - - "},
		{"rfc5424 with a host name", Target{Output: Stdout, Format: FormatRFC5424, Facility: 16, Severity: 6, Tag: "fetag", Hostname: "foo.example"},
			"<134>1 2026-12-01T02:36:11.903184+00:00 foo.example fetag 20364 - - "},
		{"short", Target{Output: Stdout, Format: FormatShort, Facility: 18, Severity: 6}, "<6>"},
		{"priority", Target{Output: Syslog, Format: FormatPriority, Facility: 16, Severity: 6}, "<134>"},
		{"timed", Target{Output: Syslog, Format: FormatTimed, Facility: 16, Severity: 6}, "<6>2026-12-01T02:36:11.903184+00:00 "},
		{"iso", Target{Output: Syslog, Format: FormatISO, Facility: 16, Severity: 6}, "2026-12-01T02:36:11.903184+00:00 "},
		{"raw", Target{Output: Stderr, Format: FormatRaw, Facility: 16, Severity: 6}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.target.appendLine(nil, &e, now, 20364)); got != tt.want+msg {
				t.Errorf("line\n got %q\nwant %q", got, tt.want+msg)
			}
		})
	}
}

// TestTargetCutsToLen checks HAProxy's "len": a datagram holds len bytes
// and a line feed, a stream line len bytes with its line feed.
func TestTargetCutsToLen(t *testing.T) {
	e := Entry{Method: "GET", URI: "/" + strings.Repeat("a", 3000), Proto: "HTTP/1.1"}
	tests := []struct {
		target Target
		want   int
	}{
		{Target{Output: Syslog, Format: FormatLocal, MaxLen: 100, Tag: "t"}, 101},
		{Target{Output: Stdout, Format: FormatRaw, MaxLen: 120}, 120},
		{Target{Output: Stdout, Format: FormatRaw}, DefaultMaxLen},
		{Target{Output: Syslog, Format: FormatRFC5424, MaxLen: 1100}, 1101},
	}
	for _, tt := range tests {
		line := tt.target.appendLine(nil, &e, time.Now(), 1)
		if len(line) != tt.want || line[len(line)-1] != '\n' {
			t.Errorf("%s %s len %d: %d bytes, want %d ending in a line feed", tt.target.Output, tt.target.Format, tt.target.MaxLen, len(line), tt.want)
		}
	}
}

// TestSyslogLoggerSendsDatagrams runs a syslog Logger against a loopback
// UDP listener: one datagram per line, to the target's address.
func TestSyslogLoggerSendsDatagrams(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	target := &Target{Output: Syslog, Addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), Format: FormatShort, Severity: 6}
	l := NewSyslog(0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	for _, uri := range []string{"/one", "/two"} {
		l.Log(&Entry{Target: target, Method: "GET", URI: uri, Proto: "HTTP/1.1"})
	}
	// An entry without a UDP address cannot be sent: it is counted.
	l.Log(&Entry{Target: &Target{Output: Syslog, Addr: netip.AddrPort{}}})
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for _, want := range []string{"/one", "/two"} {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, "<6>") || !strings.Contains(got, `"GET `+want+` HTTP/1.1"`) || !strings.HasSuffix(got, "\n") {
			t.Errorf("datagram %q, want <6>… GET %s … with a line feed", got, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l.Written() != 2 || l.Dropped() != 1 {
		t.Errorf("written %d, dropped %d; want 2 and 1", l.Written(), l.Dropped())
	}
}
