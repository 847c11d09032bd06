package balancer

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// orderedConn is a ClientConn that knows its request's header order.
type orderedConn []string

func (orderedConn) Requests() int64         { return 1 }
func (o orderedConn) HeaderOrder() []string { return o }

func TestWriteHeadersKeepsTheClientsOrder(t *testing.T) {
	hdr := http.Header{
		"User-Agent": {"ua"},
		"Accept":     {"*/*"},
		"Cookie":     {"a=1", "b=2"},
		"X-Added":    {"rule"},
		"Connection": {"keep-alive"},
		"A-Added":    {"persistence"},
	}
	tests := []struct {
		name  string
		order []string
		want  string
	}{
		{
			name:  "client order, Host where it was, added headers after, sorted",
			order: []string{"Accept", "Host", "Cookie", "Connection", "User-Agent", "X-Removed"},
			want:  "Accept: */*\r\nHost: example.com\r\nCookie: a=1\r\nCookie: b=2\r\nUser-Agent: ua\r\nA-Added: persistence\r\nX-Added: rule\r\n",
		},
		{
			name:  "every header in the client's order: nothing after",
			order: []string{"Cookie", "X-Added", "Accept", "A-Added", "User-Agent", "Connection", "Host"},
			want:  "Cookie: a=1\r\nCookie: b=2\r\nX-Added: rule\r\nAccept: */*\r\nA-Added: persistence\r\nUser-Agent: ua\r\nHost: example.com\r\n",
		},
		{
			name: "no order known: Host first, then sorted",
			want: "Host: example.com\r\nA-Added: persistence\r\nAccept: */*\r\nCookie: a=1\r\nCookie: b=2\r\nUser-Agent: ua\r\nX-Added: rule\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://example.com/", nil)
			if tt.order != nil {
				r = r.WithContext(WithClientConn(r.Context(), orderedConn(tt.order)))
			}
			var out bytes.Buffer
			bw := bufio.NewWriter(&out)
			writeHeaders(bw, r, hdr, false)
			bw.Flush()
			if out.String() != tt.want {
				t.Errorf("wrote\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}
