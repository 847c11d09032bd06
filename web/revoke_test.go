package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"tether/store"
)

// readClose reads from conn until it is closed and returns the close frame.
func readClose(t *testing.T, conn *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("websocket ended without a close frame: %v", err)
			}
			return ce
		}
	}
}

func TestRevocationClosesWebsockets(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(e *env, olga *http.Client)
		reason string
	}{
		{"logout", func(e *env, olga *http.Client) { e.post(olga, "/logout", nil) }, "signed out"},
		{"demotion", func(e *env, _ *http.Client) {
			e.post(e.login("alice"), "/users/olga/role", url.Values{"role": {"viewer"}})
		}, "role changed"},
		{"password change", func(e *env, _ *http.Client) {
			e.post(e.login("alice"), "/users/olga/password", url.Values{"password": {"olga-new-plum-orbit"}})
		}, "password changed"},
		{"deletion", func(e *env, _ *http.Client) { e.post(e.login("alice"), "/users/Olga/delete", nil) }, "user deleted"},
		{"change by another process", func(e *env, _ *http.Client) {
			if err := e.st.SetUserRole(context.Background(), "olga", store.RoleViewer); err != nil {
				t.Fatal(err)
			}
		}, "session ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Changes through the console close at once; others are
			// found by the periodic check.
			check := time.Hour
			if tt.reason == "session ended" {
				check = 50 * time.Millisecond
			}
			e := newEnv(t, Options{SessionCheck: check})
			olga := e.login("olga")
			conn, _, err := e.dialWS(t, olga, e.console.URL)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			readMsg(t, conn) // the full state
			other := e.login("victor")
			keep, _, err := e.dialWS(t, other, e.console.URL)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			readMsg(t, keep)

			tt.revoke(e, olga)
			ce := readClose(t, conn)
			if ce.Code != CloseSessionEnded || ce.Text != tt.reason {
				t.Errorf("close frame %d %q, want %d %q", ce.Code, ce.Text, CloseSessionEnded, tt.reason)
			}
			if res, _, _ := e.get(olga, "/"); res.StatusCode != http.StatusSeeOther {
				t.Errorf("olga's old session still works: GET / gives %d", res.StatusCode)
			}
			if _, res, err := e.dialWS(t, olga, e.console.URL); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
				t.Errorf("olga's old session reopens the websocket: %v", err)
			}
			// Another user's connection stays open.
			waitFor(t, 5*time.Second, "the hub to forget olga", func() bool { return e.srv.hub.Clients() == 1 })
			readMsg(t, keep)
		})
	}
}

func TestLogoutClosesOnlyThatSession(t *testing.T) {
	e := newEnv(t, Options{})
	laptop, phone := e.login("olga"), e.login("olga")
	a, _, err := e.dialWS(t, laptop, e.console.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := e.dialWS(t, phone, e.console.URL)
	if err != nil {
		t.Fatal(err)
	}
	readMsg(t, a)
	readMsg(t, b)
	e.post(laptop, "/logout", nil)
	if ce := readClose(t, a); ce.Code != CloseSessionEnded {
		t.Errorf("logged-out websocket closed with %d, want %d", ce.Code, CloseSessionEnded)
	}
	waitFor(t, 5*time.Second, "one console left", func() bool { return e.srv.hub.Clients() == 1 })
	readMsg(t, b)
	if res, _, _ := e.get(phone, "/"); res.StatusCode != http.StatusOK {
		t.Errorf("the other session of the same user: GET / gives %d, want 200", res.StatusCode)
	}
}
