package frontdoor

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tether/balancer"
)

// echoHandler answers with the request's method, target, protocol, Host
// and body; the path chooses how the response is written.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	reply := fmt.Sprintf("%s %s %s host=%s body=%q", r.Method, r.RequestURI, r.Proto, r.Host, body)
	switch r.URL.Path {
	case "/stream":
		// Written in parts with flushes: no length is known in advance.
		for _, part := range strings.SplitAfter(reply, " ") {
			io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	case "/large":
		w.Header().Set("Content-Length", strconv.Itoa(3*outBufferSize))
		w.Write(bytes.Repeat([]byte("x"), 3*outBufferSize))
	case "/large-unknown":
		w.Write(bytes.Repeat([]byte("y"), 3*outBufferSize))
	case "/close":
		w.Header().Set("Connection", "close")
		io.WriteString(w, reply)
	case "/nocontent":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNoContent)
	case "/short":
		// Announces more than it sends: only the close can say so.
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "abc")
	case "/abort":
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	default:
		io.WriteString(w, reply)
	}
}

// TestConnectionLoop sends raw requests to the server's own HTTP/1.x loop
// and checks the bytes that come back.
func TestConnectionLoop(t *testing.T) {
	addr := serveFront(t, fastKeepAlive, balancer.Global{}, http.HandlerFunc(echoHandler))
	tests := []struct {
		name    string
		request string
		// check receives everything the server sent until it closed.
		check func(t *testing.T, raw []byte)
	}{
		{
			name:    "HTTP/1.0 closes, with an HTTP/1.1 status line",
			request: "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantPrefix(t, raw, "HTTP/1.1 200 OK\r\n")
				wantHeaderLine(t, raw, "Connection: close")
				wantReplies(t, raw, `GET /a HTTP/1.0 host= body=""`)
			},
		},
		{
			name:    "HTTP/1.0 keep-alive stays open",
			request: "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantHeaderLine(t, raw, "Connection: keep-alive")
				wantReplies(t, raw, `GET /a HTTP/1.0 host= body=""`, `GET /b HTTP/1.0 host= body=""`)
			},
		},
		{
			name:    "HTTP/1.0 streamed response is delimited by the close",
			request: "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantHeaderLine(t, raw, "Connection: close")
				if bytes.Contains(raw, []byte("Transfer-Encoding")) {
					t.Errorf("chunked response to an HTTP/1.0 client:\n%s", raw)
				}
				wantReplies(t, raw, `GET /stream HTTP/1.0 host= body=""`)
			},
		},
		{
			name:    "pipelined requests are answered in order",
			request: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantReplies(t, raw, `GET /1 HTTP/1.1 host=a body=""`, `POST /2 HTTP/1.1 host=a body="abc"`, `GET /3 HTTP/1.1 host=a body=""`)
			},
		},
		{
			name:    "streamed response is chunked",
			request: "GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantHeaderLine(t, raw, "Transfer-Encoding: chunked")
				wantReplies(t, raw, `GET /stream HTTP/1.1 host=a body=""`)
			},
		},
		{
			name:    "small body written whole gets its length",
			request: "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantHeaderLine(t, raw, "Content-Length: 30")
				wantReplies(t, raw, `GET /a HTTP/1.1 host=a body=""`)
			},
		},
		{
			name:    "bodies larger than the output buffer, known and unknown length",
			request: "GET /large HTTP/1.1\r\nHost: a\r\n\r\nGET /large-unknown HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantReplies(t, raw, strings.Repeat("x", 3*outBufferSize), strings.Repeat("y", 3*outBufferSize))
			},
		},
		{
			name:    "request body larger than the read buffer",
			request: "POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 40000\r\nConnection: close\r\n\r\n" + strings.Repeat("z", 40000),
			check: func(t *testing.T, raw []byte) {
				wantReplies(t, raw, fmt.Sprintf(`POST /big HTTP/1.1 host=a body=%q`, strings.Repeat("z", 40000)))
			},
		},
		{
			name:    "chunked request body with extensions and trailers",
			request: "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantReplies(t, raw, `POST /c HTTP/1.1 host=a body="abcde"`, `GET /after HTTP/1.1 host=a body=""`)
			},
		},
		{
			name:    "empty lines before a request line are skipped",
			request: "\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantReplies(t, raw, `GET /a HTTP/1.1 host=a body=""`)
			},
		},
		{
			name:    "204 carries no framing headers",
			request: "GET /nocontent HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantPrefix(t, raw, "HTTP/1.1 204 No Content\r\n")
				for _, h := range []string{"Content-Length", "Content-Type", "Transfer-Encoding"} {
					if bytes.Contains(raw, []byte(h)) {
						t.Errorf("204 has %s:\n%s", h, raw)
					}
				}
			},
		},
		{
			name:    "HEAD gets the head only",
			request: "HEAD /large HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantHeaderLine(t, raw, "Content-Length: "+strconv.Itoa(3*outBufferSize))
				if bytes.Contains(raw, []byte("xxx")) {
					t.Errorf("HEAD response carries a body:\n%s", raw)
				}
				if !bytes.HasSuffix(raw, []byte(`GET /b HTTP/1.1 host=a body=""`)) {
					t.Errorf("the request after HEAD was not answered:\n%s", raw)
				}
			},
		},
		{
			name:    "handler asks to close",
			request: "GET /close HTTP/1.1\r\nHost: a\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				wantReplies(t, raw, `GET /close HTTP/1.1 host=a body=""`)
			},
		},
		{
			name:    "a body shorter than announced ends the connection",
			request: "GET /short HTTP/1.1\r\nHost: a\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				if !bytes.HasSuffix(raw, []byte("\r\n\r\nabc")) || bytes.Contains(raw, []byte("never")) {
					t.Errorf("want the short body then a close:\n%s", raw)
				}
			},
		},
		{
			name:    "an aborted response is never made to look complete",
			request: "GET /abort HTTP/1.1\r\nHost: a\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
			check: func(t *testing.T, raw []byte) {
				_, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
				if err == nil {
					resp, _ := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
					if _, err = io.ReadAll(resp.Body); err == nil {
						t.Errorf("the aborted response reads as complete:\n%s", raw)
					}
				}
				if bytes.Contains(raw, []byte("never")) {
					t.Errorf("a request after the abort was served:\n%s", raw)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, exchange(t, addr, tt.request))
		})
	}
}

// TestExpectContinue checks that a client waiting for "100 Continue"
// gets it once the handler reads the body, and not when it answers
// without reading.
func TestExpectContinue(t *testing.T) {
	addr := serveFront(t, fastKeepAlive, balancer.Global{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		echoHandler(w, r)
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q (%v), want 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `POST /a HTTP/1.1 host=a body="hello"` {
		t.Errorf("reply %q", body)
	}

	// Answered without reading the body the client holds back: the
	// connection closes instead of waiting for that body.
	raw := exchange(t, addr, "POST /refuse HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	wantPrefix(t, raw, "HTTP/1.1 403 Forbidden\r\n")
	wantHeaderLine(t, raw, "Connection: close")
}

func wantPrefix(t *testing.T, raw []byte, prefix string) {
	t.Helper()
	if !bytes.HasPrefix(raw, []byte(prefix)) {
		t.Errorf("reply does not start with %q:\n%s", prefix, raw)
	}
}

func wantHeaderLine(t *testing.T, raw []byte, line string) {
	t.Helper()
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !bytes.Contains(head, []byte("\r\n"+line+"\r\n")) && !bytes.HasSuffix(head, []byte("\r\n"+line)) {
		t.Errorf("first response head lacks %q:\n%s", line, head)
	}
}

// wantReplies checks the bodies of the responses in raw, which must end
// with the last one's.
func wantReplies(t *testing.T, raw []byte, bodies ...string) {
	t.Helper()
	got := parseReplies(t, raw)
	var gotBodies []string
	for _, r := range got {
		gotBodies = append(gotBodies, r.body)
	}
	if fmt.Sprintf("%q", gotBodies) != fmt.Sprintf("%q", bodies) {
		t.Errorf("replies %q, want %q", gotBodies, bodies)
	}
}

// TestLongIdleConnection checks a keep-alive connection that waits longer
// than idleHandoff (and so moves to another goroutine): its next request
// is served, and timeout http-keep-alive still counts from the end of the
// previous response.
func TestLongIdleConnection(t *testing.T) {
	keepAlive := idleHandoff + 400*time.Millisecond
	fe := balancer.Frontend{TimeoutClient: 5 * time.Second, TimeoutHTTPKeepAlive: keepAlive}
	addr := serveFront(t, fe, balancer.Global{}, http.HandlerFunc(echoHandler))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	ask := func(path string) (*http.Response, time.Time, error) {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, time.Now(), err
		}
		_, err = io.ReadAll(resp.Body)
		return resp, time.Now(), err
	}
	_, answered, err := ask("/1")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(idleHandoff + 150*time.Millisecond)
	if resp, _, err := ask("/2"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("request after %v idle: %v", idleHandoff+150*time.Millisecond, err)
	}
	_, answered, err = ask("/3")
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want the server's close", err)
	}
	if idle := time.Since(answered); idle < keepAlive-50*time.Millisecond || idle > keepAlive+time.Second {
		t.Errorf("closed after %v idle, want about timeout http-keep-alive %v", idle, keepAlive)
	}
}

// TestReasonPhrases checks that a server's reason phrase reaches the
// client as it came (HAProxy's own pages are compared with HAProxy in
// balancer/compat).
func TestReasonPhrases(t *testing.T) {
	origin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	go serveFixed(origin, "HTTP/1.1 299 Weird Reason Here\r\nContent-Length: 2\r\n\r\nok")
	addr := startFrontTo(t, origin.Addr().String(), balancer.Frontend{TimeoutClient: 5 * time.Second}, balancer.Global{})
	raw := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	wantPrefix(t, raw, "HTTP/1.1 299 Weird Reason Here\r\n")
}
