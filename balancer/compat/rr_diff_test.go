package compat

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/e2etest"
	"tether/balancer/haproxycfg"
	"tether/balancer/runtimeapi"
)

// rrOrigins is the number of origins started: enough for the largest
// random backend and the servers added to it.
const rrOrigins = 12

// rrRandomScenarios is the number of random scripts played for each of
// roundrobin and static-rr, on top of the written ones.
const rrRandomScenarios = 10

// rrScenario is a backend definition and a script: a step of digits sends
// that many requests, any other step is a Runtime API command sent to both
// HAProxy and Tether.
type rrScenario struct {
	name    string
	balance string
	// weights of web1..webN; 0 means the server line has no weight.
	weights []int
	steps   []string
}

// rrScenarios are shared by roundrobin and static-rr (static-rr refuses
// weights other than 0 and the initial one, and dynamic servers; those
// scenarios are roundrobin only).
var rrScenarios = []rrScenario{
	{name: "equal weights", balance: "roundrobin", weights: []int{1, 1, 1}, steps: []string{"9"}},
	{name: "weights 3/1/1", balance: "roundrobin", weights: []int{3, 1, 1}, steps: []string{"15"}},
	{name: "weights 1/2/3/4", balance: "roundrobin", weights: []int{1, 2, 3, 4}, steps: []string{"25"}},
	{name: "drain maint ready weight", balance: "roundrobin", weights: []int{1, 1, 1}, steps: []string{
		"4", "set server b/web2 state drain", "4", "set server b/web2 state ready", "6",
		"set server b/web2 state maint", "3", "set server b/web2 state ready", "6",
		"set server b/web1 weight 3", "10", "set server b/web1 weight 0", "5",
		"set server b/web1 weight 1", "7",
	}},
	{name: "weighted changes mid-round", balance: "roundrobin", weights: []int{1, 2, 3, 4}, steps: []string{
		"3", "set server b/web4 weight 1", "5", "set server b/web1 weight 10", "7",
		"set server b/web3 state maint", "4", "set server b/web2 weight 7", "6",
		"set server b/web3 state ready", "9", "set server b/web4 state drain", "5",
		"set server b/web4 state ready", "set server b/web1 weight 2", "12",
	}},
	{name: "add and delete servers", balance: "roundrobin", weights: []int{1, 1, 1}, steps: []string{
		"2", "add server b/web4 127.0.0.1:{port4} weight 2", "3", "set server b/web4 state ready", "8",
		"add server b/web5 127.0.0.1:{port5}", "set server b/web5 state ready", "7",
		"set server b/web2 state maint", "del server b/web2", "6",
		"set server b/web4 state maint", "4", "set server b/web4 state ready", "6",
	}},
	{name: "all down then back", balance: "roundrobin", weights: []int{2, 1}, steps: []string{
		"2", "set server b/web1 state maint", "set server b/web2 state maint", "2",
		"set server b/web2 state ready", "3", "set server b/web1 state ready", "6",
	}},
	{name: "backup servers", balance: "roundrobin", weights: []int{1, 1, -2, -1}, steps: []string{
		"3", "set server b/web1 state maint", "set server b/web2 state maint", "3",
		"set server b/web3 state maint", "3", "set server b/web3 state ready", "2",
		"set server b/web2 state ready", "3",
	}},
	{name: "static equal weights", balance: "static-rr", weights: []int{1, 1, 1}, steps: []string{
		"4", "set server b/web2 state drain", "4", "set server b/web2 state ready", "6",
		"set server b/web2 state maint", "3", "set server b/web2 state ready", "6",
		"set server b/web1 weight 0", "3", "set server b/web1 weight 1", "5",
	}},
	{name: "static weights 3/1/1", balance: "static-rr", weights: []int{3, 1, 1}, steps: []string{
		"7", "set server b/web1 state maint", "3", "set server b/web1 state ready", "11",
	}},
	{name: "static weights 2/4/6", balance: "static-rr", weights: []int{2, 4, 6}, steps: []string{
		"8", "set server b/web3 state drain", "5", "set server b/web3 state ready", "9",
		"set server b/web1 weight 0", "4", "set server b/web1 weight 2", "7",
	}},
	{name: "static backup servers", balance: "static-rr", weights: []int{1, 1, -2, -1}, steps: []string{
		"3", "set server b/web1 state maint", "set server b/web2 state maint", "3",
		"set server b/web3 state maint", "3", "set server b/web3 state ready", "2",
		"set server b/web2 state ready", "3",
	}},
}

// randomRRScenario makes a seeded script of requests and changes: state
// changes, weight changes (0 or the initial weight for static-rr), and for
// roundrobin servers added and deleted. Backends have 2 to maxOrigins-2
// servers, some of them backups, with weights up to 256.
func randomRRScenario(seed uint64, static bool, maxOrigins int) rrScenario {
	r := rand.New(rand.NewPCG(seed, 2026))
	sc := rrScenario{name: fmt.Sprintf("random %d", seed), balance: "roundrobin"}
	if static {
		sc.name, sc.balance = fmt.Sprintf("random static %d", seed), "static-rr"
	}
	n := 2 + r.IntN(maxOrigins-3)
	var live []int // server numbers in the backend
	weight := map[int]int{}
	for i := range n {
		w := 1 + r.IntN(8)
		if r.IntN(3) == 0 {
			w = 1 + r.IntN(256)
		}
		weight[i+1] = w
		if i >= 2 && r.IntN(5) == 0 {
			w = -w
		}
		sc.weights = append(sc.weights, w)
		live = append(live, i+1)
	}
	added := n
	for range 25 {
		sc.steps = append(sc.steps, strconv.Itoa(1+r.IntN(12)))
		num := live[r.IntN(len(live))]
		s := fmt.Sprintf("b/web%d", num)
		switch k := r.IntN(7); {
		case k == 0:
			sc.steps = append(sc.steps, "set server "+s+" state drain")
		case k == 1:
			sc.steps = append(sc.steps, "set server "+s+" state maint")
		case k == 2:
			sc.steps = append(sc.steps, "set server "+s+" state ready")
		case k == 3 && !static && added < maxOrigins:
			added++
			w := 1 + r.IntN(10)
			weight[added] = w
			live = append(live, added)
			sc.steps = append(sc.steps, fmt.Sprintf("add server b/web%d 127.0.0.1:{port%d} weight %d", added, added, w))
		case k == 4 && !static && len(live) > 2 && num > n:
			sc.steps = append(sc.steps, "set server "+s+" state maint", "del server "+s)
			live = slices.DeleteFunc(live, func(x int) bool { return x == num })
		case static:
			w := weight[num]
			if r.IntN(2) == 0 {
				w = 0
			}
			sc.steps = append(sc.steps, fmt.Sprintf("set server %s weight %d", s, w))
		default:
			sc.steps = append(sc.steps, fmt.Sprintf("set server %s weight %d", s, r.IntN(12)))
		}
	}
	return sc
}

// distinctPorts returns n loopback addresses free at the time of the call
// and distinct from each other.
func distinctPorts(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	lns := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve a loopback port: %v", err)
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// startRROrigins runs one HAProxy process serving origins web1..webN, each a
// frontend that answers with an X-Origin header naming it. Every HAProxy
// here runs with noreuseport: with SO_REUSEPORT, a port shared by accident
// with another process silently splits the connections between them.
func startRROrigins(t *testing.T, bin string, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global\n    noreuseport\n\n")
	cfg.WriteString("defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n")
	addrs := distinctPorts(t, n)
	ports := make([]string, n)
	for i, addr := range addrs {
		_, ports[i], _ = net.SplitHostPort(addr)
		fmt.Fprintf(&cfg, "frontend web%d\n    bind %s\n    http-request return status 200 hdr X-Origin web%d\n\n", i+1, addr, i+1)
	}
	startHAProxy(t, bin, filepath.Join(dir, "origins.cfg"), cfg.String(), "")
	for i := range n {
		waitHTTP(t, "http://127.0.0.1:"+ports[i]+"/")
	}
	return ports
}

// startHAProxy runs haproxy on cfg, waiting for the admin socket when one
// is given.
func startHAProxy(t *testing.T, bin, path, cfg, sock string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatalf("write haproxy configuration: %v", err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if sock == "" {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHTTP polls url until it answers.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rrBackend renders the backend section; a negative weight is a backup.
func rrBackend(sc rrScenario, ports []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "backend b\n    balance %s\n", sc.balance)
	for i, w := range sc.weights {
		fmt.Fprintf(&b, "    server web%d 127.0.0.1:%s", i+1, ports[i])
		switch {
		case w > 0:
			fmt.Fprintf(&b, " weight %d", w)
		case w < 0:
			fmt.Fprintf(&b, " weight %d backup", -w)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// origin asks base for one response and returns its X-Origin, or the
// status when no server answered.
func origin(t *testing.T, base string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", base, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if o := resp.Header.Get("X-Origin"); o != "" {
		return o
	}
	return strconv.Itoa(resp.StatusCode)
}

// runRRScript plays the script against one proxy and returns the servers
// chosen, with each command shown between bars.
func runRRScript(t *testing.T, sc rrScenario, ports []string, base string, command func(string) string) string {
	t.Helper()
	var out []string
	for _, st := range sc.steps {
		if n, err := strconv.Atoi(st); err == nil {
			for range n {
				out = append(out, origin(t, base))
			}
			continue
		}
		cmd := st
		for i, p := range ports {
			cmd = strings.ReplaceAll(cmd, fmt.Sprintf("{port%d}", i+1), p)
		}
		// Both refuse to delete a server while connections to it are
		// still closing after the last response: retry until they are gone.
		reply := strings.TrimSpace(command(cmd))
		for deadline := time.Now().Add(10 * time.Second); strings.Contains(reply, "still has connections") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			reply = strings.TrimSpace(command(cmd))
		}
		out = append(out, "| "+st+" |")
		if reply != "" && !strings.Contains(reply, "New server registered") && !strings.Contains(reply, "Server deleted") {
			t.Errorf("%q answered %q", cmd, reply)
		}
	}
	return strings.Join(out, " ")
}

// TestRoundRobinOrderMatchesHAProxy runs each scenario on HAProxy 2.6 and on
// Tether's proxy with the same origins and compares the sequence of servers
// chosen, across weight changes and servers leaving and returning.
func TestRoundRobinOrderMatchesHAProxy(t *testing.T) {
	bin := e2etest.RequireProgram(t, "haproxy")
	ports := startRROrigins(t, bin, rrOrigins)
	scenarios := slices.Clone(rrScenarios)
	for seed := range uint64(rrRandomScenarios) {
		scenarios = append(scenarios, randomRRScenario(seed, false, rrOrigins), randomRRScenario(seed, true, rrOrigins))
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, "haproxy.sock")
			binds := distinctPorts(t, 2)
			hBind, tBind := binds[0], binds[1]
			backend := rrBackend(sc, ports)
			hCfg := fmt.Sprintf(globalAndDefaults, "noreuseport\n    stats socket "+sock+" level admin") +
				"frontend fe\n    bind " + hBind + "\n    default_backend b\n\n" + backend
			startHAProxy(t, bin, filepath.Join(dir, "haproxy.cfg"), hCfg, sock)
			haproxyCmd := func(cmd string) string {
				c, err := net.Dial("unix", sock)
				if err != nil {
					t.Fatalf("connect to haproxy's socket: %v", err)
				}
				defer c.Close()
				io.WriteString(c, cmd+"\n")
				out, _ := io.ReadAll(c)
				return string(out)
			}

			want := runRRScript(t, sc, ports, "http://"+hBind, haproxyCmd)

			tCfg := "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n" +
				"frontend fe\n    bind " + tBind + "\n    default_backend b\n\n" + backend
			cfg, _, err := haproxycfg.Parse("tether.cfg", []byte(tCfg))
			if err != nil {
				t.Fatalf("parse configuration: %v", err)
			}
			b, err := balancer.New(cfg, balancer.Options{})
			if err != nil {
				t.Fatalf("start balancer: %v", err)
			}
			h, err := b.Handler("fe")
			if err != nil {
				t.Fatalf("frontend handler: %v", err)
			}
			ln, err := net.Listen("tcp", tBind)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: h}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close(); b.Close() })
			d := runtimeapi.NewDispatcher(b, runtimeapi.DispatcherOptions{})
			tetherCmd := func(cmd string) string {
				return d.Execute(context.Background(), cmd, balancer.LevelAdmin, balancer.Origin{Channel: "test"})
			}
			got := runRRScript(t, sc, ports, "http://"+tBind, tetherCmd)
			t.Logf("haproxy: %s", want)
			if got != want {
				t.Errorf("order differs\nhaproxy %s\ntether  %s", want, got)
			}
		})
	}
}
