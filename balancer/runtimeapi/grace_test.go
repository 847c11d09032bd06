package runtimeapi

import (
	"strings"
	"testing"
	"time"

	"tether/balancer"
)

// TestDynamicCookieGraceCommands checks the grace extensions of the key
// command and the address-grace command: what they change, what they
// refuse, and what show dynamic-cookie-grace and show sticky report.
func TestDynamicCookieGraceCommands(t *testing.T) {
	b, _ := newTestBalancer(t, testCfg)
	d := NewDispatcher(b, DispatcherOptions{})
	for _, tc := range []struct {
		line, reply string
	}{
		{"set dynamic-cookie-key backend be k2 grace 30m", "\n"},
		{"set dynamic-cookie-key backend be k3 grace", "'set dynamic-cookie-key backend <bk> <k> grace' expects a delay such as 30m, 2h or 0.\n\n"},
		{"set dynamic-cookie-key backend be k3 grace 10x", "'set dynamic-cookie-key backend <bk> <k> grace' expects a delay such as 30m, 2h or 0.\n\n"},
		{"set dynamic-cookie-addr-grace backend be 5m", "\n"},
		{"set dynamic-cookie-addr-grace backend be", "'set dynamic-cookie-addr-grace backend <bk>' expects a delay such as 30m, 2h or 0.\n\n"},
		{"set dynamic-cookie-addr-grace backend nope 5m", "No such backend.\n\n"},
		{"set server be/s1 addr 127.0.0.9", "IP changed from '127.0.0.1' to '127.0.0.9' by 'stats socket command'\n\n"},
	} {
		if got := adminExec(d, tc.line); got != tc.reply {
			t.Errorf("%s: reply %q, want %q", tc.line, got, tc.reply)
		}
	}
	be := b.Snapshot().Backend("be")
	if len(be.RetiredKeys) != 1 || be.RetiredKeys[0].Fingerprint != balancer.KeyFingerprint("secret") {
		t.Fatalf("retired keys %+v, want the first key", be.RetiredKeys)
	}
	if be.Config.DynamicCookieAddrGrace != 5*time.Minute {
		t.Fatalf("address grace %v", be.Config.DynamicCookieAddrGrace)
	}
	got := adminExec(d, "show dynamic-cookie-grace be")
	lines := strings.Split(strings.TrimSuffix(got, "\n\n"), "\n")
	if len(lines) != 5 || lines[0] != "1" || lines[2] != "2 be addr-grace 5m - -" ||
		!strings.HasPrefix(lines[3], "2 be key "+balancer.KeyFingerprint("secret")+" ") || !strings.HasSuffix(lines[3], " 1800") ||
		!strings.HasPrefix(lines[4], "2 be addr s1@127.0.0.1:18081 ") || !strings.HasSuffix(lines[4], " 300") {
		t.Fatalf("show dynamic-cookie-grace:\n%s", got)
	}
	// A plain key change is HAProxy's: the retired key is forgotten.
	adminExec(d, "set dynamic-cookie-key backend be k4")
	if be := b.Snapshot().Backend("be"); len(be.RetiredKeys) != 0 {
		t.Fatalf("retired keys %+v after a key change without grace", be.RetiredKeys)
	}
}
