package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"tether/balancer"
)

func TestSamplerSessionRateMax(t *testing.T) {
	snap := func(sessions int64) *balancer.Snapshot {
		return &balancer.Snapshot{Backends: []balancer.BackendStatus{{
			Config:  balancer.Backend{Name: "app"},
			Stats:   balancer.BackendCounters{TotalSessions: sessions},
			Servers: []balancer.ServerStatus{{Config: balancer.Server{Name: "web1"}, Stats: balancer.ServerCounters{TotalSessions: sessions}}},
		}}}
	}
	s := newSampler()
	t0 := time.Unix(1_800_000_000, 0)
	steps := []struct {
		sessions int64
		cur, max float64
	}{
		{0, 0, 0}, {10, 10, 10}, {40, 30, 30}, {45, 5, 30},
	}
	for i, st := range steps {
		s.sample(snap(st.sessions), t0.Add(time.Duration(i)*time.Second))
		smp, _ := s.server("app", "web1")
		cur, peak := s.backendSessionRate("app")
		if smp.Rate != st.cur || smp.RateMax != st.max || cur != st.cur || peak != st.max {
			t.Errorf("after %d sessions: server %v/%v, backend %v/%v; want %v/%v", st.sessions, smp.Rate, smp.RateMax, cur, peak, st.cur, st.max)
		}
	}
	s.clearMax("other")
	if smp, _ := s.server("app", "web1"); smp.RateMax != 30 {
		t.Errorf("clearing another backend's counters cleared this one's max")
	}
	s.clearMax("app")
	s.sample(snap(47), t0.Add(4*time.Second))
	smp, _ := s.server("app", "web1")
	if _, peak := s.backendSessionRate("app"); smp.RateMax != 2 || peak != 2 {
		t.Errorf("after clear counters: max %v and %v, want 2 (the rate since)", smp.RateMax, peak)
	}
}

// TestServerTableBytesAndSessionRate checks the Session rate and Bytes
// columns: headers as HAProxy's, values with thousands separators, in the
// row and the backend's total.
func TestServerTableBytesAndSessionRate(t *testing.T) {
	e := newEnv(t, Options{})
	waitFor(t, 5*time.Second, "s1 up", func() bool { return e.server("s1").StatusText() == "UP" })
	if reply := e.disp.Execute(t.Context(), "set server servers/s3 state maint", balancer.LevelAdmin, balancer.Origin{Channel: "test"}); strings.TrimSpace(reply) != "" {
		t.Fatal(reply)
	}
	for range 60 {
		resp, err := http.Get(e.frontend.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitFor(t, 5*time.Second, "a session rate sampled", func() bool {
		smp, _ := e.srv.stats.server("servers", "s1")
		return smp.RateMax > 0
	})
	c := e.login("victor")
	_, doc, _ := e.get(c, "/backends/servers")
	var groups, cols []string
	for _, th := range find(doc, func(n *html.Node) bool { return n.Data == "th" }) {
		if v, _ := attr(th, "scope"); v == "colgroup" {
			groups = append(groups, text(th))
		} else if v == "col" {
			cols = append(cols, text(th))
		}
	}
	g := strings.Join(groups, "|")
	if !strings.Contains(g, "Wght|Session rate|Sessions") || !strings.Contains(g, "Responses|Bytes|Cookie") {
		t.Errorf("column groups %q: want Session rate before Sessions and Bytes after Responses", g)
	}
	if cs := strings.ReplaceAll(strings.Join(cols, "|"), "\u200b", ""); !strings.Contains(cs, "Eff/Init|Cur/Max|Cur|Max|Total") || !strings.Contains(cs, "5xx|In/Out|Value") {
		t.Errorf("columns %q", cs)
	}
	s1 := e.server("s1").Stats
	be := e.bal.Snapshot().Backend("servers").Stats
	if be.BytesOut == s1.BytesOut {
		t.Fatalf("s2 took no traffic: the backend's total cannot be told from s1's")
	}
	for _, tt := range []struct{ key, field, want string }{
		{"s:servers/s1", "bin", fmtBytes(s1.BytesIn)},
		{"s:servers/s1", "bout", fmtBytes(s1.BytesOut)},
		{"b:servers", "bin", fmtBytes(be.BytesIn)},
		{"b:servers", "bout", fmtBytes(be.BytesOut)},
	} {
		got, ok := ownCell(doc, tt.key, tt.field)
		if !ok || got != tt.want {
			t.Errorf("%s %s = %q, want %q", tt.key, tt.field, got, tt.want)
		}
	}
	if got, _ := cell(doc, "s:servers/s1", "bout"); !strings.Contains(got, ",") {
		t.Errorf("bytes out %q has no thousands separator (60 responses, under 10,000 bytes)", got)
	}
	for _, key := range []string{"s:servers/s1", "b:servers"} {
		if got, ok := ownCell(doc, key, "srmax"); !ok || got == "0" || got == "" {
			t.Errorf("%s session rate max = %q, want the peak", key, got)
		}
	}
}

// ownCell is cell, but a backend's field is read from its table's foot,
// not from the first of its servers' rows.
func ownCell(doc *html.Node, k, f string) (string, bool) {
	if !strings.HasPrefix(k, "b:") {
		return cell(doc, k, f)
	}
	for _, owner := range find(doc, byAttr("data-k", k)) {
		for _, foot := range find(owner, func(n *html.Node) bool { return n.Data == "tfoot" }) {
			for _, n := range find(foot, func(n *html.Node) bool { v, _ := attr(n, "data-f"); return v == f }) {
				return text(n), true
			}
		}
	}
	return "", false
}

// TestBrowserBytesAndSessionRateLive checks that the new columns follow
// the traffic without a reload.
func TestBrowserBytesAndSessionRateLive(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t, Options{})
	waitFor(t, 5*time.Second, "s1 up", func() bool { return e.server("s1").StatusText() == "UP" })
	browserLogin(t, ctx, e, "victor")
	navigate(t, ctx, e.console.URL+"/backends/servers")
	poll(t, ctx, "live", `document.getElementById("live").dataset.state === "live"`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}
	for range 90 {
		resp, err := http.Get(e.frontend.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A backend's section holds its servers' rows: its own cells are in
	// the table's foot.
	field := func(k, f string) string {
		sel := `[data-k="` + k + `"] [data-f="` + f + `"]`
		if strings.HasPrefix(k, "b:") {
			sel = `[data-k="` + k + `"] tfoot [data-f="` + f + `"]`
		}
		return `document.querySelector('` + sel + `').textContent`
	}
	// The counters are final once every response is accounted for.
	var shown string
	waitFor(t, 10*time.Second, "the page shows the backend's bytes", func() bool {
		be := e.bal.Snapshot().Backend("servers").Stats
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](field("b:servers", "bin")+` + " " + `+field("b:servers", "bout")))
		shown = got
		return err == nil && be.BytesOut > 0 && got == fmtBytes(be.BytesIn)+" "+fmtBytes(be.BytesOut)
	})
	if shown == "0 0" {
		t.Fatalf("bytes not counted")
	}
	poll(t, ctx, "session rate peak", field("s:servers/s1", "srmax")+` !== "0"`)
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded === true && /\s(B|kB|MB)$/.test(`+field("b:servers", "bout")+`)`)); err != nil || !ok {
		t.Fatalf("the page reloaded, or bytes show no unit (err %v)", err)
	}
}
