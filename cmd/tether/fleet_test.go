package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tether/balancer/e2etest"
	"tether/balancer/runtimeapi"
	"tether/store"
	"tether/store/pgtest"
)

// fleetMember is one node of a fleet run in-process.
type fleetMember struct {
	name, sock, frontend string
}

// startFleetNode runs "tether serve" as one node of the fleet on url,
// with its own stats socket and frontend address, until the test ends.
func startFleetNode(t *testing.T, url string, f fixture, name string, withFile bool) fleetMember {
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("node %s's log:\n%s", name, logs.String())
		}
	})
	waitSocket(t, m.sock, done)
	return m
}

// get requests / from a frontend with cookie (none when "") and returns
// the body (the server's name) and the SRV cookie set.
func get(t *testing.T, frontend, cookie string) (body, setCookie string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+frontend+"/", nil)
	if cookie != "" {
		req.Header.Set("Cookie", "SRV="+cookie)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == "SRV" {
			setCookie = c.Value
		}
	}
	return string(b), setCookie
}

// TestFleetSharesChanges runs three nodes on one PostgreSQL database, one
// of them started with the configuration file: the others run what it
// stored, a change on any node's socket reaches every node, the dynamic
// cookies agree, and a client alternating between nodes keeps its server.
func TestFleetSharesChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	a := startFleetNode(t, url, f, "a", true)
	b := startFleetNode(t, url, f, "b", false)
	c := startFleetNode(t, url, f, "c", false)
	nodes := []fleetMember{a, b, c}

	agree := func(what, cmd string, norm func(string) string) {
		t.Helper()
		waitFor(t, what, func() bool {
			want := norm(exec1(t, a.sock, cmd))
			return norm(exec1(t, b.sock, cmd)) == want && norm(exec1(t, c.sock, cmd)) == want
		})
	}
	agree("the nodes to start on one state", "show servers state be", stableState)

	// A node refuses a change while another node's is not yet applied
	// there, so each change waits for the previous one everywhere.
	set := func(n fleetMember, cmd string) {
		t.Helper()
		if out := exec1(t, n.sock, cmd); strings.TrimSpace(out) != "" {
			t.Fatalf("%s on node %s: %s", cmd, n.name, out)
		}
	}
	set(a, "set server be/s1 weight 40")
	for _, n := range nodes {
		waitFor(t, "weight 40 on node "+n.name, func() bool { return strings.HasPrefix(exec1(t, n.sock, "get weight be/s1"), "40 ") })
	}
	set(b, "set server be/s2 state drain")
	agree("s2 drained everywhere", "show servers state be", stableState)
	if st := stableState(exec1(t, c.sock, "show servers state be")); !strings.Contains(st, " s2 ") {
		t.Fatalf("show servers state on c:\n%s", st)
	}
	set(c, "set server be/s2 state ready")
	agree("s2 ready everywhere", "show servers state be", stableState)

	before := cookieColumn(exec1(t, a.sock, "show stat"))
	set(a, "set dynamic-cookie-key backend be k2")
	agree("the new key's cookies on every node", "show stat", func(s string) string { return cookieColumn(s) })
	after := cookieColumn(exec1(t, c.sock, "show stat"))
	if after == before || !strings.Contains(after, "s1=") {
		t.Fatalf("cookies before the key change %q, after %q on c", before, after)
	}

	// A client sent to a server by one node keeps it on the others.
	for range 2 {
		server, cookie := get(t, b.frontend, "")
		if cookie == "" || !strings.Contains(after, server+"="+cookie) {
			t.Fatalf("node b sent the client to %q with cookie %q; cookies are %q", server, cookie, after)
		}
		for _, n := range []fleetMember{a, c, b} {
			if got, _ := get(t, n.frontend, cookie); got != server {
				t.Errorf("node %s sent cookie %s to %s, want %s", n.name, cookie, got, server)
			}
		}
	}

	// A reload on the node that runs the file reaches the others as a
	// whole state.
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "s3") }))
	t.Cleanup(origin.Close)
	cfg, err := os.ReadFile(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.cfg, append(cfg, "    server s3 "+origin.Listener.Addr().String()+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := exec1(t, a.sock, "reload"); !strings.Contains(out, "change(s) applied") {
		t.Fatalf("reload on a: %s", out)
	}
	agree("the reloaded servers everywhere", "show servers state be", stableState)
	if st := exec1(t, b.sock, "show servers state be"); !strings.Contains(st, " s3 ") {
		t.Fatalf("b after a's reload:\n%s", st)
	}

	// Every node reports itself, at the newest journal version.
	st, err := store.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	newest, err := st.JournalVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "heartbeats at the newest version", func() bool {
		reg, err := st.Nodes(context.Background())
		if err != nil || len(reg) != 3 {
			return false
		}
		return !slices.ContainsFunc(reg, func(n store.Node) bool { return n.Applied < newest || n.Lost(time.Now(), lostAfter) })
	})
	var out strings.Builder
	if err := run(context.Background(), []string{"nodes", "-db", url}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if !regexp.MustCompile(`(?m)^` + name + ` +up +\d+/\d+ `).MatchString(out.String()) {
			t.Errorf("tether nodes does not show node %s up:\n%s", name, out.String())
		}
	}
}

// TestFleetPropagation measures how long a change acknowledged on one
// node's socket takes to show on another's.
func TestFleetPropagation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	a := startFleetNode(t, url, f, "a", true)
	c := startFleetNode(t, url, f, "c", false)
	const n = 300
	took := make([]time.Duration, n)
	for i := range n {
		w := fmt.Sprint(10 + i%200)
		if out := exec1(t, a.sock, "set server be/s1 weight "+w); strings.TrimSpace(out) != "" {
			t.Fatal(out)
		}
		acked := time.Now()
		deadline := acked.Add(10 * time.Second)
		// Polled without a pause: each poll is one Runtime API round trip.
		for !strings.HasPrefix(exec1(t, c.sock, "get weight be/s1"), w+" ") {
			if time.Now().After(deadline) {
				t.Fatalf("weight %s not on c after 10 s", w)
			}
		}
		took[i] = time.Since(acked)
	}
	slices.Sort(took)
	t.Logf("acknowledged on a to visible on c's socket, %d changes: p50 %v, p90 %v, p99 %v, max %v", n, took[n/2], took[n*9/10], took[n*99/100], took[n-1])
}

// TestFleetSurvivesDatabaseOutage stops PostgreSQL under two nodes: both
// keep serving on their last state and refuse changes, and once it is
// back a change on one node reaches the other.
func TestFleetSurvivesDatabaseOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	a := startFleetNode(t, url, f, "a", true)
	b := startFleetNode(t, url, f, "b", false)
	weightOn := func(n fleetMember, w string) func() bool {
		return func() bool { return strings.HasPrefix(exec1(t, n.sock, "get weight be/s1"), w+" ") }
	}
	if out := exec1(t, a.sock, "set server be/s1 weight 40"); strings.TrimSpace(out) != "" {
		t.Fatal(out)
	}
	waitFor(t, "weight 40 on b", weightOn(b, "40"))

	cluster.Stop(t)
	for _, n := range []fleetMember{a, b} {
		for range 4 {
			if body, _ := get(t, n.frontend, ""); body != "s1" && body != "s2" {
				t.Fatalf("node %s answered %q while the database is down", n.name, body)
			}
		}
	}
	out := exec1(t, a.sock, "set server be/s1 weight 50")
	if !strings.Contains(out, "the shared database cannot be reached") {
		t.Fatalf("a change while the database is down: %q, want it refused", out)
	}
	t.Logf("refused while the database is down: %s", strings.TrimSpace(out))
	if !weightOn(a, "40")() {
		t.Fatal("a refused change changed the weight")
	}

	cluster.Restart(t)
	waitFor(t, "a change accepted once the database is back", func() bool {
		return strings.TrimSpace(exec1(t, a.sock, "set server be/s1 weight 60")) == ""
	})
	waitFor(t, "weight 60 on b", weightOn(b, "60"))
}

// TestMigrateStoreToFleet moves a single node's database into PostgreSQL:
// a node started on it runs the same servers with the same runtime
// changes, and a second copy into it is refused.
func TestMigrateStoreToFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	f := newFixture(t, 2)
	stop := f.serve(t)
	exec1(t, f.sock, "set server be/s1 weight 33")
	exec1(t, f.sock, "set server be/s2 state drain")
	want := stableState(exec1(t, f.sock, "show servers state be"))
	stop()

	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	var out strings.Builder
	args := []string{"migrate-store", "-from", f.db, "-to", url}
	if err := run(context.Background(), args, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatalf("migrate-store: %v", err)
	}
	if !strings.Contains(out.String(), "journal ") {
		t.Errorf("migrate-store said %q", out.String())
	}
	if err := run(context.Background(), args, func(string) string { return "" }, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second migrate-store into the same database: %v, want it refused", err)
	}
	n := startFleetNode(t, url, f, "a", false)
	if got := stableState(exec1(t, n.sock, "show servers state be")); got != want {
		t.Errorf("show servers state on the fleet node:\n%s\nwant (single node):\n%s", got, want)
	}
}

// TestFleetNodeKilledMidChange kills a node with SIGKILL while a client
// streams changes to its socket: the other node has every change the
// killed one acknowledged (and at most the one in flight), and the killed
// node, started again, runs the same.
func TestFleetNodeKilledMidChange(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL and the binary")
	}
	bin := tetherBinary(t)
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	b := startFleetNode(t, url, f, "b", true)
	sock := filepath.Join(f.dir, "a.sock")
	weight := func(sock string) int {
		got, _ := strconv.Atoi(strings.Fields(exec1(t, sock, "get weight be/s1"))[0])
		return got
	}
	for round := range 5 {
		cmd := exec.Command(bin, "serve", "-db", url, "-node", "a", "-stats-socket", sock, "-bind", "fe="+freeAddr(t), "-console", "")
		var logs e2etest.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		waitSocket(t, sock, done)
		waitFor(t, fmt.Sprintf("round %d: the restarted node on the other's weight", round), func() bool { return weight(sock) == weight(b.sock) })

		acked := -1
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			for w := 1; ; w++ {
				cl, err := runtimeapi.Dial(context.Background(), sock)
				if err != nil {
					return
				}
				reply, err := cl.Exec(context.Background(), fmt.Sprintf("set server be/s1 weight %d", w%256))
				if err != nil || reply != "\n" {
					return
				}
				acked = w % 256
			}
		}()
		time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond) // let changes stream before the kill
		cmd.Process.Kill()
		<-done
		<-stopped
		if acked < 0 {
			t.Fatalf("round %d: no change acknowledged before the kill\n%s", round, logs.String())
		}
		waitFor(t, "the acknowledged weight on b", func() bool {
			w := weight(b.sock)
			return w == acked || w == (acked+1)%256
		})
	}
}

// TestFleetDatabaseCrashUnderLoad crashes PostgreSQL (immediate stop)
// while wrk loads two nodes and a client streams changes to one of them,
// then starts it again: no request fails, every acknowledged change is
// kept, and both nodes end on the same state.
func TestFleetDatabaseCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL under load")
	}
	wrk := e2etest.RequireProgram(t, "wrk")
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	a := startFleetNode(t, url, f, "a", true)
	b := startFleetNode(t, url, f, "b", false)

	var loads []*exec.Cmd
	var reports []*strings.Builder
	for _, n := range []fleetMember{a, b} {
		load := exec.Command(wrk, "-t1", "-c8", "-d3s", "http://"+n.frontend+"/")
		var report strings.Builder
		load.Stdout, load.Stderr = &report, &report
		if err := load.Start(); err != nil {
			t.Fatal(err)
		}
		loads, reports = append(loads, load), append(reports, &report)
	}

	stop := make(chan struct{})
	streamed := make(chan [2]int) // last acknowledged weight, last sent
	go func() {
		acked, sent := -1, -1
		defer func() { streamed <- [2]int{acked, sent} }()
		for w := 1; ; w++ {
			select {
			case <-stop:
				return
			default:
			}
			cl, err := runtimeapi.Dial(context.Background(), a.sock)
			if err != nil {
				return
			}
			sent = 1 + w%255
			if reply, err := cl.Exec(context.Background(), fmt.Sprintf("set server be/s1 weight %d", sent)); err == nil && reply == "\n" {
				acked = sent
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // changes and load run before the crash
	cluster.Crash(t)
	time.Sleep(500 * time.Millisecond) // and while the database is down
	cluster.Restart(t)
	time.Sleep(time.Second) // and once it is back
	close(stop)
	last := <-streamed

	for i, load := range loads {
		if err := load.Wait(); err != nil {
			t.Fatalf("wrk: %v\n%s", err, reports[i])
		}
		rep := reports[i].String()
		if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(rep); m == nil || m[1] == "0" {
			t.Fatalf("wrk sent no request:\n%s", rep)
		}
		for _, bad := range []string{"Socket errors", "Non-2xx or 3xx responses"} {
			if strings.Contains(rep, bad) {
				t.Errorf("requests failed while the database crashed: %s\n%s", bad, rep)
			}
		}
	}
	weight := func(n fleetMember) int {
		got, _ := strconv.Atoi(strings.Fields(exec1(t, n.sock, "get weight be/s1"))[0])
		return got
	}
	if last[0] < 0 {
		t.Fatal("no change was acknowledged")
	}
	// The last change sent may have been committed even if its reply was
	// lost with the connection: then every node applies it.
	waitFor(t, fmt.Sprintf("both nodes on the last acknowledged weight %d (or %d, sent last)", last[0], last[1]), func() bool {
		wa, wb := weight(a), weight(b)
		return wa == wb && (wa == last[0] || wa == last[1])
	})
}

// TestFleetKeyGrace: a key rotated with a grace window on one node is
// honoured by every node: a client holding a cookie of the old key keeps
// its server on any node and gets the new key's cookie.
func TestFleetKeyGrace(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f := newFixture(t, 2)
	a := startFleetNode(t, url, f, "a", true)
	b := startFleetNode(t, url, f, "b", false)
	waitFor(t, "the nodes to start on one state", func() bool {
		return cookieColumn(exec1(t, a.sock, "show stat")) == cookieColumn(exec1(t, b.sock, "show stat"))
	})
	server, oldCookie := get(t, b.frontend, "")
	if oldCookie == "" {
		t.Fatal("no cookie on a first visit")
	}
	if out := exec1(t, a.sock, "set dynamic-cookie-key backend be rotated-key grace 10m"); strings.TrimSpace(out) != "" {
		t.Fatalf("rotation on a: %s", out)
	}
	waitFor(t, "the new key on b", func() bool {
		return cookieColumn(exec1(t, b.sock, "show stat")) == cookieColumn(exec1(t, a.sock, "show stat")) &&
			!strings.Contains(cookieColumn(exec1(t, b.sock, "show stat")), server+"="+oldCookie)
	})
	for _, n := range []fleetMember{b, a} {
		got, reissued := get(t, n.frontend, oldCookie)
		if got != server {
			t.Errorf("node %s sent the old-key cookie to %q, want %q", n.name, got, server)
		}
		if reissued == "" || reissued == oldCookie || !strings.Contains(cookieColumn(exec1(t, n.sock, "show stat")), server+"="+reissued) {
			t.Errorf("node %s re-issued %q for %s; cookies are %q", n.name, reissued, server, cookieColumn(exec1(t, n.sock, "show stat")))
		}
	}
	if out := exec1(t, b.sock, "show dynamic-cookie-grace be"); !strings.Contains(out, "be") {
		t.Errorf("show dynamic-cookie-grace on b:\n%s", out)
	}
}

// TestFleetNodeChangesRightAfterImport: the node that imported the file
// has applied its own import, so a change made as soon as its socket
// answers is not refused as a conflict with that import.
func TestFleetNodeChangesRightAfterImport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	cluster := pgtest.Start(t)
	for round := range 3 {
		url := cluster.NewDatabase(t)
		f := newFixture(t, 2)
		a := startFleetNode(t, url, f, fmt.Sprintf("a%d", round), true)
		if out := exec1(t, a.sock, "set server be/s1 weight 7"); strings.TrimSpace(out) != "" {
			t.Fatalf("round %d: a change right after the import: %s", round, out)
		}
	}
}
