package compat

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawReply is one response as it came on the wire: the status line, the
// header lines in their order (names lowercased) and the body.
type rawReply struct {
	StatusLine string
	Headers    []string // "name: value", name lowercased, in wire order
	Body       string
}

// sorted is the header lines with their order ignored.
func (r rawReply) sorted() []string {
	h := slices.Clone(r.Headers)
	slices.Sort(h)
	return h
}

// rawExchange sends raw on a new connection and reads one response, with
// its body framed by Content-Length or read to the connection's end.
func rawExchange(t *testing.T, addr, raw string) rawReply {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	var r rawReply
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("read status line from %s: %v", addr, err)
	}
	r.StatusLine = strings.TrimRight(line, "\r\n")
	length := -1
	chunked := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read header from %s: %v", addr, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		name, value = strings.ToLower(name), strings.TrimSpace(value)
		r.Headers = append(r.Headers, name+": "+value)
		switch {
		case name == "content-length":
			length, _ = strconv.Atoi(value)
		case name == "transfer-encoding" && strings.EqualFold(value, "chunked"):
			chunked = true
		}
	}
	var body []byte
	switch {
	case chunked:
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read chunk from %s: %v", addr, err)
			}
			n, _ := strconv.ParseInt(strings.TrimRight(line, "\r\n"), 16, 64)
			chunk := make([]byte, n+2)
			io.ReadFull(br, chunk)
			if n == 0 {
				break
			}
			body = append(body, chunk[:n]...)
		}
	case length >= 0:
		body = make([]byte, length)
		io.ReadFull(br, body)
	case strings.HasPrefix(raw, "HEAD ") || strings.Contains(r.StatusLine, " 304 ") || strings.Contains(r.StatusLine, " 204 "):
	default:
		body, _ = io.ReadAll(br)
	}
	r.Body = string(body)
	return r
}

// silentOrigin accepts connections and reads requests; answer decides
// what it does with each connection once a request arrived.
func silentOrigin(t *testing.T, answer func(c net.Conn)) string {
	t.Helper()
	return tcpOrigin(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		answer(c)
	})
}

// TestErrorPagesMatchHAProxy compares Tether's 502, 503 and 504 pages with
// HAProxy's, status line, headers and body.
func TestErrorPagesMatchHAProxy(t *testing.T) {
	// The 502 origin answers garbage; the 504 origin holds the request
	// past timeout server; the 503 backend has no server.
	garbage := silentOrigin(t, func(c net.Conn) { io.WriteString(c, "not http\r\n\r\n") })
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	slow := silentOrigin(t, func(c net.Conn) { <-hold })
	servers := map[string]string{"502": "    server s1 " + garbage + "\n", "503": "", "504": "    server s1 " + slow + "\n"}
	for _, code := range []string{"502", "503", "504"} {
		t.Run(code, func(t *testing.T) {
			p := startPair(t, func(bind, socket string) string {
				return fmt.Sprintf("global\n    %s\n\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 300ms\n\n", socket) +
					"frontend fe\n    bind " + bind + "\n    default_backend app\n\nbackend app\n" + servers[code]
			})
			raw := "GET / HTTP/1.1\r\nHost: test\r\n\r\n"
			h := rawExchange(t, strings.TrimPrefix(p.haproxyURL, "http://"), raw)
			g := rawExchange(t, strings.TrimPrefix(p.tetherURL, "http://"), raw)
			if !strings.HasPrefix(h.StatusLine, "HTTP/1.1 "+code+" ") {
				t.Fatalf("haproxy answered %q", h.StatusLine)
			}
			if h.StatusLine != g.StatusLine {
				t.Errorf("status line:\nhaproxy %q\ntether  %q", h.StatusLine, g.StatusLine)
			}
			if !slices.Equal(h.Headers, g.Headers) {
				t.Errorf("headers:\nhaproxy %q\ntether  %q", h.Headers, g.Headers)
			}
			if h.Body != g.Body {
				t.Errorf("body:\nhaproxy %q\ntether  %q", h.Body, g.Body)
			}
		})
	}
}

// linesNamed is the header lines of r with one of names, in wire order.
func (r rawReply) linesNamed(names ...string) []string {
	var out []string
	for _, l := range r.Headers {
		name, _, _ := strings.Cut(l, ":")
		if slices.Contains(names, name) {
			out = append(out, l)
		}
	}
	return out
}

// TestNocacheHeaderOrderMatchesHAProxy checks that the persistence cookie
// and the Cache-Control: private that nocache adds come in HAProxy's order,
// after what the server sent.
func TestNocacheHeaderOrderMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
			"backend app\n    cookie SRV insert indirect nocache\n    server web1 " + o.addrs[0] + " cookie w1\n"
	})
	for _, path := range []string{"/?cacheable=1", "/?cacheable=1&setcookie=a%3D1", "/?etag=1", "/?etag=1&setcookie=a%3D1&setcookie=b%3D2"} {
		raw := "GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
		h := rawExchange(t, strings.TrimPrefix(p.haproxyURL, "http://"), raw)
		g := rawExchange(t, strings.TrimPrefix(p.tetherURL, "http://"), raw)
		t.Logf("%s\nhaproxy %q\ntether  %q", path, h.Headers, g.Headers)
		hl, gl := h.linesNamed("set-cookie", "cache-control"), g.linesNamed("set-cookie", "cache-control")
		if !slices.Equal(hl, gl) {
			t.Errorf("%s: Set-Cookie and Cache-Control lines:\nhaproxy %q\ntether  %q", path, hl, gl)
		}
	}
}

// headOrigin answers every request with answer and sends the request
// heads it received, lines in order, on heads.
func headOrigin(t *testing.T, answer string) (addr string, heads chan []string) {
	t.Helper()
	heads = make(chan []string, 16)
	addr = tcpOrigin(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			var head []string
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				line = strings.TrimRight(line, "\r\n")
				if line == "" {
					break
				}
				head = append(head, line)
			}
			select {
			case heads <- head:
			default:
			}
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	})
	return addr, heads
}

// receivedHead waits for the next request head an origin received.
func receivedHead(t *testing.T, heads chan []string) []string {
	t.Helper()
	select {
	case h := <-heads:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("the origin received no request")
		return nil
	}
}

// withoutLines drops the lines whose lowercased name is one of names.
func withoutLines(lines []string, names ...string) []string {
	var out []string
	for _, l := range lines {
		name, _, _ := strings.Cut(strings.ToLower(l), ":")
		if !slices.Contains(names, name) {
			out = append(out, l)
		}
	}
	return out
}

// TestHTTP10ClientsMatchHAProxy compares what an HTTP/1.0 client gets and
// what the origin receives for it: the request line's version, the
// Connection header on both sides, and the status line.
func TestHTTP10ClientsMatchHAProxy(t *testing.T) {
	cases := []struct {
		name, request, answer string
		differs               string // why Tether deliberately answers otherwise
	}{
		{"1.0 GET", "GET /a HTTP/1.0\r\nHost: test\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"1.0 GET keep-alive", "GET /a HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"1.0 GET without Host", "GET /a HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"1.0 POST", "POST /a HTTP/1.0\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
		{"1.0 GET and a 1.0 answer", "GET /a HTTP/1.0\r\nHost: test\r\n\r\n", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
			"HAProxy's status line carries the server's version; Tether's is always HTTP/1.1"},
		{"1.0 GET and a chunked answer", "GET /a HTTP/1.0\r\nHost: test\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", ""},
		{"1.0 GET keep-alive and a chunked answer", "GET /a HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", ""},
		{"1.0 HEAD keep-alive", "HEAD /a HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", ""},
		{"1.1 GET", "GET /a HTTP/1.1\r\nHost: test\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hAddr, hHeads := headOrigin(t, c.answer)
			tAddr, tHeads := headOrigin(t, c.answer)
			p := startPair(t, func(bind, socket string) string {
				addr := tAddr
				if socket != "" {
					addr = hAddr
				}
				return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\nbackend app\n    server s1 " + addr + "\n"
			})
			h := rawExchange(t, strings.TrimPrefix(p.haproxyURL, "http://"), c.request)
			g := rawExchange(t, strings.TrimPrefix(p.tetherURL, "http://"), c.request)
			hHead, gHead := receivedHead(t, hHeads), receivedHead(t, tHeads)
			t.Logf("client\n  haproxy %q %q\n  tether  %q %q\norigin\n  haproxy %q\n  tether  %q", h.StatusLine, h.Headers, g.StatusLine, g.Headers, hHead, gHead)
			sameHead := h.StatusLine == g.StatusLine && slices.Equal(h.linesNamed("connection"), g.linesNamed("connection"))
			switch {
			case c.differs != "" && sameHead:
				t.Errorf("the response head now matches HAProxy's: drop the deliberate difference %q", c.differs)
			case c.differs != "":
				t.Logf("deliberate difference: %s", c.differs)
			case !sameHead:
				t.Errorf("status line and Connection: haproxy %q %q, tether %q %q", h.StatusLine, h.linesNamed("connection"), g.StatusLine, g.linesNamed("connection"))
			}
			if h.Body != g.Body {
				t.Errorf("body: haproxy %q, tether %q", h.Body, g.Body)
			}
			if hHead[0] != gHead[0] {
				t.Errorf("origin's request line: haproxy %q, tether %q", hHead[0], gHead[0])
			}
			// Compare the origin's header lines, order and case aside.
			hl := withoutLines(hHead[1:], "x-forwarded-for")
			gl := withoutLines(gHead[1:], "x-forwarded-for")
			for i := range hl {
				hl[i] = strings.ToLower(hl[i])
			}
			for i := range gl {
				gl[i] = strings.ToLower(gl[i])
			}
			slices.Sort(hl)
			slices.Sort(gl)
			if !slices.Equal(hl, gl) {
				t.Errorf("origin's headers: haproxy %q, tether %q", hl, gl)
			}
		})
	}
}

// TestCookieSyntaxMatchesHAProxy sends Cookie headers outside RFC 6265
// that HAProxy's persistence parsing still handles: commas as separators,
// quoted values holding delimiters, RFC 2109 "$" attributes, spaces
// around "=". Both proxies must route alike and forward the same Cookie
// header.
func TestCookieSyntaxMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 2)
	modes := []struct {
		name, cookie string
		steps        []step
	}{
		{"insert indirect", "cookie SRV insert indirect nocache", []step{
			{name: "comma before", cookie: "a=1, SRV=w2"},
			{name: "comma after", cookie: "SRV=w2, a=1"},
			{name: "commas and semicolons", cookie: "a=1, SRV=w2; b=2,c=3"},
			{name: "quoted semicolon before", cookie: `x="a;b"; SRV=w2`},
			{name: "quoted cookie after", cookie: `SRV=w2; x="a;SRV=w1"`},
			{name: "quoted comma", cookie: `x="a,b", SRV=w2, y=3`},
			{name: "quoted escape", cookie: `x="a\";SRV=w1"; SRV=w2`},
			{name: "only a quoted look-alike", cookie: `x="a;SRV=w2"`},
			{name: "RFC 2109 alone", cookie: "$Version=1; SRV=w2; $Path=/"},
			{name: "RFC 2109 among others", cookie: "$Version=1; a=1; SRV=w2; $Path=/; b=2"},
			{name: "RFC 2109 after ours at the end", cookie: "a=1; SRV=w2; $Path=/; $Domain=x"},
			{name: "dollar name", cookie: "$SRV=w1; SRV=w2"},
			{name: "spaces around equals", cookie: "a = 1; SRV = w2 ; b= 2"},
			{name: "spaces in another line only", cookie: "a = 1; b =2"},
			{name: "cookie without value", cookie: "flag; SRV=w2; other"},
			{name: "empty items", cookie: ";; SRV=w2;;a=1;"},
		}},
		{"prefix", "cookie JSID prefix", []step{
			{name: "comma", cookie: "a=1, JSID=w2~abc, b=2"},
			{name: "quoted", cookie: `x="q;JSID=w1~z"; JSID=w2~abc`},
			{name: "RFC 2109", cookie: "$Version=1; JSID=w2~abc; $Path=/"},
		}},
		{"passive", "cookie SRV", []step{
			{name: "comma", cookie: "a=1,SRV=w2"},
			{name: "quoted", cookie: `x="SRV=w1;"; SRV=w2`},
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			p := startPair(t, func(bind, socket string) string {
				return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
					"backend app\n    " + m.cookie + "\n" +
					fmt.Sprintf("    server web1 %s cookie w1\n    server web2 %s cookie w2\n", o.addrs[0], o.addrs[1])
			})
			p.run(m.steps)
		})
	}
}

// TestRequestHeaderOrder sends one request four times: both proxies
// forward the header lines in the client's order, each time.
func TestRequestHeaderOrder(t *testing.T) {
	hAddr, hHeads := headOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	tAddr, tHeads := headOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	p := startPair(t, func(bind, socket string) string {
		addr := tAddr
		if socket != "" {
			addr = hAddr
		}
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\nbackend app\n    server s1 " + addr + "\n"
	})
	const request = "GET / HTTP/1.1\r\nHost: test\r\nX-Zulu: 1\r\nAccept: */*\r\nX-Alpha: 2\r\nUser-Agent: t\r\nX-Mike: 3\r\nX-Bravo: 4\r\n\r\n"
	clientOrder := []string{"host", "x-zulu", "accept", "x-alpha", "user-agent", "x-mike", "x-bravo"}
	names := func(head []string) []string {
		var out []string
		for _, l := range head[1:] {
			name, _, _ := strings.Cut(strings.ToLower(l), ":")
			out = append(out, name)
		}
		return out
	}
	var first []string
	for i := range 4 {
		rawExchange(t, strings.TrimPrefix(p.haproxyURL, "http://"), request)
		rawExchange(t, strings.TrimPrefix(p.tetherURL, "http://"), request)
		h, g := names(receivedHead(t, hHeads)), names(receivedHead(t, tHeads))
		if !slices.Equal(h, clientOrder) {
			t.Errorf("haproxy forwarded %q, not the client's order", h)
		}
		if !slices.Equal(g, clientOrder) {
			t.Errorf("request %d: tether forwarded %q, want the client's order %q", i, g, clientOrder)
		}
		if i == 0 {
			first = g
		} else if !slices.Equal(g, first) {
			t.Errorf("request %d: tether forwarded %q after %q", i, g, first)
		}
	}
}

// TestResponseHeaderOrder checks that both proxies forward a response's
// header lines in the server's order, a persistence cookie after them.
func TestResponseHeaderOrder(t *testing.T) {
	const answer = "HTTP/1.1 200 OK\r\nX-Zulu: 1\r\nContent-Type: text/plain\r\nX-Alpha: 2\r\nContent-Length: 2\r\nX-Mike: 3\r\n\r\nok"
	hAddr, _ := headOrigin(t, answer)
	tAddr, _ := headOrigin(t, answer)
	p := startPair(t, func(bind, socket string) string {
		addr := tAddr
		if socket != "" {
			addr = hAddr
		}
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\nbackend app\n    cookie SRV insert\n    server s1 " + addr + " cookie s1\n"
	})
	const request = "GET / HTTP/1.1\r\nHost: test\r\n\r\n"
	h := rawExchange(t, strings.TrimPrefix(p.haproxyURL, "http://"), request)
	g := rawExchange(t, strings.TrimPrefix(p.tetherURL, "http://"), request)
	if !slices.Equal(h.Headers, g.Headers) {
		t.Errorf("response header lines\nhaproxy %q\ntether  %q", h.Headers, g.Headers)
	}
}
