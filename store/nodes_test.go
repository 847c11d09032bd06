package store_test

import (
	"context"
	"testing"
	"time"

	"tether/store"
	"tether/store/storetest"
)

func TestNodes(t *testing.T) { testNodes(t, storetest.Open(t)) }

// testNodes checks the node registry: a heartbeat adds or updates its
// node, and a node that stops beating is lost.
func testNodes(t *testing.T, s *store.Store) {
	ctx := context.Background()
	start := time.Unix(1_800_000_000, 0)
	beat := func(name string, applied int64, at time.Time) {
		t.Helper()
		err := s.Heartbeat(ctx, store.Node{Name: name, Version: "test", Applied: applied, Started: start, Heartbeat: at, ConsoleURL: "http://" + name + "/"})
		if err != nil {
			t.Fatal(err)
		}
	}
	beat("b", 3, start.Add(time.Second))
	beat("a", 1, start.Add(time.Second))
	beat("a", 7, start.Add(10*time.Second))
	counters := `{"be":{"s1":{"pin":3,"new":1,"req":9}}}`
	if err := s.Heartbeat(ctx, store.Node{Name: "c", Started: start, Heartbeat: start.Add(11 * time.Second), Counters: counters}); err != nil {
		t.Fatal(err)
	}
	nodes, err := s.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || nodes[0].Name != "a" || nodes[1].Name != "b" || nodes[2].Name != "c" {
		t.Fatalf("nodes = %+v, want a, b and c", nodes)
	}
	if nodes[2].Counters != counters || nodes[0].Counters != "" {
		t.Errorf("counters: a %q, c %q; want none and %q", nodes[0].Counters, nodes[2].Counters, counters)
	}
	a, b := nodes[0], nodes[1]
	if a.Applied != 7 || !a.Heartbeat.Equal(start.Add(10*time.Second)) || !a.Started.Equal(start) || a.ConsoleURL != "http://a/" {
		t.Errorf("node a = %+v, want its second heartbeat", a)
	}
	now := start.Add(12 * time.Second)
	if a.Lost(now, 5*time.Second) || !b.Lost(now, 5*time.Second) {
		t.Errorf("lost at %v: a %v, b %v; want only b", now, a.Lost(now, 5*time.Second), b.Lost(now, 5*time.Second))
	}
	for _, tt := range []struct {
		n    store.Node
		want string
	}{{a, store.NodeUp}, {b, store.NodeLost}, {nodes[2], store.NodeBehind}} {
		if got := tt.n.Status(now, 7, 5*time.Second); got != tt.want {
			t.Errorf("node %s: status %q, want %q", tt.n.Name, got, tt.want)
		}
	}
	if err := s.Heartbeat(ctx, store.Node{}); err == nil {
		t.Error("a heartbeat without a name was accepted")
	}
}
