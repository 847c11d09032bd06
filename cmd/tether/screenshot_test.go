package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"tether/balancer/e2etest"
)

// TestScreenshots regenerates docs/console-1440.png and docs/console-390.png
// from what "tether serve -demo-traffic" shows once traffic has run for a
// minute. It runs only with TETHER_SCREENSHOTS=1, so that ordinary test
// runs never rewrite the pictures. The demo binds 127.0.0.1:8080 and
// 18081-18083, which must be free.
func TestScreenshots(t *testing.T) {
	if os.Getenv("TETHER_SCREENSHOTS") != "1" {
		t.Skip("set TETHER_SCREENSHOTS=1 to regenerate docs/console-1440.png and docs/console-390.png")
	}
	chromium := e2etest.RequireProgram(t, "chromium")
	const password = "screenshot-plum-orbit"
	dir := t.TempDir()
	console := freeAddr(t)
	getenv := func(k string) string {
		if k == "TETHER_ADMIN_PASSWORD" {
			return password
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "-db", filepath.Join(dir, "tether.db"), "-console", console, "-demo-traffic"}, getenv, nil, &out, &out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, out.String())
		}
	})
	base := "http://" + console
	started := time.Now()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1440, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	poll := func(ctx context.Context, what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	// Reduced motion: changed cells do not flash in the picture.
	reduced := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}}
	if _, err := chromedp.Call(bctx, emulation.SetEmulatedMedia, reduced); err != nil {
		t.Fatalf("emulate reduced motion: %v", err)
	}
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(1440, 900),
		chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(`input[name="name"]`, "admin"),
		chromedp.SendKeys(`input[name="password"]`, password),
	); err != nil {
		t.Fatalf("fill the login form: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(`form[action="/login"] button`))); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	poll(bctx, "live", `document.getElementById("live") && document.getElementById("live").dataset.state === "live"`)
	// Half a minute of request rates in the sparklines (one point a second),
	// and a minute of traffic in all: the picture shows what a newcomer sees
	// a minute after starting the demo.
	poll(bctx, "sparklines filled", `[...document.querySelectorAll('tr[data-k^="s:"] svg.spark path')].every(p => p.getAttribute("d").split("L").length >= 30)`)
	time.Sleep(time.Until(started.Add(time.Minute)))

	shoot := func(ctx context.Context, name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join("..", "..", "docs", name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}
	shoot(bctx, "console-1440.png")

	phone, cancelPhone := chromedp.NewContext(bctx)
	defer cancelPhone()
	if _, err := chromedp.Call(phone, emulation.SetEmulatedMedia, reduced); err != nil {
		t.Fatalf("emulate reduced motion: %v", err)
	}
	if err := chromedp.Do(phone, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("open the overview at 390 px: %v", err)
	}
	poll(phone, "live", `document.getElementById("live").dataset.state === "live"`)
	shoot(phone, "console-390.png")
}
