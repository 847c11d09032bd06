package web

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserNavMarksCurrentPage visits every page: exactly one navigation
// link is the current page, by aria-current and by its look.
func TestBrowserNavMarksCurrentPage(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{})
	browserLogin(t, ctx, e, "alice")
	tests := []struct {
		path, want string
	}{
		{"/", "/"},
		{"/backends/servers", "/"},
		{"/backends/servers/servers/s1/drain", "/"},
		{"/backends/nosuch", "/"}, // an error page
		{"/inspect", "/inspect"},
		{"/audit", "/audit"},
		{"/users", "/users"},
	}
	const check = `(() => {
		const links = [...document.querySelectorAll('header nav a')];
		const cur = links.filter(a => a.getAttribute("aria-current") === "page");
		if (cur.length !== 1) return "current links: " + cur.length;
		const look = (a) => { const s = getComputedStyle(a); return s.fontWeight + " " + s.borderBottomColor + " " + s.backgroundColor; };
		const others = links.filter(a => a !== cur[0]);
		if (others.some(a => look(a) === look(cur[0]))) return "the current link looks like the others: " + look(cur[0]);
		if (Number(getComputedStyle(cur[0]).fontWeight) < 700) return "the current link is not bold";
		return cur[0].getAttribute("href");
	})()`
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			navigate(t, ctx, e.console.URL+tt.path)
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](check))
			if err != nil {
				t.Fatalf("check the navigation: %v", err)
			}
			if got != tt.want {
				t.Errorf("on %s: %s, want the link to %s marked current", tt.path, got, tt.want)
			}
		})
	}
}
