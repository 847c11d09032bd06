package web

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"tether/balancer"
)

// TestBrowserInspectorShowsWholeCookieLine inspects a cookie with dates on
// a backend with a long cookie line: the page shows the backend's whole
// cookie line and the whole Set-Cookie line the response gets, every
// attribute included, inside the window at desktop and phone widths.
func TestBrowserInspectorShowsWholeCookieLine(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{})
	line := "set cookie backend servers SERVERID insert indirect nocache httponly secure dynamic domain .console-test.example.com maxidle 30m maxlife 8h attr SameSite=Lax"
	if reply := e.disp.Execute(context.Background(), line, balancer.LevelAdmin, balancer.Origin{Channel: "test"}); reply != "\n" {
		t.Fatalf("%s: %q", line, reply)
	}
	waitFor(t, 5*time.Second, "s1 up", func() bool { return e.server("s1").StatusText() == "UP" })
	browserLogin(t, ctx, e, "olga")
	first := encodeCookieDate(time.Now().Add(-time.Minute))
	s1 := e.server("s1").Cookie
	wantLine := regexp.MustCompile(`^Set-Cookie: SERVERID=` + s1 + `\|[A-Za-z0-9+/]{5}\|` + regexp.QuoteMeta(first) +
		`; path=/; domain=\.console-test\.example\.com; HttpOnly; Secure; SameSite=Lax$`)
	const wantCookieLine = "cookie SERVERID insert indirect nocache httponly secure dynamic domain .console-test.example.com maxidle 30m maxlife 8h attr SameSite=Lax"

	// within reports, for every cookie line of the result, whether all its
	// boxes lie inside the window, and whether the result panel scrolls.
	const within = `(() => {
		const w = document.documentElement.clientWidth, out = [];
		const panel = document.querySelector(".result");
		if (!panel) return "no result";
		if (panel.scrollWidth > panel.clientWidth) return "the result scrolls sideways: " + panel.scrollWidth + " > " + panel.clientWidth;
		for (const el of panel.querySelectorAll("code.cookie-line")) {
			for (const r of el.getClientRects()) {
				if (r.left < 0 || r.right > w + 0.5) return "cut off: " + el.textContent;
			}
		}
		return "";
	})()`
	for _, width := range []int64{1440, 390} {
		t.Run(fmt.Sprintf("%dpx", width), func(t *testing.T) {
			if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1, Mobile: width < 500}); err != nil {
				t.Fatalf("set width %d: %v", width, err)
			}
			navigate(t, ctx, e.console.URL+"/inspect?cookie="+url.QueryEscape(s1+"|"+first+"|"+first))
			lines, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".result code.cookie-line")].map(c => c.innerText)`))
			if err != nil {
				t.Fatalf("read cookie lines: %v", err)
			}
			var sawCookieLine, sawSetCookie bool
			for _, l := range lines {
				sawCookieLine = sawCookieLine || l == wantCookieLine
				sawSetCookie = sawSetCookie || wantLine.MatchString(l)
			}
			if !sawCookieLine || !sawSetCookie {
				t.Fatalf("at %d px the inspector shows %q; want the cookie line %q and a Set-Cookie line matching %s", width, lines, wantCookieLine, wantLine)
			}
			problem, err := chromedp.Run(ctx, chromedp.Evaluate[string](within))
			if err != nil {
				t.Fatalf("measure: %v", err)
			}
			if problem != "" {
				t.Errorf("at %d px: %s", width, problem)
			}
		})
	}
}
