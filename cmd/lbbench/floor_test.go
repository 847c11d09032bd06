package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFloorsProxyWithPersistence runs each floor proxy against two
// origins: a request without a cookie gets one naming the server that
// answered, requests carrying it all go there, and pipelined requests on
// one connection are answered in order.
func TestFloorsProxyWithPersistence(t *testing.T) {
	var origins []string
	for i := range 2 {
		name := fmt.Sprintf("web%d", i)
		o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", name, r.URL.Path)
		}))
		defer o.Close()
		origins = append(origins, strings.TrimPrefix(o.URL, "http://"))
	}
	for _, kind := range []string{floorGoroutines, floorEpoll, floorGoroutines + "+100µs", floorEpoll + "+100µs"} {
		t.Run(kind, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addr := freeAddrs(1)[0]
			errc := make(chan error, 1)
			go func() { errc <- serveFloor(ctx, strings.Join(append([]string{kind, addr}, origins...), ",")) }()
			var c net.Conn
			var err error
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if c, err = net.Dial("tcp", addr); err == nil || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("floor not listening: %v (%v)", err, <-errc)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)

			fmt.Fprintf(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body := readFloorResponse(t, br)
			cookies := resp.Cookies()
			if len(cookies) != 1 || cookies[0].Name != floorCookie {
				t.Fatalf("first response sets %v, want one %s cookie", resp.Header["Set-Cookie"], floorCookie)
			}
			server, _, _ := strings.Cut(body, " ")
			if want := "web" + cookies[0].Value; server != want {
				t.Fatalf("cookie %s=%s but %s answered", floorCookie, cookies[0].Value, server)
			}

			var pipelined strings.Builder
			for i := range 5 {
				fmt.Fprintf(&pipelined, "GET /%d HTTP/1.1\r\nHost: x\r\nCookie: %s=%s\r\n\r\n", i, floorCookie, cookies[0].Value)
			}
			io.WriteString(c, pipelined.String())
			for i := range 5 {
				resp, body := readFloorResponse(t, br)
				if want := fmt.Sprintf("%s /%d", server, i); body != want || len(resp.Cookies()) != 0 {
					t.Fatalf("pipelined request %d: %q with cookies %v, want %q and none", i, body, resp.Header["Set-Cookie"], want)
				}
			}
		})
	}
}

func readFloorResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestFloorWork checks that a floor given work spends at least that much
// on each request, and that a spec with a work that is no positive
// duration is refused.
func TestFloorWork(t *testing.T) {
	r := &floorRouter{origins: []string{"a", "b"}, work: 2 * time.Millisecond}
	start := time.Now()
	r.route([]byte("GET / HTTP/1.1\r\n\r\n"))
	if took := time.Since(start); took < r.work {
		t.Errorf("route took %v, want at least %v", took, r.work)
	}
	for _, spec := range []string{floorEpoll + "+x,127.0.0.1:1,127.0.0.1:2", floorEpoll + "+-1ms,127.0.0.1:1,127.0.0.1:2", floorEpoll + "+0s,127.0.0.1:1,127.0.0.1:2"} {
		if err := serveFloor(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "not a positive duration") {
			t.Errorf("serveFloor(%q) = %v, want a refusal of the work", spec, err)
		}
	}
}
