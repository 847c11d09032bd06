package web

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"tether/store"
)

func TestSumFleet(t *testing.T) {
	tests := []struct {
		name string
		docs map[string]FleetCounters
		want FleetCounters
	}{
		{"no node", nil, FleetCounters{}},
		{"one node", map[string]FleetCounters{"a": {"be": {"s1": {1, 2, 3}}}}, FleetCounters{"be": {"s1": {1, 2, 3}}}},
		{"two nodes, same servers", map[string]FleetCounters{
			"a": {"be": {"s1": {1, 2, 3}, "s2": {10, 0, 10}}},
			"b": {"be": {"s1": {4, 5, 6}, "s2": {0, 1, 1}}},
		}, FleetCounters{"be": {"s1": {5, 7, 9}, "s2": {10, 1, 11}}}},
		{"a server or backend only one node has", map[string]FleetCounters{
			"a": {"be": {"s1": {1, 1, 1}}, "api": {"x": {2, 2, 2}}},
			"b": {"be": {"s1": {1, 1, 1}, "s9": {3, 3, 3}}},
		}, FleetCounters{"be": {"s1": {2, 2, 2}, "s9": {3, 3, 3}}, "api": {"x": {2, 2, 2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sumFleet(tt.docs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sumFleet = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeFleet is a registry with fixed nodes.
type fakeFleet struct {
	nodes  []store.Node
	newest int64
}

func (f fakeFleet) Nodes(context.Context) ([]store.Node, error)   { return f.nodes, nil }
func (f fakeFleet) JournalVersion(context.Context) (int64, error) { return f.newest, nil }

func TestNodeCountersBounded(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tt := range []struct {
		limit, want int
	}{{MaxFleetServers, 3}, {2, 2}, {0, 0}} {
		doc, err := nodeCounters(e.bal.Snapshot(), tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got FleetCounters
		if err := json.Unmarshal([]byte(doc), &got); err != nil {
			t.Fatalf("document %q: %v", doc, err)
		}
		if n := len(got["servers"]); n != tt.want {
			t.Errorf("limit %d: %d servers in %s, want %d", tt.limit, n, doc, tt.want)
		}
	}
}

// TestFleetPanel shows the registry's nodes on the overview with their
// status, and each backend's counters summed over the live nodes only; a
// single node shows no fleet panel.
func TestFleetPanel(t *testing.T) {
	now := time.Now()
	doc := func(s1, s2 int64) string {
		b, _ := json.Marshal(FleetCounters{"servers": {"s1": {Pinned: s1, New: 1, Requests: s1 * 2}, "s2": {Pinned: s2, New: 1, Requests: s2 * 2}}})
		return string(b)
	}
	fleet := fakeFleet{newest: 9, nodes: []store.Node{
		{Name: "a", Version: "v1", Applied: 9, Started: now.Add(-time.Hour), Heartbeat: now, ConsoleURL: "http://127.0.0.1:1/", Counters: doc(10, 20)},
		{Name: "b", Version: "v1", Applied: 8, Started: now.Add(-time.Minute), Heartbeat: now, Counters: doc(1, 2)},
		{Name: "c", Version: "v0", Applied: 3, Started: now.Add(-time.Hour), Heartbeat: now.Add(-time.Minute), Counters: doc(1000, 1000)},
	}}
	e := newEnv(t, Options{NodeName: "a", FleetPoll: 10 * time.Millisecond}, func(d *Deps) { d.Fleet = fleet })
	c := e.login("alice")
	waitFor(t, 5*time.Second, "the fleet read", func() bool { return e.srv.fleet.Load() != nil })
	_, _, body := e.get(c, "/")
	for _, want := range []string{
		`data-k="n:a"`, `data-k="n:b"`, `data-k="n:c"`, `href="http://127.0.0.1:1/"`, "(this node)",
		`<td class="st" data-f="st">up</td>`, `<td class="st" data-f="st">behind</td>`, `<td class="st" data-f="st">lost</td>`,
		// s1 summed over a and b (c is lost): 11 pinned, 2 new, 22 requests.
		`<tr data-k="fs:servers/s1"><th scope="row">s1</th><td class="n" data-f="pin">11</td><td class="n" data-f="new">2</td><td class="n" data-f="req">22</td>`,
		`<tr data-k="fs:servers/s2"><th scope="row">s2</th><td class="n" data-f="pin">22</td>`,
		`<tr data-k="fn:b|servers/s2"><th scope="row">b</th><td>s2</td><td class="n" data-f="pin">2</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %s", want)
		}
	}
	if strings.Contains(body, `data-k="fn:c|`) {
		t.Error("the lost node's counters are shown")
	}
	waitFor(t, 5*time.Second, "the fleet in the live updates", func() bool {
		h := e.srv.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.cur["n:b"]["st"] == "behind" && h.cur["fs:servers/s1"]["pin"] == "11" && h.cur["n:c"]["cls"] == "down"
	})

	single := newEnv(t, Options{})
	_, _, body = single.get(single.login("alice"), "/")
	if strings.Contains(body, `id="fleet"`) || strings.Contains(body, `data-k="fs:`) {
		t.Error("a single node shows a fleet panel")
	}
}
