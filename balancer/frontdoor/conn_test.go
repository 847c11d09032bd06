package frontdoor

import (
	"strings"
	"testing"
)

// browserHead is a typical browser request head (about 700 bytes).
const browserHead = "GET /shop/cart?id=42 HTTP/1.1\r\nHost: shop.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://shop.example.com/shop/\r\nConnection: keep-alive\r\n" +
	"Cookie: SRV=8de25f0458ef6623; session=0123456789abcdef0123456789abcdef; theme=dark\r\n" +
	"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n" +
	"Sec-Fetch-Site: same-origin\r\nSec-Fetch-User: ?1\r\nPriority: u=0, i\r\n\r\n"

func TestScan(t *testing.T) {
	tests := []struct {
		name   string
		reads  []string
		cl, te bool
		host   string
	}{
		{"plain head", []string{browserHead}, false, false, "shop.example.com"},
		{"content-length", []string{"POST / HTTP/1.1\r\nHost: a\r\nCONTENT-length: 5\r\n\r\nhello"}, true, false, "a"},
		{"transfer-encoding split over reads", []string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Enc", "oding: chunked\r\n\r\n"}, false, true, "a"},
		{"name split at the line start", []string{"POST / HTTP/1.1\r\n", "Content-Length: 5\r\nHost:  b:8080 \r\n\r\n"}, true, false, "b:8080"},
		{"bare LF lines", []string{"POST / HTTP/1.1\nhost: c\ncontent-length: 0\n\n"}, true, false, "c"},
		{"name only inside a value", []string{"GET / HTTP/1.1\r\nX-A: content-length: 5\r\n\r\n"}, false, false, ""},
		{"last host wins", []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: z\r\n\r\n"}, false, false, "z"},
		{"long line kept short", []string{"GET / HTTP/1.1\r\nHost: " + strings.Repeat("h", 1000), "\r\n\r\n"}, false, false, strings.Repeat("h", maxScannedLine-len("Host: "))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clientConn{}
			for _, r := range tt.reads {
				c.scan([]byte(r))
			}
			if c.sawContentLength.Load() != tt.cl || c.sawTransferEncoding.Load() != tt.te || c.lastHost() != tt.host {
				t.Errorf("content-length %v, transfer-encoding %v, host %q; want %v, %v, %q",
					c.sawContentLength.Load(), c.sawTransferEncoding.Load(), c.lastHost(), tt.cl, tt.te, tt.host)
			}
		})
	}
}

func TestIsGoRequestError(t *testing.T) {
	tests := []struct {
		reply string
		want  bool
	}{
		{"HTTP/1.1 400 Bad Request" + goErrorHeaders + "400 Bad Request", true},
		{"HTTP/1.1 400 Bad Request: missing required Host header" + goErrorHeaders + "400 Bad Request: missing required Host header", true},
		{"HTTP/1.1 431 Request Header Fields Too Large" + goErrorHeaders + "431 Request Header Fields Too Large", true},
		{"HTTP/1.1 501 Not Implemented" + goErrorHeaders + "Unsupported transfer encoding", true},
		{"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version" + goErrorHeaders + "505 HTTP Version Not Supported: unsupported protocol version", false},
		{"HTTP/1.1 400 Bad Request\r\nContent-Length: 15\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request", false},
		{"HTTP/1.1 400 Bad Request\r\nDate: Mon, 30 Nov 2026 22:00:00 GMT" + goErrorHeaders + "400 Bad Request", false},
		{"HTTP/1.1 200 OK" + goErrorHeaders + "200 OK", false},
	}
	for _, tt := range tests {
		if got := isGoRequestError([]byte(tt.reply)); got != tt.want {
			t.Errorf("isGoRequestError(%q) = %v, want %v", tt.reply, got, tt.want)
		}
	}
}

// BenchmarkScan measures what the header scan adds to reading one typical
// request head.
func BenchmarkScan(b *testing.B) {
	c := &clientConn{}
	p := []byte(browserHead)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		c.scan(p)
	}
}

// FuzzScan checks that how reads cut the bytes never changes what the scan
// finds.
func FuzzScan(f *testing.F) {
	f.Add([]byte(browserHead), 40)
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 30)
	f.Add([]byte("GET / HTTP/1.1\nhost:b\n\n"), 16)
	f.Fuzz(func(t *testing.T, p []byte, cut int) {
		if cut < 0 || cut > len(p) {
			return
		}
		whole, split := &clientConn{}, &clientConn{}
		whole.scan(p)
		split.scan(p[:cut])
		split.scan(p[cut:])
		if whole.sawContentLength.Load() != split.sawContentLength.Load() ||
			whole.sawTransferEncoding.Load() != split.sawTransferEncoding.Load() ||
			whole.lastHost() != split.lastHost() {
			t.Errorf("cut at %d changes the scan of %q", cut, p)
		}
	})
}

func TestHTTP10Head(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"closing", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		{"keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
		{"close already", "HTTP/1.0 400 Bad Request\r\nconnection: close\r\n\r\n", "HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n"},
		{"name only in the body", "HTTP/1.0 200 OK\r\nContent-Length: 22\r\n\r\n\r\nConnection: keep-alive", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 22\r\n\r\n\r\nConnection: keep-alive"},
		{"head cut by the write", "HTTP/1.0 200 OK\r\nX-A: 1\r\n", "HTTP/1.1 200 OK\r\nConnection: close\r\nX-A: 1\r\n"},
		{"status line cut by the write", "HTTP/1.0 200", "HTTP/1.1 200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clientConn{}
			var got []byte
			for _, b := range c.http10Head([]byte(tt.in)) {
				got = append(got, b...)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
