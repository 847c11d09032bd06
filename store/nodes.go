package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Node is one node of a fleet sharing the database, as its last heartbeat
// reported it.
type Node struct {
	Name string
	// Version is the node's Tether version.
	Version string
	// Applied is the journal version the node had applied.
	Applied int64
	// Started is when the node started; Heartbeat when it last reported.
	Started, Heartbeat time.Time
	// ConsoleURL is the node's console, "" when it runs none.
	ConsoleURL string
	// Counters is the node's per-server counters as a JSON document the
	// node keeps small ("" when it published none).
	Counters string
}

// Node statuses, as Status reports them.
const (
	NodeUp     = "up"
	NodeBehind = "behind"
	NodeLost   = "lost"
)

// Status says how n stands as of now: lost when it missed its heartbeats
// for longer than lostAfter, behind when it had not applied the newest
// journal version, up otherwise.
func (n Node) Status(now time.Time, newest int64, lostAfter time.Duration) string {
	switch {
	case n.Lost(now, lostAfter):
		return NodeLost
	case n.Applied < newest:
		return NodeBehind
	}
	return NodeUp
}

// Lost reports whether n missed its heartbeats: none for longer than
// after, as of now.
func (n Node) Lost(now time.Time, after time.Duration) bool { return now.Sub(n.Heartbeat) > after }

// Heartbeat records n as the node's current report; n.Heartbeat defaults
// to now.
func (s *Store) Heartbeat(ctx context.Context, n Node) error {
	if n.Name == "" {
		return fmt.Errorf("heartbeat: a node needs a name")
	}
	if n.Heartbeat.IsZero() {
		n.Heartbeat = s.now()
	}
	// Not through write: a heartbeat touches no journal row, so it need
	// not wait for the journal's writers.
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO nodes (name, version, applied, started_ns, heartbeat_ns, console_url, counters)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version, applied = excluded.applied,
			started_ns = excluded.started_ns, heartbeat_ns = excluded.heartbeat_ns, console_url = excluded.console_url,
			counters = excluded.counters`,
		n.Name, n.Version, n.Applied, n.Started.UnixNano(), n.Heartbeat.UnixNano(), n.ConsoleURL, n.Counters)
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", n.Name, err)
	}
	return nil
}

// Nodes returns every node that ever reported, by name.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	err := eachRow(ctx, s.rdb, "SELECT name, version, applied, started_ns, heartbeat_ns, console_url, counters FROM nodes ORDER BY name",
		func(r *sql.Rows) error {
			var n Node
			var started, beat int64
			if err := r.Scan(&n.Name, &n.Version, &n.Applied, &started, &beat, &n.ConsoleURL, &n.Counters); err != nil {
				return err
			}
			n.Started, n.Heartbeat = time.Unix(0, started), time.Unix(0, beat)
			out = append(out, n)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}
