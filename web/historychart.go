package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"tether/balancer"
	"tether/store"
	"tether/templates"
)

// historyRange is a range the history chart offers.
type historyRange struct {
	name string
	span time.Duration // how far back
	step time.Duration // what one point sums
	tick time.Duration // distance between time labels
	unit string
}

// historyRanges returns the chart's ranges, the default first.
func historyRanges() []historyRange {
	return []historyRange{
		{"1h", time.Hour, time.Minute, 10 * time.Minute, "per minute"},
		{"6h", 6 * time.Hour, 5 * time.Minute, time.Hour, "per 5 min"},
		{"24h", 24 * time.Hour, 15 * time.Minute, 3 * time.Hour, "per 15 min"},
	}
}

func rangeNamed(name string) (historyRange, bool) {
	for _, r := range historyRanges() {
		if r.name == name {
			return r, true
		}
	}
	return historyRanges()[0], name == ""
}

// maxMarkers bounds the state changes drawn on one chart.
const maxMarkers = 200

// Plot area of the chart canvas (templates.ChartWidth × ChartHeight).
const (
	plotX0 = 56.0
	plotX1 = 710.0
	plotY0 = 16.0
	plotY1 = 176.0
)

// historySeries is a history read for a chart: sums per step, oldest
// first, with one entry per step, and the state changes.
type historySeries struct {
	from, to time.Time
	rng      historyRange
	steps    []store.HistoryBucket
	events   []store.HistoryEvent
}

// readHistory reads a backend's or server's history over rng, up to the
// end of now's minute.
func (s *Server) readHistory(ctx context.Context, backend, server string, rng historyRange, now time.Time) (historySeries, error) {
	to := now.Truncate(time.Minute).Add(time.Minute)
	h := historySeries{from: to.Add(-rng.span), to: to, rng: rng}
	q := store.HistoryQuery{Backend: backend, Server: server, From: h.from, To: h.to}
	sums, err := s.deps.History.HistorySums(ctx, q, rng.step)
	if err != nil {
		return h, err
	}
	h.events, err = s.deps.History.HistoryEvents(ctx, q)
	if err != nil {
		return h, err
	}
	n := int(rng.span / rng.step)
	h.steps = make([]store.HistoryBucket, n)
	for i := range h.steps {
		h.steps[i] = store.HistoryBucket{Backend: backend, Server: server, Minute: h.from.Add(time.Duration(i) * rng.step).UTC()}
	}
	for _, b := range sums {
		i := int(b.Minute.Sub(h.from) / rng.step)
		if i >= 0 && i < n {
			b.Server = server
			h.steps[i] = b
		}
	}
	return h, nil
}

// historyChart builds a chart from the request's hr (range) parameter:
// of server on its own page, or, when server is "", of the server the hs
// parameter names on the backend page (the whole backend without it). It
// never fails: an unreadable history is said in the chart.
func (s *Server) historyChart(r *http.Request, b *balancer.BackendStatus, server string, now time.Time) *templates.HistoryChart {
	if s.deps.History == nil {
		return nil
	}
	c := &templates.HistoryChart{Backend: b.Config.Name, RefreshMS: s.opts.HistoryFlush.Milliseconds(),
		Action: "/backends/" + b.Config.Name}
	for _, rg := range historyRanges() {
		c.Ranges = append(c.Ranges, rg.name)
	}
	if server != "" {
		c.Server = server
		c.Action += "/servers/" + server + "/drain"
	} else {
		c.Servers = make([]string, 0, len(b.Servers))
		for i := range b.Servers {
			c.Servers = append(c.Servers, b.Servers[i].Config.Name)
		}
		// A removed server's history stays readable until it ages out.
		c.Server = r.URL.Query().Get("hs")
	}
	rng, ok := rangeNamed(r.URL.Query().Get("hr"))
	c.Range, c.Unit = rng.name, rng.unit
	if !ok {
		c.Error = "Unknown range: choose " + strings.Join(c.Ranges, ", ") + "."
		return c
	}
	h, err := s.readHistory(r.Context(), b.Config.Name, c.Server, rng, now)
	if err != nil {
		s.log.Error("read history", "backend", b.Config.Name, "server", c.Server, "error", err)
		c.Error = "The history could not be read."
		return c
	}
	drawHistory(c, h)
	return c
}

// drawHistory lays h out on the chart's canvas.
func drawHistory(c *templates.HistoryChart, h historySeries) {
	n := len(h.steps)
	var peak, total store.HistoryBucket
	for _, b := range h.steps {
		peak.Requests = max(peak.Requests, b.Requests, b.Pinned, b.NewSessions, b.Errors)
		total.Requests += b.Requests
		total.Pinned += b.Pinned
		total.NewSessions += b.NewSessions
		total.Redispatched += b.Redispatched
		total.Errors += b.Errors
		total.BytesIn += b.BytesIn
		total.BytesOut += b.BytesOut
	}
	c.Empty = total == (store.HistoryBucket{}) && len(h.events) == 0
	top, yStep := axisTop(peak.Requests)
	c.Plot = templates.ChartBox{X0: fmtF(plotX0), Y0: fmtF(plotY0), X1: fmtF(plotX1), Y1: fmtF(plotY1), H: fmtF(plotY1 - plotY0)}
	for v := int64(0); v <= top; v += yStep {
		c.YTicks = append(c.YTicks, templates.ChartTick{Pos: fmtF(yOf(v, top)), Label: fmtCount(v)})
	}
	span := h.to.Sub(h.from)
	xOf := func(t time.Time) float64 {
		return plotX0 + float64(t.Sub(h.from))/float64(span)*(plotX1-plotX0)
	}
	for t := h.from.Truncate(h.rng.tick); !t.After(h.to); t = t.Add(h.rng.tick) {
		if t.Before(h.from) {
			continue
		}
		c.XTicks = append(c.XTicks, templates.ChartTick{Pos: fmtF(xOf(t)), Label: t.UTC().Format("15:04")})
	}
	w := (plotX1 - plotX0) / float64(n)
	var area, req, pin, nw, errs strings.Builder
	line := func(b *strings.Builder, i int, v int64) {
		if i == 0 {
			b.WriteByte('M')
		} else {
			b.WriteByte('L')
		}
		b.WriteString(fmtF(plotX0+(float64(i)+0.5)*w) + "," + fmtF(yOf(v, top)))
	}
	area.WriteString("M" + fmtF(plotX0+0.5*w) + "," + fmtF(plotY1))
	for i, b := range h.steps {
		area.WriteString("L" + fmtF(plotX0+(float64(i)+0.5)*w) + "," + fmtF(yOf(b.Requests, top)))
		line(&req, i, b.Requests)
		line(&pin, i, b.Pinned)
		line(&nw, i, b.NewSessions)
		line(&errs, i, b.Errors)
		end := b.Minute.Add(h.rng.step)
		c.Steps = append(c.Steps, templates.ChartStep{
			X: fmtF(plotX0 + float64(i)*w), W: fmtF(w), Start: b.Minute.Unix(), Requests: b.Requests,
			Title: b.Minute.Format("15:04") + "–" + end.Format("15:04") + " UTC: " + bucketWords(b),
		})
	}
	area.WriteString("L" + fmtF(plotX0+(float64(n)-0.5)*w) + "," + fmtF(plotY1) + "Z")
	c.Area = area.String()
	c.Lines = []templates.ChartLine{
		{Name: "requests", Class: "hreq", Path: req.String()},
		{Name: "pinned", Class: "hpin", Path: pin.String()},
		{Name: "new sessions", Class: "hnew", Path: nw.String()},
		{Name: "errors", Class: "herr", Path: errs.String()},
	}
	for _, ev := range h.events {
		if len(c.Markers) == maxMarkers {
			c.MoreMarkers = len(h.events) - maxMarkers
			break
		}
		x := xOf(ev.Time)
		m := templates.ChartMarker{X: fmtF(x), Class: markerClass(ev), Time: ev.Time.Unix()}
		who := ev.Server
		if who == "" {
			who = "backend " + ev.Backend
		}
		m.Title = ev.Time.UTC().Format("15:04:05") + " UTC " + who + ": " + ev.Message
		switch m.Class {
		case "down":
			m.Glyph = "M" + fmtF(x-4) + "," + fmtF(plotY0-9) + "h8l-4,7z"
		case "up":
			m.Glyph = "M" + fmtF(x) + "," + fmtF(plotY0-9) + "l4,7h-8z"
		default:
			m.Glyph = "M" + fmtF(x) + "," + fmtF(plotY0-10) + "l4,4.5l-4,4.5l-4,-4.5z"
		}
		c.Markers = append(c.Markers, m)
	}
	c.Totals = "Last " + h.rng.name + ": " + bucketWords(total) + "."
}

// markerClass says how a state change is marked: a health transition to
// DOWN or UP, or an operator's change.
func markerClass(ev store.HistoryEvent) string {
	if ev.Kind != store.HistoryHealth {
		return "admin"
	}
	if strings.Contains(ev.Message, " is DOWN") {
		return "down"
	}
	return "up"
}

// bucketWords writes a bucket's counts for people.
func bucketWords(b store.HistoryBucket) string {
	return fmtCount(b.Requests) + " requests, " + fmtCount(b.Pinned) + " pinned, " +
		fmtCount(b.NewSessions) + " new sessions, " + fmtCount(b.Redispatched) + " redispatched, " +
		fmtCount(b.Errors) + " errors, " + fmtBytes(b.BytesIn) + " in, " + fmtBytes(b.BytesOut) + " out"
}

// fmtBytes writes a byte count with thousands separators below 10,000
// bytes and in kB, MB, GB (powers of 1000) above, as "12.3 MB", with a
// no-break space so that a table cell never splits a number from its unit.
func fmtBytes(n int64) string {
	if n < 10000 {
		return fmtCount(n) + "\u00a0B"
	}
	v := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		v /= 1000
		if v < 999.95 || u == "TB" {
			return strconv.FormatFloat(v, 'f', 1, 64) + "\u00a0" + u
		}
	}
	return fmtCount(n) + "\u00a0B"
}

// axisTop returns the value at the top of the y axis for a peak, and the
// distance between its labels: 1, 2 or 5 times a power of ten, at most
// five labels above zero.
func axisTop(peak int64) (top, step int64) {
	if peak <= 0 {
		return 4, 1
	}
	step = 1
	for {
		for _, m := range []int64{1, 2, 5} {
			if s := step * m; (peak+s-1)/s <= 5 {
				return (peak + s - 1) / s * s, s
			}
		}
		step *= 10
	}
}

// yOf places a value on the y axis scaled to top.
func yOf(v, top int64) float64 {
	return plotY1 - float64(v)/float64(top)*(plotY1-plotY0)
}

// historyJSON is the chart's data for scripts: one point per step.
type historyJSON struct {
	Backend string            `json:"backend"`
	Server  string            `json:"server,omitempty"`
	From    time.Time         `json:"from"`
	To      time.Time         `json:"to"`
	Step    int64             `json:"step_seconds"`
	Points  []historyPoint    `json:"points"`
	Events  []historyEventOut `json:"events"`
}

type historyPoint struct {
	Time         time.Time `json:"time"`
	Requests     int64     `json:"requests"`
	NewSessions  int64     `json:"new_sessions"`
	Pinned       int64     `json:"pinned"`
	Redispatched int64     `json:"redispatched"`
	Errors       int64     `json:"errors"`
	BytesIn      int64     `json:"bytes_in"`
	BytesOut     int64     `json:"bytes_out"`
}

type historyEventOut struct {
	Time    time.Time `json:"time"`
	Server  string    `json:"server,omitempty"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
}

// handleHistoryJSON serves a backend's or server's history as JSON:
// ?server= (empty for the whole backend) and ?range= (1h, 6h or 24h).
func (s *Server) handleHistoryJSON() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if s.deps.History == nil {
			return notFound("This console keeps no history.")
		}
		name := chi.URLParam(r, "backend")
		if s.deps.Balancer.Snapshot().Backend(name) == nil {
			return notFound("No such backend.")
		}
		rng, ok := rangeNamed(r.URL.Query().Get("range"))
		if !ok {
			return badRequest(fmt.Sprintf("range must be one of 1h, 6h, 24h, not %q.", r.URL.Query().Get("range")))
		}
		server := r.URL.Query().Get("server")
		h, err := s.readHistory(r.Context(), name, server, rng, s.opts.Now())
		if err != nil {
			return &httpError{status: http.StatusInternalServerError, msg: "The history could not be read.", err: err}
		}
		out := historyJSON{Backend: name, Server: server, From: h.from.UTC(), To: h.to.UTC(), Step: int64(rng.step / time.Second),
			Points: make([]historyPoint, 0, len(h.steps)), Events: make([]historyEventOut, 0, len(h.events))}
		for _, b := range h.steps {
			out.Points = append(out.Points, historyPoint{Time: b.Minute, Requests: b.Requests, NewSessions: b.NewSessions,
				Pinned: b.Pinned, Redispatched: b.Redispatched, Errors: b.Errors, BytesIn: b.BytesIn, BytesOut: b.BytesOut})
		}
		for _, e := range h.events {
			out.Events = append(out.Events, historyEventOut{Time: e.Time, Server: e.Server, Kind: e.Kind, Message: e.Message})
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}
