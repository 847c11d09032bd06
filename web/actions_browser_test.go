package web

import (
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestBrowserDeleteTellsTheTruth checks that a delete button is enabled
// only while del server can succeed, says why not otherwise (HAProxy's
// reason for a server-template slot), and follows the server live.
func TestBrowserDeleteTellsTheTruth(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnvConfig(t, wideConfig, Options{Socat: "/run/tether/admin.sock"})
	waitFor(t, 5*time.Second, "s3 up", func() bool { return e.server("s3").StatusText() == "UP" })
	browserLogin(t, ctx, e, "alice")
	navigate(t, ctx, e.console.URL+"/backends/servers")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}

	const state = `((name) => {
		const li = document.querySelector('.dels li[data-k="s:servers/' + name + '"]');
		const b = li.querySelector("button");
		const why = document.getElementById(b.getAttribute("aria-describedby"));
		return (b.disabled ? "disabled: " : "enabled: ") + why.textContent;
	})`
	tests := []struct{ server, want string }{
		{"web1", "disabled: cannot be removed at run time: other configuration elements point to it (resolved by DNS)"},
		{"s3", "disabled: not in maintenance (put it in maintenance first)"},
	}
	for _, tt := range tests {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](state+`(`+jsString(tt.server)+`)`))
		if err != nil {
			t.Fatalf("read the delete button of %s: %v", tt.server, err)
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.server, got, tt.want)
		}
	}

	// s3 in maintenance: the button turns on without a reload.
	e.post(e.login("alice"), "/backends/servers/servers/s3/state", url.Values{"state": {"maint"}})
	poll(t, ctx, "s3 deletable", state+`("s3") === "enabled: ready to delete"`)
	if err := chromedp.Do(ctx, chromedp.Click(`.dels li[data-k="s:servers/s3"] button`)); err != nil {
		t.Fatalf("click delete: %v", err)
	}
	poll(t, ctx, "toast with the command and the reply", `[...document.querySelectorAll(".toast.ok")].some(t => t.querySelector("code") && t.querySelector("code").textContent === "del server servers/s3" && t.textContent.includes("Server deleted."))`)
	if e.bal.Snapshot().Backend("servers").Server("s3") != nil {
		t.Fatalf("s3 still in the balancer")
	}
	poll(t, ctx, "s3 gone from the page", `!document.querySelector('.dels li[data-k="s:servers/s3"]') && window.notReloaded === true`)
}

// TestBrowserKeyRotationAnswers checks that rotating the dynamic-cookie
// key answers like every other action: a toast with the command (the key
// masked) and the result, without reloading the page.
func TestBrowserKeyRotationAnswers(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{Socat: "/run/tether/admin.sock"})
	browserLogin(t, ctx, e, "alice")
	navigate(t, ctx, e.console.URL+"/backends/servers")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
	fp, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.notReloaded = true; document.querySelector("code.fp").textContent`))
	if err != nil {
		t.Fatalf("read the key fingerprint: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(`input[name="key"]`, "another-key"),
		chromedp.Click(`form[action$="/dynamic-cookie-key"] button`),
	); err != nil {
		t.Fatalf("rotate the key: %v", err)
	}
	poll(t, ctx, "toast", `[...document.querySelectorAll(".toast.ok")].some(t => t.querySelector("code") && t.querySelector("code").textContent === "set dynamic-cookie-key backend servers ********" && t.querySelector("button.copy"))`)
	poll(t, ctx, "new fingerprint", `document.querySelector("code.fp").textContent !== `+jsString(fp)+` && window.notReloaded === true`)
	poll(t, ctx, "the key field is empty", `document.querySelector('input[name="key"]').value === ""`)
}

// TestBrowserFlashBecomesToast checks that a form sent without the
// page's script (the cookie settings) answers with the same toast.
func TestBrowserFlashBecomesToast(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{Socat: "/run/tether/admin.sock"})
	browserLogin(t, ctx, e, "alice")
	navigate(t, ctx, e.console.URL+"/backends/servers")
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(`form[action$="/cookie"] button[type="submit"]`))); err != nil {
		t.Fatalf("apply the cookie line: %v", err)
	}
	poll(t, ctx, "toast", `!document.querySelector("main .flash") && [...document.querySelectorAll(".toast")].some(t => t.querySelector("code") && t.querySelector("code").textContent.startsWith("set cookie backend servers SERVERID"))`)
}
