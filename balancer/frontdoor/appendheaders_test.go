package frontdoor

import (
	"net/http"
	"testing"
)

func TestAppendHeadersOrderThenAdded(t *testing.T) {
	h := http.Header{
		"Content-Type": {"text/plain"},
		"Date":         {"today"},
		"Set-Cookie":   {"a=1", "b=2"},
		"Empty":        {},
	}
	for _, tt := range []struct {
		name  string
		order []string
		want  string
	}{
		{"the server's order, nothing added", []string{"Set-Cookie", "Date", "Content-Type", "Empty"},
			"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nDate: today\r\nContent-Type: text/plain\r\n"},
		{"a name gone from the map, one added on the way", []string{"Date", "Content-Length", "Content-Type", "Empty"},
			"Date: today\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"},
		{"no order: sorted", nil,
			"Content-Type: text/plain\r\nDate: today\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"},
	} {
		if got := string(appendHeaders(nil, h, tt.order)); got != tt.want {
			t.Errorf("%s:\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}

func TestAppendHeaderReplacesLineBreaks(t *testing.T) {
	got := string(appendHeader(nil, "X", []string{"a\r\nb", "c\nd", "e\rf", "plain"}))
	want := "X: a  b\r\nX: c d\r\nX: e f\r\nX: plain\r\n"
	if got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
