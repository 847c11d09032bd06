package web

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/templates"
)

// Fleet is what the console reads of the fleet of nodes sharing its
// database. *store.Store satisfies it.
type Fleet interface {
	Nodes(ctx context.Context) ([]store.Node, error)
	JournalVersion(ctx context.Context) (int64, error)
}

// FleetCounters is the document a node publishes with its heartbeat:
// backend name → server name → the server's counters on that node.
type FleetCounters map[string]map[string]ServerTally

// ServerTally is one server's sticky counters on one node.
type ServerTally struct {
	// Pinned counts requests served by the server their cookie named.
	Pinned int64 `json:"pin"`
	// New counts persistent sessions assigned to the server.
	New int64 `json:"new"`
	// Requests counts the responses the server sent.
	Requests int64 `json:"req"`
}

func (t ServerTally) add(o ServerTally) ServerTally {
	return ServerTally{Pinned: t.Pinned + o.Pinned, New: t.New + o.New, Requests: t.Requests + o.Requests}
}

// MaxFleetServers bounds a node's counters document: servers beyond it
// (in configuration order) are left out, which keeps the document under
// some 300 KiB.
const MaxFleetServers = 4096

// NodeCounters returns the counters document of snap, encoded, with at
// most MaxFleetServers servers.
func NodeCounters(snap *balancer.Snapshot) (string, error) {
	return nodeCounters(snap, MaxFleetServers)
}

// nodeCounters is NodeCounters with at most limit servers.
func nodeCounters(snap *balancer.Snapshot, limit int) (string, error) {
	doc := make(FleetCounters, len(snap.Backends))
	n := 0
	for _, b := range snap.Backends {
		if n >= limit {
			break
		}
		servers := make(map[string]ServerTally, len(b.Servers))
		for _, sv := range b.Servers {
			if n >= limit {
				break
			}
			st := sv.Stats
			servers[sv.Config.Name] = ServerTally{Pinned: st.Sticky.Pinned, New: st.Sticky.NewSessions, Requests: st.TotalRequests}
			n++
		}
		doc[b.Config.Name] = servers
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// fleetView is the fleet as the console last read it.
type fleetView struct {
	nodes  []store.Node
	newest int64
	// counters are the live nodes' documents, by node name.
	counters map[string]FleetCounters
}

// sumFleet returns the tallies of every server summed over docs, by
// backend and server.
func sumFleet(docs map[string]FleetCounters) FleetCounters {
	out := make(FleetCounters)
	for _, doc := range docs {
		for b, servers := range doc {
			sum := out[b]
			if sum == nil {
				sum = make(map[string]ServerTally, len(servers))
				out[b] = sum
			}
			for s, t := range servers {
				sum[s] = sum[s].add(t)
			}
		}
	}
	return out
}

// readFleet reads the registry: every node, the newest journal version,
// and the counters of the nodes that are not lost as of now. A document
// that does not decode counts as none.
func (s *Server) readFleet(ctx context.Context, now time.Time) (*fleetView, error) {
	nodes, err := s.deps.Fleet.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	newest, err := s.deps.Fleet.JournalVersion(ctx)
	if err != nil {
		return nil, err
	}
	v := &fleetView{nodes: nodes, newest: newest, counters: make(map[string]FleetCounters)}
	for _, n := range nodes {
		if n.Lost(now, s.opts.FleetLostAfter) || n.Counters == "" {
			continue
		}
		var doc FleetCounters
		if err := json.Unmarshal([]byte(n.Counters), &doc); err != nil {
			s.log.Warn("node counters not read", "node", n.Name, "error", err)
			continue
		}
		v.counters[n.Name] = doc
	}
	return v, nil
}

// watchFleet reads the registry every Options.FleetPoll until ctx ends;
// the next live update shows it. A failed read keeps the last view (its
// nodes turn lost as their heartbeats age).
func (s *Server) watchFleet(ctx context.Context) {
	tick := time.NewTicker(s.opts.FleetPoll)
	defer tick.Stop()
	failing := false
	for {
		v, err := s.readFleet(ctx, s.opts.Now())
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			s.log.Warn("fleet registry not read", "error", err)
			failing = true
		case err == nil:
			s.fleet.Store(v)
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// nodeState maps a node status to the colour class of the legend.
func nodeState(status string) string {
	switch status {
	case store.NodeLost:
		return "down"
	case store.NodeBehind:
		return "goingdown"
	}
	return "up"
}

// fleetPanel returns the node list, nil outside a fleet.
func (s *Server) fleetPanel(now time.Time) *templates.FleetPanel {
	if s.deps.Fleet == nil {
		return nil
	}
	p := &templates.FleetPanel{Newest: fmtCount(0)}
	v := s.fleet.Load()
	if v == nil {
		return p
	}
	p.Newest = fmtCount(v.newest)
	for _, n := range v.nodes {
		st := n.Status(now, v.newest, s.opts.FleetLostAfter)
		row := templates.NodeRow{
			Key: "n:" + n.Name, Name: n.Name, Status: st, State: nodeState(st), Version: n.Version,
			Applied: fmtCount(n.Applied) + " / " + fmtCount(v.newest), Self: n.Name == s.opts.NodeName,
			Uptime: since(n.Heartbeat, n.Started), Beat: since(now, n.Heartbeat), ConsoleURL: n.ConsoleURL,
		}
		p.Nodes = append(p.Nodes, row)
	}
	return p
}

// fleetTallies returns a backend's rows summed over the live nodes, one
// per server of servers, and the per-node rows (node by node, servers in
// order); none outside a fleet.
func (s *Server) fleetTallies(backend string, servers []balancer.ServerStatus) (sum, perNode []templates.TallyRow) {
	if s.deps.Fleet == nil {
		return nil, nil
	}
	v := s.fleet.Load()
	if v == nil {
		return nil, nil
	}
	total := sumFleet(v.counters)[backend]
	names := make([]string, 0, len(v.counters))
	for n := range v.counters {
		names = append(names, n)
	}
	sort.Strings(names)
	row := func(key, node, server string, t ServerTally) templates.TallyRow {
		return templates.TallyRow{Key: key, Node: node, Server: server,
			Pinned: fmtCount(t.Pinned), New: fmtCount(t.New), Requests: fmtCount(t.Requests)}
	}
	for i := range servers {
		name := servers[i].Config.Name
		sum = append(sum, row("fs:"+backend+"/"+name, "", name, total[name]))
	}
	for _, node := range names {
		doc := v.counters[node][backend]
		for i := range servers {
			name := servers[i].Config.Name
			perNode = append(perNode, row("fn:"+node+"|"+backend+"/"+name, node, name, doc[name]))
		}
	}
	return sum, perNode
}

func nodeCells(n templates.NodeRow) map[string]string {
	return map[string]string{
		"st": n.Status, "cls": n.State, "app": n.Applied, "ver": n.Version, "up": n.Uptime, "hb": n.Beat,
		// A node's console moving changes the page's link.
		"sig": n.ConsoleURL,
	}
}

func tallyCells(t templates.TallyRow) map[string]string {
	return map[string]string{"pin": t.Pinned, "new": t.New, "req": t.Requests}
}
