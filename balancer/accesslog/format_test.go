package accesslog

import (
	"strings"
	"testing"
	"time"
)

// TestLayoutMatchesHAProxyLines formats entries with log-formats whose
// output HAProxy 2.6 wrote for the same requests.
func TestLayoutMatchesHAProxyLines(t *testing.T) {
	start := time.Date(2026, 12, 1, 2, 50, 3, 251_000_000, time.UTC)
	valid := Entry{Client: "127.0.0.1:43668", Start: start, Frontend: "fe", Backend: "app", Server: "web1",
		Tr: 1, Ta: 1, Status: 200, Bytes: 148, Termination: [4]byte{'-', '-', 'V', 'N'}, ActConn: 1, FeConn: 1,
		Method: "GET", URI: "/", Proto: "HTTP/1.1", CookieRequest: "SRV=w1",
		RequestCaptures: []string{"one", "a{b}"}, ResponseCaptures: []string{"web1"}}
	denied := Entry{Client: "127.0.0.1:37460", Start: start, Frontend: "fe", Backend: "fe", Tw: -1, Tc: -1, Tr: -1,
		Status: 403, Bytes: 192, Termination: [4]byte{'P', 'R', '-', '-'}, ActConn: 1, FeConn: 1,
		Method: "GET", URI: "/deny?q", Proto: "HTTP/1.1", RequestCaptures: []string{"", ""}, ResponseCaptures: []string{""}}
	const clf = `%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl`
	tests := []struct {
		name, format string
		e            *Entry
		want         string
	}{
		{"clf", clf, &valid,
			`127.0.0.1 - - [01/Dec/2026:02:50:03 +0000] "GET / HTTP/1.1" 200 148 "" "" 43668 251 "fe" "app" "web1" 0 0 0 1 1 --VN 1 1 0 0 0 0 0 "SRV=w1" "" "one" "a#7Bb#7D" "web1"`},
		{"clf, no server", clf, &denied,
			`127.0.0.1 - - [01/Dec/2026:02:50:03 +0000] "GET /deny?q HTTP/1.1" 403 192 "" "" 37460 251 "fe" "fe" "<NOSRV>" 0 -1 -1 -1 0 PR-- 1 1 0 0 0 0 0 "" "" "" "" ""`},
		{"httplog definition", HTTPLogFormat, &valid,
			`127.0.0.1:43668 [01/Dec/2026:02:50:03.251] fe app/web1 0/0/0/1/1 200 148 SRV=w1 - --VN 1/1/0/0/0 0/0 {one|a#7Bb#7D} {web1} "GET / HTTP/1.1"`},
		{"separators merge, empty fields leave no gap, %% is a percent", "  %ci   %HQ %CS %hr %{+Q}HQ %{+Q}CS end 100%%", &Entry{Client: "[::1]:80", URI: "/"},
			`::1 - "" "" end 100%`},
		{"quoted query, path only of an absolute URI", "%{+Q}HQ %HPO %HP", &Entry{URI: "http://h.test/x?y"}, `"?y" /x http://h.test/x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseLayout(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tt.e.appendLayout(nil, l)); got != tt.want {
				t.Errorf("line\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	if got := string(AppendHTTPLog(nil, &valid)); !strings.HasSuffix(got, `{one|a#7Bb#7D} {web1} "GET / HTTP/1.1"`) {
		t.Errorf("httplog line %q lacks the captures", got)
	}
}

func TestParseLayoutRefuses(t *testing.T) {
	for _, f := range []string{"%ID", "%ci %[src]", "%nope", "%{+X}ci", "%{+Q", "100%", "%si:%sp"} {
		if _, err := ParseLayout(f); err == nil {
			t.Errorf("ParseLayout(%q) accepted it", f)
		}
	}
}
