package frontdoor

import (
	"strings"
	"testing"
)

// FuzzParseHead checks that any bytes parse without a panic, and that a
// head accepted has exactly one framing.
func FuzzParseHead(f *testing.F) {
	for _, c := range smugglingCases {
		f.Add(c.request)
	}
	for _, c := range requestLineCases {
		f.Add(c.request)
	}
	f.Add("GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n")
	f.Fuzz(func(t *testing.T, raw string) {
		end := headEnd([]byte(raw), 0)
		if end < 0 {
			return
		}
		h, ok := parseHead(raw[:end], nil)
		if !ok {
			return
		}
		cl := h.header["Content-Length"]
		switch {
		case h.chunked && (len(cl) != 0 || h.contentLength != -1):
			t.Errorf("chunked head keeps Content-Length %q (%d)", cl, h.contentLength)
		case !h.chunked && h.contentLength < 0:
			t.Errorf("negative length %d", h.contentLength)
		case len(cl) > 1:
			t.Errorf("several Content-Length values %q", cl)
		case h.major != 1 || (h.minor != 0 && h.minor != 1):
			t.Errorf("version %d.%d", h.major, h.minor)
		case h.header["Host"] != nil:
			t.Errorf("Host left in the header map")
		case strings.ContainsAny(h.target, " \r\n"):
			t.Errorf("target %q", h.target)
		}
	})
}
