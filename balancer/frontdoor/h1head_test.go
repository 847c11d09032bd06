package frontdoor

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
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

// FuzzRequestURL checks that the target parsing that skips url's
// allocation makes what url.ParseRequestURI makes.
func FuzzRequestURL(f *testing.F) {
	for _, target := range []string{"/", "/a/b?c=d", "/a?", "/a??", "/%41", "/a b", "/a#f", "//host/p",
		"/a!b", "/é", "/p?q=é#x", "*", "http://h/p", "/:x@y", "/a;b=c,d$&+"} {
		f.Add(target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !validTarget(target) {
			return
		}
		var into url.URL
		got, ok := requestURL(http.MethodOptions, target, &into)
		want, err := url.ParseRequestURI(target)
		if ok != (err == nil) {
			t.Fatalf("%q: parsed %v, url.ParseRequestURI says %v", target, ok, err)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, want %#v", target, *got, *want)
		}
	})
}

// TestParseHeadReusesItsMaps checks that a second head parsed into the
// first one's storage leaves nothing of the first behind.
func TestParseHeadReusesItsMaps(t *testing.T) {
	first, ok := parseHead("GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nX-Two: 2\r\nX-Two: 3\r\n\r\n", nil)
	if !ok {
		t.Fatal("first head refused")
	}
	second, ok := parseHead("GET / HTTP/1.1\r\nHost: b\r\nX-Two: 4\r\n\r\n", &first)
	if !ok {
		t.Fatal("second head refused")
	}
	if got := fmt.Sprint(second.header, second.order); got != "map[X-Two:[4]] [Host X-Two]" {
		t.Errorf("second head %s", got)
	}
}
