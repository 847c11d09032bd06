package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"tether/balancer/e2etest"
	"tether/store/pgtest"
)

// startFleetConsole runs "tether serve" as one node of the fleet on url
// with a console, until the test ends, and returns the node and its
// console's URL.
func startFleetConsole(t *testing.T, url string, f fixture, name, password string, withFile bool) (fleetMember, string) {
	t.Helper()
	m := fleetMember{name: name, sock: filepath.Join(f.dir, name+".sock"), frontend: freeAddr(t)}
	console := freeAddr(t)
	args := []string{"serve", "-db", url, "-node", name, "-stats-socket", m.sock, "-bind", "fe=" + m.frontend, "-console", console}
	if withFile {
		args = append(args, "-f", f.cfg)
	}
	getenv := func(k string) string {
		if k == "TETHER_ADMIN_PASSWORD" {
			return password
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs e2etest.Buffer
	go func() { done <- run(ctx, args, getenv, nil, io.Discard, &logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("node %s's log:\n%s", name, logs.String())
		}
	})
	waitSocket(t, m.sock, done)
	// The console serves once the first admin user exists.
	waitFor(t, "node "+name+"'s console", func() bool {
		res, err := http.Get("http://" + console + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	})
	return m, "http://" + console
}

// TestFleetConsoleBrowser opens the consoles of two nodes sharing one
// PostgreSQL database: both list the two nodes, show the backend's
// counters summed over the nodes, and a change clicked in node a's console
// appears in node b's open page over its websocket, without a reload.
func TestFleetConsoleBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL and chromium")
	}
	chromium := e2etest.RequireProgram(t, "chromium")
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	const password = "fleet-console-quartz"
	a, consoleA := startFleetConsole(t, url, f, "a", password, true)
	b, consoleB := startFleetConsole(t, url, f, "b", password, false)

	// Requests through both nodes: 3 on a, 2 on b.
	for range 3 {
		get(t, a.frontend, "")
	}
	for range 2 {
		get(t, b.frontend, "")
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1500, 1000))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	open := func(console string) context.Context {
		ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
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
		err := chromedp.Do(ctx,
			chromedp.Navigate(console+"/login"),
			chromedp.SendKeys(`input[name="name"]`, "admin"),
			chromedp.SendKeys(`input[name="password"]`, password),
		)
		if err != nil {
			t.Fatalf("fill the login form of %s: %v", console, err)
		}
		if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(`form[action="/login"] button`))); err != nil {
			t.Fatalf("sign in on %s: %v", console, err)
		}
		return ctx
	}
	poll := func(ctx context.Context, what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	tabA, tabB := open(consoleA), open(consoleB)
	for _, tab := range []struct {
		ctx     context.Context
		console string
	}{{tabA, consoleA}, {tabB, consoleB}} {
		poll(tab.ctx, "the overview live on "+tab.console, `document.getElementById("live") && document.getElementById("live").dataset.state === "live"`)
		poll(tab.ctx, "both nodes up on "+tab.console, `[...document.querySelectorAll('#fleet tr[data-k^="n:"] [data-f="st"]')].map(e => e.textContent).join() === "up,up"`)
		poll(tab.ctx, "node a's console linked on "+tab.console, `document.querySelector('#fleet tr[data-k="n:a"] a').href === `+strconv.Quote(consoleA+"/"))
		poll(tab.ctx, "requests summed over both nodes on "+tab.console, `[...document.querySelectorAll('tr[data-k^="fs:be/"] [data-f="req"]')].reduce((n, e) => n + Number(e.textContent), 0) === 5`)
		poll(tab.ctx, "node b's requests in the drill-down on "+tab.console, `[...document.querySelectorAll('tr[data-k^="fn:b|be/"] [data-f="req"]')].reduce((n, e) => n + Number(e.textContent), 0) === 2`)
	}

	if err := chromedp.Do(tabB, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tabA, chromedp.Click(`tr[data-k="s:be/s1"] form.seg button[value="drain"]`)); err != nil {
		t.Fatalf("click Drain on node a: %v", err)
	}
	poll(tabA, "s1 draining on node a's console", `document.querySelector('tr[data-k="s:be/s1"] form.seg').dataset.sel === "drain"`)
	poll(tabB, "s1 draining on node b's console", `document.querySelector('tr[data-k="s:be/s1"] form.seg').dataset.sel === "drain"`)
	if ok, err := chromedp.Run(tabB, chromedp.Evaluate[bool](`window.notReloaded === true`)); err != nil || !ok {
		t.Errorf("node b's page was reloaded to show the change (err %v); want it over the websocket", err)
	}

	// A change on node b's socket reaches node a's open console.
	if out := exec1(t, b.sock, "set server be/s2 state maint"); out != "\n" && out != "" {
		t.Fatalf("set server on b: %q", out)
	}
	poll(tabA, "s2 in maintenance on node a's console", `document.querySelector('tr[data-k="s:be/s2"] form.seg').dataset.sel === "maint"`)
}
