package web

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"tether/store"
)

// chartPoints returns the history chart's steps as start → requests, and
// its markers as "start class".
func chartPoints(t *testing.T, ctx context.Context) (map[int64]int64, []string) {
	t.Helper()
	steps, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('svg.histchart .steps rect')].map(r => r.dataset.t + " " + r.dataset.v)`))
	if err != nil {
		t.Fatalf("read the chart's points: %v", err)
	}
	points := make(map[int64]int64, len(steps))
	for _, s := range steps {
		ts, vs, _ := strings.Cut(s, " ")
		at, err1 := strconv.ParseInt(ts, 10, 64)
		v, err2 := strconv.ParseInt(vs, 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("chart point %q", s)
		}
		points[at] = v
	}
	marks, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`[...document.querySelectorAll('svg.histchart g.mark')].map(g => g.dataset.t + " " + g.getAttribute("class"))`))
	if err != nil {
		t.Fatalf("read the chart's markers: %v", err)
	}
	return points, marks
}

// TestBrowserHistorySurvivesRestart records traffic and state changes,
// stops the whole console, starts another on the same database and checks
// that the chart shows the same points and markers.
func TestBrowserHistorySurvivesRestart(t *testing.T) {
	ctx := newBrowser(t)
	db := filepath.Join(t.TempDir(), "tether.db")
	e := newEnvAt(t, db, testConfig, Options{})
	waitFor(t, 5*time.Second, "s1 up", func() bool { return e.server("s1").StatusText() == "UP" })
	m30 := seedHistory(t, e, time.Now())
	const live = 25
	for range live {
		resp, err := e.frontend.Client().Get(e.frontend.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	q := store.HistoryQuery{Backend: "servers", From: m30.Add(time.Minute), To: time.Now().Add(time.Hour)}
	waitFor(t, 10*time.Second, "live requests recorded", func() bool {
		sums, err := e.st.HistorySums(context.Background(), q, 2*time.Hour)
		return err == nil && len(sums) == 1 && sums[0].Requests == live
	})

	browserLogin(t, ctx, e, "alice")
	navigate(t, ctx, e.console.URL+"/backends/servers?hr=1h")
	before, beforeMarks := chartPoints(t, ctx)
	if before[m30.Unix()] != 2000 {
		t.Fatalf("before the restart: %d requests at %s, want the 2000 recorded", before[m30.Unix()], m30)
	}
	var liveSeen int64
	for at, v := range before {
		if at > m30.Unix() {
			liveSeen += v
		}
	}
	if liveSeen != live || len(beforeMarks) < 2 {
		t.Fatalf("before the restart: %d live requests (want %d), markers %q", liveSeen, live, beforeMarks)
	}

	e.stop()
	e2 := newEnvAt(t, db, testConfig, Options{})
	browserLogin(t, ctx, e2, "alice")
	navigate(t, ctx, e2.console.URL+"/backends/servers?hr=1h")
	after, afterMarks := chartPoints(t, ctx)
	// The range ends with the current minute: a minute may have passed.
	same := 0
	for at, v := range before {
		w, ok := after[at]
		if !ok {
			continue
		}
		same++
		if w != v {
			t.Errorf("point at %s: %d requests before the restart, %d after", time.Unix(at, 0).UTC(), v, w)
		}
	}
	if same < 58 {
		t.Errorf("only %d of %d points in both charts", same, len(before))
	}
	for _, m := range beforeMarks {
		if !strings.Contains(strings.Join(afterMarks, "\n"), m) {
			t.Errorf("marker %q gone after the restart (now %q)", m, afterMarks)
		}
	}
}

// TestBrowserHistoryChartFollowsTraffic checks that an open backend page's
// chart takes in new history without a reload.
func TestBrowserHistoryChartFollowsTraffic(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{})
	waitFor(t, 5*time.Second, "s1 up", func() bool { return e.server("s1").StatusText() == "UP" })
	browserLogin(t, ctx, e, "victor")
	navigate(t, ctx, e.console.URL+"/backends/servers")
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	const sum = `[...document.querySelectorAll('svg.histchart .steps rect')].reduce((n, r) => n + Number(r.dataset.v), 0)`
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](sum)); err != nil || n != 0 {
		t.Fatalf("chart before any traffic: %d requests (err %v), want 0", n, err)
	}
	const requests = 12
	for range requests {
		resp, err := e.frontend.Client().Get(e.frontend.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	poll(t, ctx, "the chart counts the requests", sum+` === `+strconv.Itoa(requests)+` && window.notReloaded === true`)
	poll(t, ctx, "the totals say so", `document.querySelector("#history .totals").textContent.startsWith("Last 1h: `+strconv.Itoa(requests)+` requests")`)
}
