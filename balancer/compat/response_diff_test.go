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
	case strings.Contains(r.StatusLine, " 304 ") || strings.Contains(r.StatusLine, " 204 "):
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
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
			}()
		}
	}()
	return ln.Addr().String()
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
			if code == "504" {
				// Deliberate: net/http writes its own reason phrase.
				if g.StatusLine == h.StatusLine {
					t.Errorf("the 504 status line now matches HAProxy's: drop the deliberate difference from README")
				}
				g.StatusLine = strings.Replace(g.StatusLine, "Gateway Timeout", "Gateway Time-out", 1)
			}
			if h.StatusLine != g.StatusLine {
				t.Errorf("status line:\nhaproxy %q\ntether  %q", h.StatusLine, g.StatusLine)
			}
			if !slices.Equal(h.sorted(), g.sorted()) {
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
