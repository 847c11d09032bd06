package balancer

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzRequestCookies runs arbitrary Cookie lines through the request-side
// persistence parsing of each cookie mode: it must not fail, never lengthen
// a line, leave a line without the cookie name or a spaced '=' untouched,
// and, in insert-indirect mode, forward nothing that routes again.
func FuzzRequestCookies(f *testing.F) {
	for _, seed := range []string{
		"a=1, SRV=w2", "SRV=w2, a=1", "a=1, SRV=w2; b=2,c=3", `x="a;b"; SRV=w2`, `SRV=w2; x="a;SRV=w1"`,
		`x="a\";SRV=w1"; SRV=w2`, "$Version=1; a=1; SRV=w2; $Path=/; b=2", "a = 1; SRV = w2 ; b= 2",
		"flag; SRV=w2; other", ";; SRV=w2;;a=1;", "SRV=w2~abc; SRV=w1|ZVPxA|ZVPxA", "\"SRV=w1",
	} {
		f.Add(seed)
	}
	modes := []*CookieConfig{
		{Name: "SRV", Mode: CookieInsert, Indirect: true},
		{Name: "SRV", Mode: CookiePrefix},
		{Name: "SRV", Mode: CookieInsert, MaxIdle: time.Hour},
	}
	var backends []*backendRT
	for _, ck := range modes {
		bal, err := New(Config{Frontends: []Frontend{{Name: "fe", DefaultBackend: "app"}}, Backends: []Backend{{Name: "app", Cookie: ck, Servers: []Server{
			{Name: "web1", Address: "127.0.0.1", Port: 1, PortSet: true, Weight: 1, Cookie: "w1"},
			{Name: "web2", Address: "127.0.0.2", Port: 1, PortSet: true, Weight: 1, Cookie: "w2"},
		}}}}, Options{})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(bal.Close)
		backends = append(backends, bal.tab.Load().byName["app"])
	}
	f.Fuzz(func(t *testing.T, line string) {
		for i, be := range backends {
			var p persistence
			out, changed := be.ck.scanCookieLine(line, "SRV", be, 1700000000, &p)
			if len(out) > len(line) || (!changed && out != line) {
				t.Fatalf("mode %d: %q became %q (changed %v)", i, line, out, changed)
			}
			if !strings.Contains(line, "SRV") && !spacedEquals(line) {
				r := &http.Request{Header: http.Header{"Cookie": {line}}}
				be.ck.readRequestCookies(r, be, 1700000000)
				if got := r.Header["Cookie"]; strings.TrimSpace(line) != "" && (len(got) != 1 || got[0] != line) {
					t.Fatalf("mode %d: %q without the cookie became %q", i, line, got)
				}
			}
			if i == 0 && changed {
				var q persistence
				be.ck.scanCookieLine(out, "SRV", be, 1700000000, &q)
				if q.server != nil {
					t.Fatalf("insert indirect: %q forwarded %q, which still routes", line, out)
				}
			}
		}
	})
}
