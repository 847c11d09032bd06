package balancer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyRules keeps the layout of DESIGN.md: the data plane stays
// free of web, template and database code, and lower layers never import
// the console.
func TestDependencyRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{"tether/balancer", []string{"github.com/go-chi/", "github.com/a-h/templ", "modernc.org/sqlite", "github.com/gorilla/websocket", "tether/store", "tether/web", "github.com/miekg/dns"}},
		{"tether/balancer/haproxycfg", []string{"github.com/go-chi/", "modernc.org/sqlite", "tether/store", "tether/web"}},
		{"tether/balancer/runtimeapi", []string{"github.com/go-chi/", "modernc.org/sqlite", "tether/store", "tether/web"}},
		{"tether/balancer/discovery", []string{"github.com/go-chi/", "modernc.org/sqlite", "tether/store", "tether/web"}},
		{"tether/balancer/frontdoor", []string{"github.com/go-chi/", "modernc.org/sqlite", "tether/store", "tether/web", "github.com/miekg/dns"}},
		// connlimit is a listener wrapper: the standard library only.
		{"tether/balancer/connlimit", []string{"tether/store", "tether/web", "tether/balancer/runtimeapi", "github.com/", "golang.org/", "modernc.org/"}},
		// tlsbind builds crypto/tls configurations from balancer values: nothing else.
		{"tether/balancer/tlsbind", []string{"tether/store", "tether/web", "tether/balancer/runtimeapi", "github.com/go-chi/", "github.com/a-h/", "golang.org/", "modernc.org/"}},
		// sockio is the proxy's socket I/O: the standard library only.
		{"tether/balancer/sockio", []string{"tether/store", "tether/web", "tether/balancer/frontdoor", "github.com/", "golang.org/", "modernc.org/"}},
		// rules is evaluated per request: the standard library only.
		{"tether/balancer/rules", []string{"tether/store", "tether/web", "tether/balancer/runtimeapi", "github.com/", "golang.org/", "modernc.org/"}},
		{"tether/store", []string{"tether/web", "tether/templates", "github.com/go-chi/"}},
		{"tether/templates", []string{"tether/web", "tether/store", "modernc.org/sqlite"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", r.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range r.forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s", r.pkg, dep)
				}
			}
		}
	}
}
