package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tether/balancer/e2etest"
	"tether/store"
	"tether/store/pgtest"
)

// TestFleetNodesStartTogether starts two nodes at once on an empty
// database, both with the configuration file and a console: the file is
// imported once, one admin user is created, and both nodes run.
func TestFleetNodesStartTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	type started struct {
		m    fleetMember
		done chan error
		out  *e2etest.Buffer
	}
	ctx, cancel := context.WithCancel(context.Background())
	var nodes []started
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		n := started{m: fleetMember{name: name, sock: filepath.Join(f.dir, name+".sock"), frontend: freeAddr(t)}, done: make(chan error, 1), out: &e2etest.Buffer{}}
		args := []string{"serve", "-db", url, "-node", name, "-f", f.cfg, "-stats-socket", n.m.sock, "-bind", "fe=" + n.m.frontend, "-console", freeAddr(t)}
		nodes = append(nodes, n)
		wg.Go(func() { n.done <- run(ctx, args, func(string) string { return "" }, nil, n.out, n.out) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, n := range nodes {
			// Each node has ended; waitSocket may have taken its error.
			select {
			case err := <-n.done:
				if err != nil {
					t.Errorf("node %s: %v", n.m.name, err)
				}
			default:
			}
			if t.Failed() {
				t.Logf("node %s's output:\n%s", n.m.name, n.out.String())
			}
		}
	})
	for _, n := range nodes {
		waitSocket(t, n.m.sock, n.done)
	}
	for _, n := range nodes {
		if body, _ := get(t, n.m.frontend, ""); body != "s1" && body != "s2" {
			t.Fatalf("node %s answered %q", n.m.name, body)
		}
	}
	admins := 0
	for _, n := range nodes {
		waitFor(t, "node "+n.m.name+"'s console", func() bool { return strings.Contains(n.out.String(), "Tether console: ") })
		if strings.Contains(n.out.String(), `Admin user "admin" created`) {
			admins++
		}
	}
	if admins != 1 {
		t.Errorf("%d nodes created the admin user, want one", admins)
	}

	st, err := store.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.CountUsers(context.Background()); err != nil || n != 1 {
		t.Errorf("%d users (%v), want one", n, err)
	}
	imports, err := st.ListAudit(context.Background(), store.AuditFilter{Channel: "import"})
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	for _, e := range imports {
		lines.WriteString(e.Source + ": " + e.Command + "\n")
	}
	if len(imports) != 1 {
		t.Errorf("%d imports, want one:\n%s", len(imports), lines.String())
	}
}
