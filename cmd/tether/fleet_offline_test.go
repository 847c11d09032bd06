package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tether/balancer/e2etest"
	"tether/store/localcopy"
	"tether/store/pgtest"
)

// runFleetNode runs "tether serve" as node name of the fleet on url until
// the returned stop is called (or the test ends).
func runFleetNode(t *testing.T, url string, f fixture, name string, withFile bool) (fleetMember, func()) {
	t.Helper()
	m := fleetMember{name: name, sock: filepath.Join(f.dir, name+".sock"), frontend: freeAddr(t)}
	args := []string{"serve", "-db", url, "-node", name, "-stats-socket", m.sock, "-bind", "fe=" + m.frontend, "-console", ""}
	if withFile {
		args = append(args, "-f", f.cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs e2etest.Buffer
	go func() { done <- run(ctx, args, func(string) string { return "" }, nil, io.Discard, &logs) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("node %s's log:\n%s", name, logs.String())
		}
	}
	t.Cleanup(stop)
	waitSocket(t, m.sock, done)
	return m, stop
}

// TestFleetNodeStartsFromLocalCopy starts a node while PostgreSQL is down:
// from its local copy of the state it serves traffic and refuses changes,
// and once the database is back it catches up on the change another node
// made while it was stopped. A node without a local copy refuses to start.
func TestFleetNodeStartsFromLocalCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	a, stopA := runFleetNode(t, url, f, "a", true)
	b, _ := runFleetNode(t, url, f, "b", false)
	weightOn := func(n fleetMember, w string) func() bool {
		return func() bool { return strings.HasPrefix(exec1(t, n.sock, "get weight be/s1"), w+" ") }
	}
	set := func(n fleetMember, cmd string) {
		t.Helper()
		if out := exec1(t, n.sock, cmd); strings.TrimSpace(out) != "" {
			t.Fatalf("%s on node %s: %s", cmd, n.name, out)
		}
	}
	set(a, "set server be/s1 weight 40")
	waitFor(t, "weight 40 on b", weightOn(b, "40"))
	copyPath := filepath.Join(f.dir, "a.tether-state")
	waitFor(t, "a's local copy with weight 40", func() bool {
		c, err := localcopy.Read(copyPath)
		return err == nil && c.State.Servers["be/s1"].Weight == 40
	})
	if fi, err := os.Stat(copyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("a's local copy: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	stopA()
	set(b, "set server be/s1 weight 55")
	cluster.Stop(t)

	a, _ = runFleetNode(t, url, f, "a", true)
	if !weightOn(a, "40")() {
		t.Fatalf("a started offline with weight %q, want its local copy's 40", exec1(t, a.sock, "get weight be/s1"))
	}
	for range 4 {
		if body, _ := get(t, a.frontend, ""); body != "s1" && body != "s2" {
			t.Fatalf("a started offline answered %q", body)
		}
	}
	out := exec1(t, a.sock, "set server be/s2 weight 70")
	if !strings.Contains(out, "the shared database cannot be reached") {
		t.Fatalf("a change on a node started offline: %q, want it refused", out)
	}
	t.Logf("refused: %s", strings.TrimSpace(out))

	// A node that never ran has no copy: it refuses to start.
	err := run(context.Background(), []string{"serve", "-db", url, "-node", "z", "-stats-socket", filepath.Join(f.dir, "z.sock"), "-console", ""},
		func(string) string { return "" }, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no local copy") {
		t.Fatalf("a node without a local copy started with the database down: %v", err)
	}
	t.Logf("refused to start: %v", err)

	cluster.Restart(t)
	waitFor(t, "a catches up on b's change", weightOn(a, "55"))
	waitFor(t, "a change accepted on a once the database is back", func() bool {
		return strings.TrimSpace(exec1(t, a.sock, "set server be/s2 weight 70")) == ""
	})
	waitFor(t, "weight 70 on b", func() bool { return strings.HasPrefix(exec1(t, b.sock, "get weight be/s2"), "70 ") })
	waitFor(t, "a's local copy caught up", func() bool {
		c, err := localcopy.Read(copyPath)
		return err == nil && c.State.Servers["be/s2"].Weight == 70 && c.State.Servers["be/s1"].Weight == 55
	})
}
