package haproxycfg

import (
	"bytes"
	"strings"
	"testing"

	"tether/balancer"
)

// TestWriteLeavesOutUnwritableKey checks that a dynamic-cookie key with a
// NUL byte (which a database may hold from before such keys were refused)
// is left out of the configuration written, which still loads, and that
// other control bytes are written escaped and read back the same.
func TestWriteLeavesOutUnwritableKey(t *testing.T) {
	for _, tt := range []struct {
		key      balancer.Secret
		writable bool
	}{
		{"plain", true},
		{"with\r\nline\tends", true},
		{"with\x00nul", false},
	} {
		cfg := balancer.Config{Backends: []balancer.Backend{{
			Name: "b", DynamicCookieKey: tt.key,
			Cookie:  &balancer.CookieConfig{Name: "S", Mode: balancer.CookieInsert, Dynamic: true},
			Servers: []balancer.Server{{Name: "s", Address: "127.0.0.1", Port: 80, PortSet: true, Weight: 1}},
		}}}
		if got := KeyWritable(tt.key); got != tt.writable {
			t.Errorf("KeyWritable(%q) = %v", tt.key.Reveal(), got)
		}
		var b bytes.Buffer
		if err := Write(&b, cfg); err != nil {
			t.Fatalf("key %q: %v", tt.key.Reveal(), err)
		}
		back, _, err := Parse("written.cfg", b.Bytes())
		if err != nil {
			t.Fatalf("key %q: the written configuration does not load: %v\n%s", tt.key.Reveal(), err, b.String())
		}
		got := back.Backends[0].DynamicCookieKey
		switch {
		case tt.writable && got != tt.key:
			t.Errorf("key %q read back as %q", tt.key.Reveal(), got.Reveal())
		case !tt.writable && (got != "" || strings.Contains(b.String(), "dynamic-cookie-key")):
			t.Errorf("key %q written:\n%s", tt.key.Reveal(), b.String())
		}
	}
}
