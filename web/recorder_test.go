package web

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// snapOf returns a snapshot of backend "app" with one server per entry of
// counts, named by its key.
func snapOf(counts map[string]balancer.ServerCounters) *balancer.Snapshot {
	b := balancer.BackendStatus{Config: balancer.Backend{Name: "app"}}
	for _, name := range []string{"web1", "web2"} {
		if c, ok := counts[name]; ok {
			b.Servers = append(b.Servers, balancer.ServerStatus{Config: balancer.Server{Name: name}, Stats: c})
		}
	}
	return &balancer.Snapshot{Backends: []balancer.BackendStatus{b}}
}

func counters(req, bytesOut int64) balancer.ServerCounters {
	c := balancer.ServerCounters{TotalRequests: req, BytesIn: req * 100, BytesOut: bytesOut}
	c.Sticky.Pinned = req / 2
	c.Sticky.NewSessions = req / 4
	c.Responses[4] = req / 10
	c.ConnErrors = 1
	return c
}

func TestRecorderDeltas(t *testing.T) {
	base := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	at := func(m int, s int) time.Time {
		return base.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
	}
	type step struct {
		at   time.Time
		snap map[string]balancer.ServerCounters
	}
	tests := []struct {
		name  string
		steps []step
		// want: requests per (minute offset, server); bytes out checked too.
		want []store.HistoryBucket
	}{
		{
			name: "counts from zero, then deltas per minute",
			steps: []step{
				{at(0, 10), map[string]balancer.ServerCounters{"web1": counters(40, 4000)}},
				{at(0, 50), map[string]balancer.ServerCounters{"web1": counters(100, 10000)}},
				{at(1, 5), map[string]balancer.ServerCounters{"web1": counters(120, 12000)}},
			},
			want: []store.HistoryBucket{
				{Server: "web1", Minute: at(0, 0), Requests: 100, Pinned: 50, NewSessions: 25, Errors: 11, BytesIn: 10000, BytesOut: 10000},
				{Server: "web1", Minute: at(1, 0), Requests: 20, Pinned: 10, NewSessions: 5, Errors: 2, BytesIn: 2000, BytesOut: 2000},
			},
		},
		{
			name: "clear counters all: what was counted since, never negative",
			steps: []step{
				{at(0, 10), map[string]balancer.ServerCounters{"web1": counters(1000, 5_000_000)}},
				{at(1, 10), map[string]balancer.ServerCounters{"web1": {}}},
				{at(1, 20), map[string]balancer.ServerCounters{"web1": counters(30, 3000)}},
			},
			want: []store.HistoryBucket{
				{Server: "web1", Minute: at(0, 0), Requests: 1000, Pinned: 500, NewSessions: 250, Errors: 101, BytesIn: 100000, BytesOut: 5_000_000},
				{Server: "web1", Minute: at(1, 0), Requests: 30, Pinned: 15, NewSessions: 7, Errors: 4, BytesIn: 3000, BytesOut: 3000},
			},
		},
		{
			name: "a server removed and added again counts from zero",
			steps: []step{
				{at(0, 10), map[string]balancer.ServerCounters{"web1": counters(10, 0), "web2": counters(500, 0)}},
				{at(0, 20), map[string]balancer.ServerCounters{"web1": counters(10, 0)}},
				{at(0, 30), map[string]balancer.ServerCounters{"web1": counters(10, 0), "web2": counters(8, 0)}},
			},
			want: []store.HistoryBucket{
				{Server: "web1", Minute: at(0, 0), Requests: 10, Pinned: 5, NewSessions: 2, Errors: 2, BytesIn: 1000},
				{Server: "web2", Minute: at(0, 0), Requests: 508, Pinned: 254, NewSessions: 127, Errors: 52, BytesIn: 50800},
			},
		},
		{
			name: "idle servers write nothing",
			steps: []step{
				{at(0, 10), map[string]balancer.ServerCounters{"web1": {}}},
				{at(3, 10), map[string]balancer.ServerCounters{"web1": {}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := storetest.Open(t)
			now := tt.steps[0].at
			r := newRecorder(slog.New(slog.DiscardHandler), nil, st,
				Options{Now: func() time.Time { return now }}.withDefaults())
			for _, s := range tt.steps {
				now = s.at
				r.record(snapOf(s.snap), s.at)
				r.write(context.Background()) // written in pieces: the store adds them up
			}
			got, err := st.History(context.Background(), store.HistoryQuery{Backend: "app", From: at(-1, 0), To: at(10, 0)})
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.want {
				tt.want[i].Backend = "app"
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("history\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestHistoryEventOf(t *testing.T) {
	at := time.Date(2026, 11, 30, 23, 0, 7, 0, time.UTC)
	console := balancer.Origin{Channel: "console", Actor: "alice", Command: "set server app/web1 addr 10.9.8.7"}
	ref := balancer.ServerRef{Backend: "app", Server: "web1"}
	tests := []struct {
		name string
		ev   balancer.Event
		want store.HistoryEvent
		ok   bool
	}{
		{"health", balancer.Event{Time: at, Kind: balancer.EventHealth, Backend: "app", Server: "web1", Message: "Server app/web1 is DOWN, reason: Layer4 connection problem"},
			store.HistoryEvent{Time: at, Backend: "app", Server: "web1", Kind: store.HistoryHealth, Message: "Server app/web1 is DOWN, reason: Layer4 connection problem"}, true},
		{"state", balancer.Event{Time: at, Kind: balancer.EventChange, Backend: "app", Server: "web1", Origin: console, Change: balancer.SetAdminState{ServerRef: ref, State: balancer.Maint}},
			store.HistoryEvent{Time: at, Backend: "app", Server: "web1", Kind: store.HistoryAdmin, Message: "state maint — by alice (console)"}, true},
		{"address, without the address", balancer.Event{Time: at, Kind: balancer.EventChange, Backend: "app", Server: "web1", Origin: balancer.Origin{Channel: "socket"},
			Change: balancer.SetAddr{ServerRef: ref, Address: "10.9.8.7", Port: 81, PortSet: true}, Message: "server app/web1 address set to 10.9.8.7 port 81"},
			store.HistoryEvent{Time: at, Backend: "app", Server: "web1", Kind: store.HistoryAdmin, Message: "address changed — by socket"}, true},
		{"added server", balancer.Event{Time: at, Kind: balancer.EventChange, Backend: "app", Change: balancer.AddServer{Backend: "app", Server: balancer.Server{Name: "web9", Address: "10.0.0.9"}}},
			store.HistoryEvent{Time: at, Backend: "app", Server: "web9", Kind: store.HistoryAdmin, Message: "added"}, true},
		{"backend-wide", balancer.Event{Time: at, Kind: balancer.EventChange, Backend: "app", Change: balancer.SetDynamicCookies{Backend: "app"}},
			store.HistoryEvent{Time: at, Backend: "app", Kind: store.HistoryAdmin, Message: "dynamic cookies disabled"}, true},
		{"counters cleared: not a state change", balancer.Event{Time: at, Kind: balancer.EventChange, Change: balancer.ClearCounters{All: true}}, store.HistoryEvent{}, false},
		{"warning", balancer.Event{Time: at, Kind: balancer.EventWarning, Backend: "app", Message: "same cookie"}, store.HistoryEvent{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := historyEvent(tt.ev)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("historyEvent = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
			if strings.Contains(got.Message, "10.") {
				t.Errorf("message %q shows an address", got.Message)
			}
		})
	}
}

// TestRecorderRecordsTrafficAndChanges runs the console with its store:
// requests through the frontend, an operator's change and a health
// transition end up in the history.
func TestRecorderRecordsTrafficAndChanges(t *testing.T) {
	e := newEnv(t, Options{})
	waitFor(t, 5*time.Second, "s1 up", func() bool { return e.server("s1").StatusText() == "UP" })
	for range 20 {
		resp, err := e.frontend.Client().Get(e.frontend.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if reply := e.disp.Execute(context.Background(), "set server servers/s2 state drain", balancer.LevelAdmin,
		balancer.Origin{Channel: "socket"}); strings.TrimSpace(reply) != "" {
		t.Fatalf("set state: %q", reply)
	}
	e.origins[2].stop()
	ctx := context.Background()
	q := store.HistoryQuery{Backend: "servers", From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}
	waitFor(t, 10*time.Second, "20 requests recorded", func() bool {
		sums, err := e.st.HistorySums(ctx, q, 2*time.Hour)
		return err == nil && len(sums) == 1 && sums[0].Requests == 20 && sums[0].BytesOut > 0
	})
	waitFor(t, 10*time.Second, "drain and s3 DOWN recorded", func() bool {
		evs, err := e.st.HistoryEvents(ctx, q)
		if err != nil {
			return false
		}
		var drain, down bool
		for _, ev := range evs {
			drain = drain || (ev.Server == "s2" && ev.Kind == store.HistoryAdmin && ev.Message == "state drain — by socket")
			down = down || (ev.Server == "s3" && ev.Kind == store.HistoryHealth && strings.Contains(ev.Message, "is DOWN"))
		}
		return drain && down
	})
}
