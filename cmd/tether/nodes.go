package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"tether/store"
)

// lostAfter is how long a node may miss heartbeats before it shows as
// lost: three heartbeats.
const lostAfter = 3 * heartbeatEvery

// runNodes lists the nodes of the fleet sharing a PostgreSQL database, as
// their heartbeats last reported them.
func runNodes(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("nodes", stderr)
	db := fs.String("db", envOr(getenv, "TETHER_DB", ""), "postgres:// URL of the fleet's database (env TETHER_DB)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("nodes: unexpected argument %q", fs.Arg(0))
	}
	if !store.IsPostgresDSN(*db) {
		return errors.New("nodes: -db must be the postgres:// URL the fleet shares")
	}
	st, err := store.Open(ctx, *db, nil)
	if err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	defer st.Close()
	nodes, err := st.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	version, err := st.JournalVersion(ctx)
	if err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	writeNodes(stdout, nodes, version, time.Now())
	return nil
}

// writeNodes prints one line per node: its liveness, the journal version
// it applied against the newest, its uptime and console.
func writeNodes(w io.Writer, nodes []store.Node, newest int64, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tSTATUS\tAPPLIED\tUPTIME\tLAST HEARTBEAT\tVERSION\tCONSOLE\n")
	for _, n := range nodes {
		status := n.Status(now, newest, lostAfter)
		console := n.ConsoleURL
		if console == "" {
			console = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s ago\t%s\t%s\n", n.Name, status, n.Applied, newest,
			n.Heartbeat.Sub(n.Started).Round(time.Second), now.Sub(n.Heartbeat).Round(time.Second), n.Version, console)
	}
	tw.Flush()
}
