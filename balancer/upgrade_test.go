package balancer

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestWebsocketThroughProxy upgrades a connection through the balancer to
// an echoing origin, keeping persistence: the 101 response carries the
// server's cookie and the echo comes back.
func TestWebsocketThroughProxy(t *testing.T) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, append([]byte("echo:"), msg...))
		}
	}))
	defer origin.Close()
	ap := netip.MustParseAddrPort(origin.Listener.Addr().String())
	be := Backend{Name: "ws", Cookie: &CookieConfig{Name: "SRV", Mode: CookieInsert, Indirect: true},
		Servers: []Server{{Name: "s1", Address: ap.Addr().String(), Port: int(ap.Port()), PortSet: true, Weight: 1, Cookie: "one"}}}
	h := newHarness(t, be, nil)
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.url, "http")+"/ws", http.Header{"Origin": {"http://example"}})
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer conn.Close()
	if got := resp.Header.Values("Set-Cookie"); len(got) != 1 || got[0] != "SRV=one; path=/" {
		t.Fatalf("101 Set-Cookie %q", got)
	}
	conn.WriteMessage(websocket.TextMessage, []byte("hi"))
	_, msg, err := conn.ReadMessage()
	if err != nil || string(msg) != "echo:hi" {
		t.Fatalf("echo %q, %v", msg, err)
	}
}

// TestRequestBodies streams request bodies of known and unknown length to
// the origin unchanged.
func TestRequestBodies(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", r.Header.Get("Content-Length"))
		w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
		w.Write(b)
	}))
	defer origin.Close()
	ap := netip.MustParseAddrPort(origin.Listener.Addr().String())
	h := newHarness(t, Backend{Name: "b", Servers: []Server{{Name: "s1", Address: ap.Addr().String(), Port: int(ap.Port()), PortSet: true, Weight: 1}}}, nil)
	big := bytes.Repeat([]byte("0123456789"), 100000) // 1 MB
	for _, tc := range []struct {
		name   string
		body   io.Reader
		length int64
		wantTE string
	}{
		{"content-length", bytes.NewReader(big), int64(len(big)), ""},
		{"chunked", io.MultiReader(bytes.NewReader(big[:500000]), bytes.NewReader(big[500000:])), -1, "chunked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.url+"/upload", tc.body)
			req.ContentLength = tc.length
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, big) {
				t.Fatalf("origin got %d bytes back, want %d", len(got), len(big))
			}
			if resp.Header.Get("X-TE") != tc.wantTE {
				t.Fatalf("origin saw Transfer-Encoding %q, want %q", resp.Header.Get("X-TE"), tc.wantTE)
			}
		})
	}
}
