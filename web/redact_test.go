package web

import (
	"context"
	"strings"
	"testing"

	"tether/balancer"
)

func TestRedactForViewer(t *testing.T) {
	tests := []struct{ in, want string }{
		{"set server servers/s1 addr 10.0.0.5 port 8080", "set server servers/s1 addr ‹hidden› port 8080"},
		{"add server servers/s4 10.0.0.4:80 cookie s4", "add server servers/s4 ‹hidden› cookie ‹hidden›"},
		{"address 10.0.0.1:80 → 10.0.0.2:80", "address ‹hidden› → ‹hidden›"},
		{"add server b/s [2001:db8::1]:80", "add server b/s ‹hidden›"},
		{"address 2001:db8::7 → fe80::1", "address ‹hidden› → ‹hidden›"},
		{"cookie a1 → b2", "cookie ‹hidden› → ‹hidden›"},
		{"set cookie backend servers SRV insert indirect", "set cookie backend servers SRV insert indirect"},
		{"set server servers/s1 state drain", "set server servers/s1 state drain"},
		{"set weight servers/s2 50", "set weight servers/s2 50"},
		{"dynamic cookie key of backend b set (fingerprint 3f2a9c)", "dynamic cookie key of backend b set (fingerprint 3f2a9c)"},
	}
	for _, tt := range tests {
		if got := redactForViewer(tt.in); got != tt.want {
			t.Errorf("redactForViewer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAuditPageHidesAddressesFromViewers(t *testing.T) {
	e := newEnv(t, Options{})
	origin := balancer.Origin{Channel: "socket", Source: "/run/tether.sock"}
	out := e.disp.Execute(context.Background(), "set server servers/s1 addr 127.0.0.9 port 8081", balancer.LevelAdmin, origin)
	if strings.TrimSpace(out) == "" || strings.Contains(out, "No such") {
		t.Fatalf("set server addr: %q", out)
	}
	_, _, page := e.get(e.login("victor"), "/audit")
	if strings.Contains(page, "127.0.0.9") || !strings.Contains(page, "set server servers/s1 addr ‹hidden› port 8081") {
		t.Errorf("a viewer's audit page shows the address, or not the redacted command")
	}
	_, _, page = e.get(e.login("olga"), "/audit")
	if !strings.Contains(page, "127.0.0.9") {
		t.Errorf("an operator's audit page lacks the address")
	}
}

// TestInspectorLinkOnlyForOperators: viewers may not open the cookie
// inspector (it shows cookie values), so their nav does not offer it.
func TestInspectorLinkOnlyForOperators(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		user string
		want bool
	}{{"victor", false}, {"olga", true}, {"alice", true}} {
		_, _, page := e.get(e.login(tc.user), "/")
		if got := strings.Contains(page, `href="/inspect"`); got != tc.want {
			t.Errorf("%s: inspector link shown = %v, want %v", tc.user, got, tc.want)
		}
	}
}
