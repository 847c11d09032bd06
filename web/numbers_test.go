package web

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"tether/balancer"
)

func TestFmtCount(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1,000"}, {12345, "12,345"}, {123456, "123,456"},
		{1234567, "1,234,567"}, {-1234, "-1,234"}, {-999, "-999"},
		{9223372036854775807, "9,223,372,036,854,775,807"}, {-9223372036854775808, "-9,223,372,036,854,775,808"},
	}
	for _, tt := range tests {
		if got := fmtCount(tt.in); got != tt.want {
			t.Errorf("fmtCount(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFmtRate(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {-1, "0"}, {0.04, "0.0"}, {2.5, "2.5"}, {9.94, "9.9"}, {9.96, "10"}, {999.4, "999"}, {12345.6, "12,346"},
	}
	for _, tt := range tests {
		if got := fmtRate(tt.in); got != tt.want {
			t.Errorf("fmtRate(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// liveMatchesRendered compares, in the page, the text of the live tables
// and summaries with the same page as the server renders it now; it
// returns "" when they read the same, else the first difference. Ages
// and check durations, which move by themselves, are left out.
const liveMatchesRendered = `(async () => {
	const res = await fetch(location.href, {credentials: "same-origin", headers: {Accept: "text/html"}});
	const fresh = new DOMParser().parseFromString(await res.text(), "text/html");
	const texts = (doc) => {
		const main = doc.getElementById("main").cloneNode(true);
		main.querySelectorAll('.age, [data-f="chk"], .flash').forEach((e) => e.remove());
		return [...main.querySelectorAll("table tr, .bsum, .impact, .distkey li")].map((e) => e.textContent.replace(/\s+/g, " ").trim());
	};
	const a = texts(document), b = texts(fresh);
	if (a.length !== b.length) return "live page has " + a.length + " rows, rendered " + b.length;
	for (let i = 0; i < a.length; i++) {
		if (a[i] !== b[i]) return "live: " + JSON.stringify(a[i]) + "\nrendered: " + JSON.stringify(b[i]);
	}
	return "";
})()`

// TestBrowserLiveTextMatchesRendered sends 1,200 requests, then checks
// that the overview and the backend page read the same after live
// updates as when the server renders them: counts with thousands
// separators, totals and labels alike.
func TestBrowserLiveTextMatchesRendered(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{})
	for _, n := range []string{"s1", "s2", "s3"} {
		waitFor(t, 5*time.Second, n+" up", func() bool { return e.server(n).StatusText() == "UP" })
	}
	// s3 stays idle: its history peak is 0.
	e.disp.Execute(context.Background(), "set server servers/s3 state maint", balancer.LevelAdmin, balancer.Origin{Channel: "test"})
	const requests = 1200
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < requests; i++ {
		res, err := c.Get(e.frontend.URL + "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	browserLogin(t, ctx, e, "alice")
	grouped := regexp.MustCompile(`^\d{1,3}(,\d{3})+$`)
	for _, path := range []string{"/", "/backends/servers"} {
		t.Run(path, func(t *testing.T) {
			navigate(t, ctx, e.console.URL+path)
			poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
			// Rates fall to 0 once the traffic stopped; until then the two
			// renders may differ by a moment.
			var diff string
			deadline := time.Now().Add(20 * time.Second)
			for {
				var err error
				diff, err = chromedp.Run(ctx, chromedp.Evaluate[string](liveMatchesRendered, chromedp.EvalAwaitPromise))
				if err != nil {
					t.Fatalf("compare live and rendered text: %v", err)
				}
				if diff == "" || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if diff != "" {
				t.Fatalf("after live updates the page reads differently from its render:\n%s", diff)
			}
			total, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-k="b:servers"] tfoot [data-f="tot"]').textContent`))
			if err != nil {
				t.Fatal(err)
			}
			if !grouped.MatchString(total) {
				t.Errorf("backend total %q, want %d with a thousands separator", total, requests)
			}
			ups, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-k="b:servers"] tfoot tr.total td').textContent`))
			if err != nil {
				t.Fatal(err)
			}
			if ups != "2/3 up" {
				t.Errorf("backend totals row says %q, want 2/3 up", ups)
			}
		})
	}
	t.Run("idle server's peak", func(t *testing.T) {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.hist tr[data-k="s:servers/s3"] [data-f="hpk"]').textContent`))
		if err != nil {
			t.Fatal(err)
		}
		if got != "0" {
			t.Errorf("idle s3's peak per bucket %q, want 0", got)
		}
	})
}
