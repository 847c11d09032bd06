package balancer

import (
	"net/http"
	"strings"
	"testing"
)

func TestReplaceHeader(t *testing.T) {
	tests := []struct {
		words       []string
		in, want    string
		parseErrHas string
	}{
		{words: []string{"replace-header", "X-A", `^(\w+)=(\w+)$`, `\2=\1`}, in: "a=b", want: "b=a"},
		{words: []string{"replace-header", "X-A", `b`, `[\0]`}, in: "abc", want: "[b]"},
		{words: []string{"replace-header", "X-A", `^(x)?a`, `<\1>`}, in: "abc", want: "<>"},
		{words: []string{"replace-header", "X-A", `a`, `\\ \q`}, in: "a", want: `\ q`},
		{words: []string{"replace-header", "X-A", `z`, `y`}, in: "abc", want: "abc"},
		{words: []string{"replace-header", "X-A", `(?=a)`, `y`}, parseErrHas: "regular expression"},
		{words: []string{"replace-header", "X-A", `a`, `\x41`}, parseErrHas: "hexadecimal"},
		{words: []string{"replace-header", "X-A", `a`}, parseErrHas: "exactly 3 arguments"},
	}
	for _, tt := range tests {
		a, err := parseHTTPAction(RequestPhase, tt.words)
		if tt.parseErrHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.parseErrHas) {
				t.Errorf("%q: error %v, want one containing %q", tt.words, err, tt.parseErrHas)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.words, err)
		}
		h := http.Header{"X-A": {tt.in, tt.in}}
		editHeader(h, nil, &a)
		if got := h["X-A"]; got[0] != tt.want || got[1] != tt.want {
			t.Errorf("%q on %q: %q, want %q on every line", tt.words, tt.in, got, tt.want)
		}
	}
}
