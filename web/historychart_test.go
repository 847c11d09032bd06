package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"tether/store"
)

// seedHistory writes history for backend "servers" at fixed distances
// before now and returns the minute of the newest bucket.
func seedHistory(t *testing.T, e *env, now time.Time) time.Time {
	t.Helper()
	m30 := now.Add(-30 * time.Minute).Truncate(time.Minute)
	m5h := now.Add(-5 * time.Hour).Truncate(time.Minute)
	err := e.st.AppendHistory(context.Background(), []store.HistoryBucket{
		{Backend: "servers", Server: "s1", Minute: m30, Requests: 1200, Pinned: 900, NewSessions: 30, Errors: 4, BytesIn: 120000, BytesOut: 9_000_000},
		{Backend: "servers", Server: "s2", Minute: m30, Requests: 800, Pinned: 500, NewSessions: 20, Redispatched: 2, BytesIn: 80000, BytesOut: 6_000_000},
		{Backend: "servers", Server: "s1", Minute: m5h, Requests: 7},
	}, []store.HistoryEvent{
		{Time: m30.Add(20 * time.Second), Backend: "servers", Server: "s2", Kind: store.HistoryHealth, Message: "Server servers/s2 is DOWN, reason: Layer4 connection problem"},
		{Time: m30.Add(40 * time.Second), Backend: "servers", Server: "s2", Kind: store.HistoryAdmin, Message: "state maint — by alice (console)"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m30
}

func TestHistoryJSON(t *testing.T) {
	e := newEnv(t, Options{})
	m30 := seedHistory(t, e, time.Now())
	c := e.login("victor") // viewers read history: counts, no addresses
	type point struct {
		Time     time.Time `json:"time"`
		Requests int64     `json:"requests"`
		Errors   int64     `json:"errors"`
		BytesOut int64     `json:"bytes_out"`
	}
	type reply struct {
		Step   int64   `json:"step_seconds"`
		Points []point `json:"points"`
		Events []struct {
			Server, Kind, Message string
		} `json:"events"`
	}
	tests := []struct {
		name     string
		query    string
		points   int
		step     int64
		at       time.Time // a point expected at this time...
		requests int64     // ...with these requests
		total    int64     // requests over the whole range
		events   int
	}{
		{"backend, 1h", "", 60, 60, m30, 2000, 2000, 2},
		{"server, 1h", "?server=s1", 60, 60, m30, 1200, 1200, 0},
		{"server with events", "?server=s2", 60, 60, m30, 800, 800, 2},
		{"backend, 6h", "?range=6h", 72, 300, time.Time{}, 0, 2007, 2},
		{"backend, 24h", "?range=24h", 96, 900, time.Time{}, 0, 2007, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Get(e.console.URL + "/backends/servers/history.json" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if strings.Contains(string(body), "127.0.0.1") {
				t.Errorf("history shows an address: %s", body)
			}
			var r reply
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Points) != tt.points || r.Step != tt.step {
				t.Fatalf("%d points of %ds, want %d of %ds", len(r.Points), r.Step, tt.points, tt.step)
			}
			var total int64
			found := tt.at.IsZero()
			for i, p := range r.Points {
				total += p.Requests
				if i > 0 && p.Time.Sub(r.Points[i-1].Time) != time.Duration(tt.step)*time.Second {
					t.Fatalf("points %d and %d are not one step apart", i-1, i)
				}
				if p.Time.Equal(tt.at) {
					found = p.Requests == tt.requests
				}
			}
			// Live traffic adds nothing here: the test sends no request.
			if total != tt.total || !found {
				t.Errorf("requests: %d in total (want %d); point at %s with %d requests found: %v", total, tt.total, tt.at, tt.requests, found)
			}
			n := 0
			for _, ev := range r.Events {
				if ev.Server == "s2" {
					n++
				}
			}
			if n != tt.events {
				t.Errorf("%d events of s2, want %d: %+v", n, tt.events, r.Events)
			}
		})
	}
	for q, want := range map[string]int{"?range=2h": http.StatusBadRequest} {
		resp, err := c.Get(e.console.URL + "/backends/servers/history.json" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", q, resp.StatusCode, want)
		}
	}
	resp, err := c.Get(e.console.URL + "/backends/nope/history.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown backend: status %d, want 404", resp.StatusCode)
	}
}

func TestHistoryChartOnBackendPage(t *testing.T) {
	e := newEnv(t, Options{})
	m30 := seedHistory(t, e, time.Now())
	c := e.login("victor")
	tests := []struct {
		name, query string
		rng         string
		steps       int
		requests    int64 // at m30's step
		markers     map[string]int
	}{
		{"default", "", "1h", 60, 2000, map[string]int{"down": 1, "admin": 1}},
		{"one server", "?hs=s1", "1h", 60, 1200, nil},
		{"6 hours", "?hr=6h&hs=s2", "6h", 72, 800, map[string]int{"down": 1, "admin": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, doc, body := e.get(c, "/backends/servers"+tt.query)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			charts := find(doc, func(n *html.Node) bool { return n.Data == "svg" && hasClass(n, "histchart") })
			if len(charts) != 1 {
				t.Fatalf("%d history charts, want 1", len(charts))
			}
			if r, _ := attr(charts[0], "data-range"); r != tt.rng {
				t.Errorf("range %q, want %q", r, tt.rng)
			}
			steps := find(charts[0], func(n *html.Node) bool { return n.Data == "rect" })
			if len(steps) != tt.steps {
				t.Fatalf("%d steps, want %d", len(steps), tt.steps)
			}
			var hit *html.Node
			for _, s := range steps {
				ts, _ := attr(s, "data-t")
				start, _ := strconv.ParseInt(ts, 10, 64)
				if st := time.Unix(start, 0); !st.After(m30) && m30.Before(st.Add(stepOf(tt.rng))) {
					hit = s
				}
			}
			if hit == nil {
				t.Fatalf("no step covers %s", m30)
			}
			if v, _ := attr(hit, "data-v"); v != strconv.FormatInt(tt.requests, 10) {
				t.Errorf("step of %s: %s requests, want %d", m30, v, tt.requests)
			}
			if title := text(hit); !strings.Contains(title, fmtCount(tt.requests)+" requests") || !strings.Contains(title, "UTC") {
				t.Errorf("hover text %q does not say the requests and the time", title)
			}
			got := map[string]int{}
			for _, m := range find(charts[0], func(n *html.Node) bool { return n.Data == "g" && hasClass(n, "mark") }) {
				for _, k := range []string{"down", "up", "admin"} {
					if hasClass(m, k) {
						got[k]++
					}
				}
			}
			for k, n := range tt.markers {
				if got[k] < n {
					t.Errorf("%d %s markers, want at least %d", got[k], k, n)
				}
			}
			labels := find(charts[0], func(n *html.Node) bool { return n.Data == "text" })
			var xl, yl int
			for _, l := range labels {
				if hasClass(l, "xlab") {
					xl++
				}
				if hasClass(l, "ylab") {
					yl++
				}
			}
			if xl < 5 || yl < 3 {
				t.Errorf("%d time labels and %d value labels, want axes", xl, yl)
			}
			if forms := find(doc, func(n *html.Node) bool { return n.Data == "form" && hasClass(n, "histsel") }); len(forms) != 1 {
				t.Errorf("%d range forms, want 1", len(forms))
			} else if a, _ := attr(forms[0], "action"); a != "/backends/servers" {
				t.Errorf("range form goes to %q, want the backend page", a)
			}
			sec := find(doc, byAttr("id", "history"))
			if len(sec) != 1 || strings.Contains(text(sec[0]), "127.0.0.1") {
				t.Errorf("history section missing or shows an address")
			}
			_ = body
		})
	}
	resp, _, _ := e.get(c, "/backends/servers?hr=2d")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("unknown range: status %d, want the page with a message", resp.StatusCode)
	}
}

func stepOf(rng string) time.Duration {
	r, _ := rangeNamed(rng)
	return r.step
}

func TestAxisTop(t *testing.T) {
	tests := []struct{ peak, top, step int64 }{
		{0, 4, 1}, {1, 1, 1}, {4, 4, 1}, {5, 5, 1}, {6, 6, 2}, {9, 10, 2}, {11, 15, 5}, {26, 30, 10},
		{99, 100, 20}, {2000, 2000, 500}, {2001, 2500, 500}, {1_234_567, 1_500_000, 500_000},
	}
	for _, tt := range tests {
		top, step := axisTop(tt.peak)
		if top != tt.top || step != tt.step {
			t.Errorf("axisTop(%d) = %d, %d; want %d, %d", tt.peak, top, step, tt.top, tt.step)
		}
	}
}

func TestFmtBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0\u00a0B"}, {9999, "9,999\u00a0B"}, {10000, "10.0\u00a0kB"}, {1_234_567, "1.2\u00a0MB"}, {999_960_000, "1.0\u00a0GB"}, {5_000_000_000_000_000, "5000.0\u00a0TB"},
	}
	for _, tt := range tests {
		if got := fmtBytes(tt.n); got != tt.want {
			t.Errorf("fmtBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// TestHistoryChartOnServerPage checks the chart of the server's own page:
// that server only, no server selector, the range form posting back to it.
func TestHistoryChartOnServerPage(t *testing.T) {
	e := newEnv(t, Options{})
	m30 := seedHistory(t, e, time.Now())
	c := e.login("victor")
	resp, doc, _ := e.get(c, "/backends/servers/servers/s2/drain?hr=6h&hs=s1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	charts := find(doc, func(n *html.Node) bool { return n.Data == "svg" && hasClass(n, "histchart") })
	if len(charts) != 1 {
		t.Fatalf("%d history charts, want 1", len(charts))
	}
	if s, _ := attr(charts[0], "data-server"); s != "s2" {
		t.Errorf("chart of server %q, want s2 (hs does not apply on a server's page)", s)
	}
	var total int64
	for _, r := range find(charts[0], func(n *html.Node) bool { return n.Data == "rect" }) {
		v, _ := attr(r, "data-v")
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
	}
	if total != 800 {
		t.Errorf("s2's chart counts %d requests, want 800 (at %s)", total, m30)
	}
	if sel := find(doc, byAttr("name", "hs")); len(sel) != 0 {
		t.Errorf("a server's page offers a server selector")
	}
	forms := find(doc, func(n *html.Node) bool { return n.Data == "form" && hasClass(n, "histsel") })
	if len(forms) != 1 {
		t.Fatalf("%d range forms, want 1", len(forms))
	}
	if a, _ := attr(forms[0], "action"); a != "/backends/servers/servers/s2/drain" {
		t.Errorf("range form goes to %q", a)
	}
}
