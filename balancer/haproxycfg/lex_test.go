package haproxycfg

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitLine(t *testing.T) {
	env := func(name string) (string, bool) {
		switch name {
		case "HOST":
			return "example.com", true
		case "WORDS":
			return "a  b c", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	tests := []struct {
		line    string
		want    []string
		wantErr string
	}{
		{line: "", want: nil},
		{line: "   \t  ", want: nil},
		{line: "# only a comment", want: nil},
		{line: "  server s1 1.2.3.4:80   check # comment", want: []string{"server", "s1", "1.2.3.4:80", "check"}},
		{line: "a#b", want: []string{"a"}},
		{line: `a\#b`, want: []string{"a#b"}},
		{line: `"a # b" 'c # d'`, want: []string{"a # b", "c # d"}},
		{line: `a\ b c`, want: []string{"a b", "c"}},
		{line: `'it''s' "x"y`, want: []string{"its", "xy"}},
		{line: `"say \"hi\"" 'no \escape here'`, want: []string{`say "hi"`, `no \escape here`}},
		{line: `\\ \t\n\r`, want: []string{`\`, "\t\n\r"}},
		{line: `\x41\x2a`, want: []string{"A*"}},
		{line: `a\qb`, want: []string{`a\qb`}},
		{line: `trailing\`, want: []string{`trailing\`}},
		{line: `cookie "" insert`, want: []string{"cookie", "", "insert"}},
		{line: `key ""`, want: []string{"key"}},
		{line: `$HOME "$HOST" '$HOST'`, want: []string{"$HOME", "example.com", "$HOST"}},
		{line: `"${HOST}:80" "${NOPE-fallback}" "${HOST-unused}" "${EMPTY-x}" end`, want: []string{"example.com:80", "fallback", "example.com", "", "end"}},
		{line: `"[${NOPE}]"`, want: []string{"[]"}},
		{line: `x "${WORDS[*]}" y`, want: []string{"x", "a", "b", "c", "y"}},
		{line: `"\$HOST"`, want: []string{"$HOST"}},
		{line: "a\rb c", want: []string{"a"}},
		{line: `"unterminated`, wantErr: "unmatched quote at position 1"},
		{line: `ok 'unterminated`, wantErr: "unmatched quote at position 4"},
		{line: `\xZZ`, wantErr: "invalid hexadecimal sequence"},
		{line: `\x0`, wantErr: "invalid hexadecimal sequence"},
		{line: `\x00`, wantErr: "NUL character"},
		{line: "a\x00b", wantErr: "NUL character"},
		{line: `"$5"`, wantErr: "invalid variable name"},
		{line: `"${HOST"`, wantErr: "unmatched brace"},
		{line: `"${HOST[x]}"`, wantErr: "invalid word expansion"},
		{line: `"${.LINE}"`, wantErr: "pseudo-variable"},
		{line: strings.Repeat("w ", 64), want: strings.Fields(strings.Repeat("w ", 64))},
		{line: strings.Repeat("w ", 65), wantErr: "too many words"},
	}
	for _, tt := range tests {
		got, err := splitLine(tt.line, env)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("splitLine(%q) error = %v, want %q", tt.line, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("splitLine(%q): %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitLine(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestQuoteWord checks that every word survives quoteWord then splitLine.
func TestQuoteWord(t *testing.T) {
	words := []string{"plain", "a b", `q"uote`, "it's", `back\slash`, "#hash", "$HOME", "${X}",
		"tab\there", "nl\nx", "cr\rx", "\x01\x7f", "ünïcode", "semi;colon", `\x41`}
	for _, w := range words {
		line := "kw " + quoteWord(w) + " end"
		got, err := splitLine(line, func(string) (string, bool) { return "EXPANDED", true })
		if err != nil || len(got) != 3 || got[1] != w {
			t.Errorf("quoteWord(%q) = %s; read back as %q (err %v)", w, quoteWord(w), got, err)
		}
	}
	if quoteWord("plain") != "plain" {
		t.Errorf("plain words must not be quoted")
	}
}

func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in      string
		want    hostPort
		wantErr string
	}{
		{in: "127.0.0.1:80", want: hostPort{Host: "127.0.0.1", Port: 80, PortSet: true}},
		{in: "127.0.0.1", want: hostPort{Host: "127.0.0.1"}},
		{in: "127.0.0.1:", want: hostPort{Host: "127.0.0.1"}},
		{in: "[::1]:8080", want: hostPort{Host: "::1", Port: 8080, PortSet: true}},
		{in: "[2001:db8::1]", want: hostPort{Host: "2001:db8::1"}},
		{in: "::1:80", want: hostPort{Host: "::1", Port: 80, PortSet: true}},
		{in: "ipv6@::1:80", want: hostPort{Host: "::1", Port: 80, PortSet: true, Family: "ipv6"}},
		{in: "ipv4@10.0.0.1:80", want: hostPort{Host: "10.0.0.1", Port: 80, PortSet: true, Family: "ipv4"}},
		{in: "app.example.com:443", want: hostPort{Host: "app.example.com", Port: 443, PortSet: true}},
		{in: ":80", want: hostPort{Port: 80, PortSet: true}},
		{in: "*:80", want: hostPort{Port: 80, PortSet: true}},
		{in: "2001:db8::1", wantErr: "write IPv6 addresses as [ADDR]:PORT"},
		{in: "1.2.3.4:99999", wantErr: "invalid port '99999'"},
		{in: "1.2.3.4:0", wantErr: "invalid port '0'"},
		{in: "1.2.3.4:+1", wantErr: "port offsets"},
		{in: "1.2.3.4:80-90", wantErr: "port ranges"},
		{in: "ipv4@::1:80", wantErr: "not an ipv4 address"},
		{in: "unix@/x", wantErr: "address family 'unix@'"},
		{in: "[::1", wantErr: "missing ']'"},
		{in: "bad host!:80", wantErr: "invalid address"},
	}
	for _, tt := range tests {
		got, err := splitHostPort(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("splitHostPort(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("splitHostPort(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
