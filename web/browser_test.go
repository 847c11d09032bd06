package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"tether/balancer"
	"tether/balancer/e2etest"
)

// newBrowser starts Debian's chromium headless; it skips the test when
// chromium is missing unless TETHER_E2E=require. Dialogs (the console's
// confirmations) are accepted.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	path := e2etest.RequireProgram(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1500, 1000),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	acceptDialogs(ctx)
	return ctx
}

// tab opens another tab (sharing cookies unless isolated) that accepts
// dialogs.
func tab(t *testing.T, parent context.Context, isolated bool) context.Context {
	t.Helper()
	var opts []chromedp.ContextOption
	if isolated {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	acceptDialogs(ctx)
	return ctx
}

func acceptDialogs(ctx context.Context) {
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}()
}

// browserLogin signs in through the login form.
func browserLogin(t *testing.T, ctx context.Context, e *env, name string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(e.console.URL+"/login"),
		chromedp.SendKeys(`input[name="name"]`, name),
		chromedp.SendKeys(`input[name="password"]`, testPassword(name)),
	)
	if err != nil {
		t.Fatalf("fill login form: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(`form[action="/login"] button`))); err != nil {
		t.Fatalf("submit login form: %v", err)
	}
	poll(t, ctx, "signed in as "+name, `document.querySelector(".who") && document.querySelector(".who").textContent.startsWith(`+jsString(name)+`)`)
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// poll waits until the JavaScript predicate holds in the page.
func poll(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
}

func TestBrowserConsole(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{Socat: "/run/tether/admin.sock"})
	for _, n := range []string{"s1", "s2", "s3"} {
		waitFor(t, 5*time.Second, n+" up", func() bool { return e.server(n).StatusText() == "UP" })
	}
	browserLogin(t, ctx, e, "alice")

	t.Run("live indicator", func(t *testing.T) {
		navigate(t, ctx, e.console.URL+"/")
		poll(t, ctx, "live dot", `document.getElementById("live").dataset.state === "live"`)
	})

	t.Run("reconnects after the connection drops", func(t *testing.T) {
		waitFor(t, 5*time.Second, "page connected", func() bool { return e.srv.Hub().Clients() == 1 })
		h := e.srv.hub
		h.mu.Lock()
		for c := range h.clients {
			h.dropLocked(c, "test")
		}
		h.mu.Unlock()
		poll(t, ctx, "page notices", `document.getElementById("live").dataset.state !== "live"`)
		waitFor(t, 10*time.Second, "page reconnected", func() bool { return e.srv.Hub().Clients() == 1 })
		poll(t, ctx, "live again", `document.getElementById("live").dataset.state === "live"`)
	})

	moved := startOrigin(t, "s3-moved")
	t.Run("change address shows the new cookie first", func(t *testing.T) {
		port, err := strconv.Atoi(moved.port())
		if err != nil {
			t.Fatal(err)
		}
		want := balancer.DynamicCookie(testKey, netip.MustParseAddr("127.0.0.1"), int32(port))
		old := e.server("s3").Cookie
		if want == old || old == "" {
			t.Fatalf("s3's cookie %q and the new one %q must differ", old, want)
		}
		navigate(t, ctx, e.console.URL+"/backends/servers")
		poll(t, ctx, "backend page live", `document.getElementById("live").dataset.state === "live"`)
		form := `form.addr[data-server="s3"]`
		cell := `document.querySelector('section[aria-labelledby="dyn-title"] tr[data-k="s:servers/s3"] [data-f="ck"]').textContent`
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(form+` input[name="addr"]`, "127.0.0.1"),
			chromedp.SendKeys(form+` input[name="port"]`, moved.port()),
		); err != nil {
			t.Fatalf("type the new address: %v", err)
		}
		poll(t, ctx, "preview of the new cookie", `document.querySelector('`+form+` output.preview').dataset.cookie === `+jsString(want)+
			` && document.querySelector('`+form+` output.preview').textContent.includes("now `+old+`")`)
		poll(t, ctx, "confirmation names the new cookie", `document.querySelector('`+form+` button[value="apply"]').dataset.confirm.includes(`+jsString(want)+`)`)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cell+` === `+jsString(old)+` && getComputedStyle(document.querySelector('`+form+` button[value="preview"]')).display === "none"`))
		if err != nil || !ok {
			t.Fatalf("before the change: cookie cell not %q, or the no-JS Preview button shows (err %v)", old, err)
		}
		if e.server("s3").Cookie != old {
			t.Fatalf("the preview changed s3")
		}
		if err := chromedp.Do(ctx, chromedp.Click(form+` button[value="apply"]`)); err != nil {
			t.Fatalf("click Change: %v", err)
		}
		poll(t, ctx, "cookie cell shows the new cookie", cell+` === `+jsString(want))
		poll(t, ctx, "toast shows the command", `[...document.querySelectorAll(".toast code")].some(c => c.textContent === "set server servers/s3 addr 127.0.0.1 port `+moved.port()+`")`)
		if s := e.server("s3"); s.Cookie != want || s.Config.Port != port {
			t.Fatalf("balancer: s3 at port %d with cookie %q, want %d and %q", s.Config.Port, s.Cookie, port, want)
		}
	})

	t.Run("disable dynamic cookies", func(t *testing.T) {
		other := tab(t, ctx, false)
		navigate(t, other, e.console.URL+"/")
		poll(t, other, "second page live", `document.getElementById("live").dataset.state === "live"`)
		if err := chromedp.Do(other, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
			t.Fatal(err)
		}

		navigate(t, ctx, e.console.URL+"/backends/servers")
		poll(t, ctx, "backend page live", `document.getElementById("live").dataset.state === "live"`)
		if err := chromedp.Do(ctx, chromedp.Click(`#dyn-toggle`)); err != nil {
			t.Fatalf("click disable: %v", err)
		}
		poll(t, ctx, "button flips", `document.getElementById("dyn-toggle").textContent.trim() === "Enable dynamic cookies"`)
		poll(t, ctx, "toast shows the command", `[...document.querySelectorAll(".toast code")].some(c => c.textContent === "disable dynamic-cookie backend servers")`)
		if e.bal.Snapshot().Backend("servers").DynamicCookies() {
			t.Fatalf("balancer still has dynamic cookies on")
		}
		res, err := http.Get(e.frontend.URL + "/")
		if err != nil {
			t.Fatalf("request through the frontend: %v", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if sc := res.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "SERVERID=; Expires=Thu, 01-Jan-1970 00:00:01 GMT") {
			t.Errorf("next response carries Set-Cookie %q, want the deletion cookie", sc)
		}
		poll(t, other, "second page shows OFF", `document.querySelector('[data-k="b:servers"] .badge').textContent === "OFF"`)
		ok, err := chromedp.Run(other, chromedp.Evaluate[bool](`window.notReloaded === true`))
		if err != nil || !ok {
			t.Errorf("second page was reloaded (err %v)", err)
		}
	})

	t.Run("origin stops, row turns down", func(t *testing.T) {
		navigate(t, ctx, e.console.URL+"/")
		poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
		e.origins[1].stop()
		poll(t, ctx, "s2 row down", `document.querySelector('tr[data-k="s:servers/s2"]').dataset.st === "down"`)
		poll(t, ctx, "s2 status text", `document.querySelector('tr[data-k="s:servers/s2"] [data-f="st"]').textContent.startsWith("DOWN")`)
	})

	t.Run("drain counts down", func(t *testing.T) {
		navigate(t, ctx, e.console.URL+"/backends/servers/servers/s1/drain")
		poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
		if err := chromedp.Do(ctx, chromedp.Click(`form.seg button[value="drain"]`)); err != nil {
			t.Fatalf("click drain: %v", err)
		}
		poll(t, ctx, "status DRAIN", `document.getElementById("drain-st").textContent.startsWith("DRAIN")`)
		poll(t, ctx, "sessions at zero", `document.getElementById("drain-cur").textContent === "0"`)
		if adminMode(e.server("s1")) != "drain" {
			t.Errorf("s1 not drained in the balancer")
		}
	})

	t.Run("audit log updates live", func(t *testing.T) {
		navigate(t, ctx, e.console.URL+"/audit")
		poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
		e.disp.Execute(context.Background(), "set server servers/s3 weight 3", balancer.LevelAdmin, balancer.Origin{Channel: "socket", Source: "/run/tether/admin.sock"})
		poll(t, ctx, "socket change listed", `document.getElementById("audit-rows").textContent.includes("set server servers/s3 weight 3")`)
	})

	t.Run("viewer cannot press admin buttons", func(t *testing.T) {
		v := tab(t, ctx, true)
		browserLogin(t, v, e, "victor")
		navigate(t, v, e.console.URL+"/backends/servers")
		ok, err := chromedp.Run(v, chromedp.Evaluate[bool](`[...document.querySelectorAll('form.seg button, #dyn-toggle')].every(b => b.disabled) && document.querySelectorAll('form.seg button').length > 0`))
		if err != nil || !ok {
			t.Fatalf("admin buttons enabled for a viewer (err %v)", err)
		}
		status, err := chromedp.Run(v, chromedp.Evaluate[int](`fetch("/backends/servers/servers/s3/state", {method: "POST", body: new URLSearchParams({state: "maint"}), headers: {Accept: "application/json"}}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		if err != nil || status != http.StatusForbidden {
			t.Fatalf("viewer's scripted POST: status %d (err %v), want 403", status, err)
		}
		if adminMode(e.server("s3")) != "ready" {
			t.Fatalf("viewer changed s3")
		}
	})

	t.Run("forged cross-site POST refused", func(t *testing.T) {
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<form id="f" method="post" action="%s/backends/servers/servers/s3/state"><input name="state" value="maint"></form><script>document.getElementById("f").submit()</script>`, e.console.URL)
		}))
		defer evil.Close()
		navigate(t, ctx, evil.URL)
		poll(t, ctx, "refusal page", `location.href.startsWith(`+jsString(e.console.URL)+`) && document.body.innerText.includes("cross-origin request refused")`)
		if adminMode(e.server("s3")) != "ready" {
			t.Fatalf("forged POST put s3 in maintenance")
		}
	})
}

// TestBrowserScreenshot writes a screenshot of the overview, with traffic,
// to the path in TETHER_SCREENSHOT, and next to it the backend page
// (NAME-backend.png) and the overview in dark mode (NAME-dark.png).
func TestBrowserScreenshot(t *testing.T) {
	out := os.Getenv("TETHER_SCREENSHOT")
	if out == "" {
		t.Skip("set TETHER_SCREENSHOT=path to write a screenshot of the overview")
	}
	ctx := newBrowser(t)
	e := newEnv(t, Options{Socat: "/run/tether/admin.sock"})
	for _, n := range []string{"s1", "s2", "s3"} {
		waitFor(t, 5*time.Second, n+" up", func() bool { return e.server(n).StatusText() == "UP" })
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		clients := make([]*http.Client, 12)
		for i := range clients {
			jar, _ := cookiejar.New(nil)
			clients[i] = &http.Client{Jar: jar, Timeout: 2 * time.Second}
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			c := clients[i%len(clients)]
			if i%7 == 0 {
				c = http.DefaultClient
			}
			path := "/"
			if i%23 == 0 {
				path = "/missing"
			}
			if res, err := c.Get(e.frontend.URL + path); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	c := e.login("alice")
	e.post(c, "/backends/servers/servers/s3/state", map[string][]string{"state": {"drain"}})
	browserLogin(t, ctx, e, "alice")
	navigate(t, ctx, e.console.URL+"/")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
	waitFor(t, 10*time.Second, "some traffic", func() bool { return e.server("s1").Stats.TotalSessions > 40 })
	time.Sleep(3 * time.Second) // let sparklines fill: this is a picture, not a synchronisation
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))

	// The backend page goes next to it, as NAME-backend.png.
	navigate(t, ctx, e.console.URL+"/backends/servers")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	back := strings.TrimSuffix(out, ".png") + "-backend.png"
	if err := os.WriteFile(back, png, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}

	// And the overview in dark mode, as NAME-dark.png.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatalf("emulate dark mode: %v", err)
	}
	navigate(t, ctx, e.console.URL+"/")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(strings.TrimSuffix(out, ".png")+"-dark.png", png, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
}
