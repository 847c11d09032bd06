package web

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// consoleListener serves the console on addr ("127.0.0.1:0" for any
// port) until stop, which also ends the open websockets as a stopped
// process would.
type consoleListener struct {
	addr string
	hs   *http.Server
	e    *env
}

func listenConsole(t *testing.T, e *env, addr string) *consoleListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen for the console on %s: %v", addr, err)
	}
	c := &consoleListener{addr: ln.Addr().String(), hs: &http.Server{Handler: e.srv, ReadHeaderTimeout: 5 * time.Second}, e: e}
	go func() { _ = c.hs.Serve(ln) }()
	t.Cleanup(c.stop)
	return c
}

func (c *consoleListener) stop() {
	_ = c.hs.Close()
	h := c.e.srv.hub
	h.mu.Lock()
	for cl := range h.clients {
		h.dropLocked(cl, "")
	}
	h.mu.Unlock()
}

// TestBrowserStaleData stops the console's web server under an open
// backend page: the page must grey out its data, disable its actions and
// say so in words, then come back when the server does.
func TestBrowserStaleData(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{})
	for _, n := range []string{"s1", "s2", "s3"} {
		waitFor(t, 5*time.Second, n+" up", func() bool { return e.server(n).StatusText() == "UP" })
	}
	browserLogin(t, ctx, e, "alice") // the session cookie is sent to every port of 127.0.0.1
	srv := listenConsole(t, e, "127.0.0.1:0")
	navigate(t, ctx, "http://"+srv.addr+"/backends/servers")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)

	const (
		actions  = `[...document.querySelectorAll('form.seg button, form.wf button, #dyn-toggle')]`
		rowGrey  = `getComputedStyle(document.querySelector('tr[data-k="s:servers/s1"]')).filter.includes("grayscale")`
		noticeOn = `!document.getElementById("offline").hidden && getComputedStyle(document.getElementById("offline")).display !== "none"`
	)
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](actions+`.length > 5 && `+actions+`.every(b => !b.disabled) && !(`+rowGrey+`) && !(`+noticeOn+`)`))
	if err != nil || !ok {
		t.Fatalf("connected page: actions disabled, rows grey or the notice shown (err %v)", err)
	}

	srv.stop()
	poll(t, ctx, "actions disabled", `document.body.classList.contains("offline") && `+actions+`.every(b => b.disabled)`)
	poll(t, ctx, "rows greyed out", `document.body.classList.contains("stale") && `+rowGrey)
	poll(t, ctx, "the header says so", noticeOn+` && /^Disconnected — data from \d+s ago; actions disabled until the connection is back$/.test(document.getElementById("offline").textContent)`)
	// A submission by keyboard or script is refused too.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('form.seg').requestSubmit()`)); err != nil {
		t.Fatalf("submit while offline: %v", err)
	}
	poll(t, ctx, "refusal toast", `[...document.querySelectorAll(".toast.err")].some(t => t.textContent.includes("disconnected"))`)
	if adminMode(e.server("s1")) != "ready" {
		t.Fatalf("a form was sent while offline")
	}

	listenConsole(t, e, srv.addr)
	poll(t, ctx, "live again", `document.getElementById("live").dataset.state === "live"`)
	poll(t, ctx, "everything back", `!document.body.classList.contains("offline") && !document.body.classList.contains("stale") && `+
		actions+`.every(b => !b.disabled) && !(`+rowGrey+`) && document.getElementById("offline").hidden`)
}

// TestBrowserStaleKeepsViewerLimits checks that coming back from offline
// does not enable what the role never allowed.
func TestBrowserStaleKeepsViewerLimits(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{})
	browserLogin(t, ctx, e, "victor")
	srv := listenConsole(t, e, "127.0.0.1:0")
	navigate(t, ctx, "http://"+srv.addr+"/backends/servers")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
	srv.stop()
	poll(t, ctx, "offline", `document.body.classList.contains("offline")`)
	listenConsole(t, e, srv.addr)
	poll(t, ctx, "back", `document.getElementById("live").dataset.state === "live" && !document.body.classList.contains("offline")`)
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelectorAll('form.seg button').length > 0 && [...document.querySelectorAll('form.seg button, #dyn-toggle')].every(b => b.disabled)`))
	if err != nil || !ok {
		t.Fatalf("a viewer's buttons were enabled after reconnecting (err %v)", err)
	}
}
