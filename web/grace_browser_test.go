package web

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserKeyRotationWithGrace rotates the key from the dynamic-cookie
// panel with a grace window: the confirmation says what happens to pinned
// clients, the command carries the grace, the panel shows the retired key
// with a countdown, and the migration counters move live as a client
// holding an old cookie comes back and is re-issued the new one.
func TestBrowserKeyRotationWithGrace(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{Socat: "/run/tether/admin.sock"})

	// A client pinned under the first key.
	res, err := http.Get(e.frontend.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	pinned := strings.SplitN(res.Header.Get("Set-Cookie"), ";", 2)[0]
	if !strings.HasPrefix(pinned, "SERVERID=") {
		t.Fatalf("first response set %q", res.Header.Get("Set-Cookie"))
	}

	browserLogin(t, ctx, e, "alice")
	navigate(t, ctx, e.console.URL+"/backends/servers")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`window.confirm = (m) => { window.lastConfirm = m; return true; }`),
		chromedp.SendKeys(`input[name="key"]`, "rotated-key"),
		chromedp.SetValue(`select[name="grace"]`, "1h"),
		chromedp.Click(`form[action$="/dynamic-cookie-key"] button`),
	); err != nil {
		t.Fatalf("rotate the key: %v", err)
	}
	poll(t, ctx, "toast with the grace", `[...document.querySelectorAll(".toast.ok")].some(t => t.querySelector("code") && t.querySelector("code").textContent === "set dynamic-cookie-key backend servers ******** grace 1h")`)
	msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.lastConfirm || ""`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "grace window of 1 hour") || !strings.Contains(msg, "keep their server and get the new cookie") {
		t.Fatalf("confirmation %q does not say what happens to pinned clients", msg)
	}
	if got := e.bal.Snapshot().Backend("servers").RetiredKeys; len(got) != 1 {
		t.Fatalf("retired keys %+v", got)
	}
	poll(t, ctx, "retired key and countdown", `(() => {
		const c = document.querySelector(".grace .countdown");
		return c && /^(59m\d\ds|1h00m) left$/.test(c.textContent) && document.querySelector(".grace code.fp").textContent === `+jsString(e.bal.Snapshot().Backend("servers").RetiredKeys[0].Fingerprint)+`;
	})()`)

	// The pinned client comes back with its old cookie: same server, new cookie.
	req, _ := http.NewRequest("GET", e.frontend.URL+"/", nil)
	req.Header.Set("Cookie", pinned)
	res, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if sc := res.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "SERVERID=") || strings.HasPrefix(sc, pinned+";") {
		t.Fatalf("old cookie answered with Set-Cookie %q, want the new cookie", sc)
	}
	poll(t, ctx, "migration counters", `document.querySelector('.grace [data-f="gk"]').textContent === "1" && document.querySelector('.grace [data-f="gri"]').textContent === "1"`)
	// The chart of re-issued cookies rises to the top of its canvas.
	poll(t, ctx, "migration chart", `/,0\.5$/.test(document.querySelector('.migchart path[data-f="mgr"]').getAttribute("d"))`)
}
