package web

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// wideConfig is a backend of ten servers, five of them the slots of a
// server-template resolved by DNS, with every column of the server table
// in use.
const wideConfig = `
resolvers dns
    nameserver ns1 127.0.0.1:1053

frontend fe
    bind 127.0.0.1:8080
    default_backend servers

backend servers
    balance roundrobin
    cookie SERVERID insert indirect nocache dynamic maxidle 30m maxlife 8h domain .example.com
    dynamic-cookie-key s3cr3t-key
    option httpchk GET /
    server s1 127.0.0.1:%[1]s check inter 100ms fall 2 rise 2
    server s2 127.0.0.1:%[2]s check inter 100ms fall 2 rise 2
    server s3 127.0.0.1:%[3]s check inter 100ms fall 2 rise 2
    server api-eu-west-1a 127.0.0.2:%[1]s check inter 100ms fall 2 rise 2 weight 200
    server api-eu-west-1b 127.0.0.3:%[2]s check inter 100ms fall 2 rise 2 weight 200
    server-template web 1-5 _http._tcp.app.internal resolvers dns init-addr none check
`

// layoutViewports are the widths every page must fit without horizontal
// scrolling: a laptop and a phone.
var layoutViewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{
	{"1440", 1440, 900, false},
	{"390", 390, 844, true},
}

// overflowCheck returns "" when the page does not scroll sideways in a
// window of width W, else what sticks out. A phone widens its layout
// viewport to fit wide content, so window.innerWidth is checked against W
// too. At desktop width the server and audit tables must show whole, without
// their own scroll bar.
const overflowCheck = `((W) => {
	const de = document.documentElement;
	if (de.scrollWidth > window.innerWidth || window.innerWidth > W) {
		const out = (e) => e.getBoundingClientRect().right > W + 1;
		const wide = [...document.querySelectorAll("body *")].filter(e => out(e) && !out(e.parentElement))
			.map(e => e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : "")).slice(0, 6);
		return "page is " + de.scrollWidth + " px wide in a " + window.innerWidth + " px window: " + wide.join(", ");
	}
	if (window.innerWidth >= 1200) {
		for (const s of document.querySelectorAll("main .scroll")) {
			if (s.scrollWidth > s.clientWidth + 1) return "a table scrolls sideways: " + s.scrollWidth + " > " + s.clientWidth + " (" + (s.querySelector("table") || s).className + ")";
		}
	}
	return "";
})`

// TestBrowserLayoutFits visits every page as an admin and as a viewer, at
// 1440 and 390 px: none scrolls sideways.
func TestBrowserLayoutFits(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnvConfig(t, wideConfig, Options{Socat: "/run/tether/admin.sock"})
	waitFor(t, 5*time.Second, "s1 up", func() bool { return e.server("s1").StatusText() == "UP" })
	// Audit entries with long before → after values.
	c := e.login("alice")
	e.post(c, "/backends/servers/cookie", url.Values{"name": {"SERVERID"}, "mode": {"insert"}, "indirect": {"1"}, "nocache": {"1"}, "dynamic": {"1"},
		"httponly": {"1"}, "secure": {"1"}, "domain": {".example.com .example.org .example.net"}, "maxidle": {"30m"}, "maxlife": {"8h"}, "attr": {"SameSite=Lax"}})
	e.post(c, "/backends/servers/servers/api-eu-west-1b/weight", url.Values{"weight": {"150"}})
	e.post(c, "/backends/servers/servers/web3/state", url.Values{"state": {"drain"}})

	pages := map[string][]string{
		"alice":  {"/", "/backends/servers", "/backends/servers/servers/api-eu-west-1a/drain", "/audit", "/users", "/inspect", "/inspect?cookie=" + url.QueryEscape(e.server("s1").Cookie), "/backends/nosuch"},
		"victor": {"/", "/backends/servers", "/backends/servers/servers/web1/drain", "/audit", "/inspect", "/users"},
	}
	shots := os.Getenv("TETHER_LAYOUT_SHOTS") // a directory: write what each check saw
	for _, vp := range layoutViewports {
		t.Run(vp.name, func(t *testing.T) {
			opts := []chromedp.EmulateViewportOption{}
			if vp.mobile {
				opts = append(opts, chromedp.EmulateMobile)
			}
			check := func(t *testing.T, ctx context.Context, name, path string) {
				t.Helper()
				navigate(t, ctx, e.console.URL+path)
				got, err := chromedp.Run(ctx, chromedp.Evaluate[string](overflowCheck+"("+strconv.FormatInt(vp.width, 10)+")"))
				if err != nil {
					t.Fatalf("measure %s: %v", path, err)
				}
				if got != "" {
					t.Errorf("%s as %s at %s px: %s", path, name, vp.name, got)
					widths, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("table.srv thead tr:last-child th")].map(th => th.textContent.trim()+"="+Math.round(th.getBoundingClientRect().width)).join(" ")`))
					t.Logf("server table column widths: %s", widths)
				}
				if shots != "" {
					png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
					if err == nil {
						_ = os.WriteFile(filepath.Join(shots, vp.name+"-"+name+strings.NewReplacer("/", "_", "?", "_", "=", "_").Replace(path)+".png"), png, 0o644)
					}
				}
			}
			anon := tab(t, ctx, true)
			if err := chromedp.Do(anon, chromedp.EmulateViewport(vp.width, vp.height, opts...)); err != nil {
				t.Fatalf("set the viewport: %v", err)
			}
			check(t, anon, "anonymous", "/login")
			for _, name := range []string{"alice", "victor"} {
				u := tab(t, ctx, true)
				if err := chromedp.Do(u, chromedp.EmulateViewport(vp.width, vp.height, opts...)); err != nil {
					t.Fatalf("set the viewport: %v", err)
				}
				browserLogin(t, u, e, name)
				for _, p := range pages[name] {
					check(t, u, name, p)
				}
			}
		})
	}
}
