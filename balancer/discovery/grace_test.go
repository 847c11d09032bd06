package discovery

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"tether/balancer"
)

// TestDNSChangeKeepsCookieWithGrace resolves a server-template slot to an
// address, then to another one, on a backend with an address grace: the
// cookie of the first address still leads to the slot, is re-issued, and
// is invalid once the window ends.
func TestDNSChangeKeepsCookieWithGrace(t *testing.T) {
	d := startDNS(t)
	d.set(svc, "A 127.0.0.13")
	cfg := templateConfig(fastResolvers("mydns", ns(d.Addr)), svc, 1, balancer.Server{Port: 80, PortSet: true})
	cfg.Backends[0].Cookie = &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert, Indirect: true, Dynamic: true}
	cfg.Backends[0].DynamicCookieKey = "dynckey"
	cfg.Backends[0].DynamicCookieAddrGrace = time.Hour
	b, _ := startReal(t, cfg)
	waitFor(t, 5*time.Second, "first resolution", func() (bool, string) {
		got := addrsOf(b.Snapshot(), "b")
		return got["web1"] == "127.0.0.13:80", fmt.Sprint(got)
	})
	d.set(svc, "A 127.0.0.14")
	waitFor(t, 5*time.Second, "re-resolution", func() (bool, string) {
		got := addrsOf(b.Snapshot(), "b")
		return got["web1"] == "127.0.0.14:80", fmt.Sprint(got)
	})
	old := balancer.DynamicCookie("dynckey", netip.MustParseAddr("127.0.0.13"), 80)
	cur := balancer.DynamicCookie("dynckey", netip.MustParseAddr("127.0.0.14"), 80)
	e, err := b.Explain("b", "SRV="+old, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if e.Named != "web1" || !e.OldAddress || e.OldKey || e.Route != balancer.RouteCookie || e.Targets[0].SetCookie != "SRV="+cur+"; path=/" {
		t.Fatalf("old-address cookie in the window: %+v", e)
	}
	if e, _ = b.Explain("b", "SRV="+old, time.Now().Add(2*time.Hour)); e.Verdict != balancer.VerdictUnknown {
		t.Fatalf("old-address cookie after the window: verdict %v", e.Verdict)
	}
}
