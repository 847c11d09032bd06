// Command lbbench compares Tether, HAProxy and Caddy side by side on
// loopback: the same origins, the same workload, interleaved rounds, and a
// table of medians and ratios per workload.
//
//	go run ./cmd/lbbench [-workloads sticky,first-visit,tls,handshake,idle,tls-idle]
//	    [-rounds 3] [-duration 4s] [-conns 32] [-threads 1] [-origins 4] [-idle 5000]
//	    [-floors [-floor-work 10us]]
//	go run ./cmd/lbbench -against OTHER_TETHER_BINARY [-rounds 30] [-duration 3s] ...
//	go run ./cmd/lbbench -pgo cmd/tether/default.pgo [-duration 10s]
//
// Workloads:
//
//	sticky       keep-alive requests carrying a valid persistence cookie
//	first-visit  keep-alive requests without a cookie: a Set-Cookie on every response
//	tls          sticky over TLS keep-alive connections (HTTP/1.1)
//	handshake    sticky over TLS with "Connection: close": one handshake per request
//	idle         resident memory per idle keep-alive client connection
//	tls-idle     the same over TLS
//
// It needs wrk, haproxy and caddy on PATH (Debian packages); a proxy whose
// program is missing, or that refuses the configuration, is left out of
// the table with the reason.
//
// With -floors, the plain-HTTP workloads also measure two floor proxies:
// programs that do only what a cookie-persistence proxy must (see
// floor.go), one on goroutines and Go's poller, one on an epoll loop of
// its own. Their rows show what Go itself costs a request on the machine,
// which bounds what Tether can reach. -floor-work adds the same two
// floors spending that much CPU time on each request, standing for a
// proxy's own logic: what each design reaches with a given cost of
// parsing, rules and persistence.
//
// With -against, it compares two builds of Tether (haproxy still runs as
// the reference): after each workload's table, the median and quartiles
// of the rounds' ratios of the second to the first, req/s and CPU time
// per request. The machine's speed drifts by more than most changes
// gain; many short rounds, whose proxies run back to back, tell what a
// few long ones cannot.
//
// With -pgo, it measures nothing: it takes the CPU profile that
// cmd/tether/default.pgo holds (see pgo.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lbbench:", err)
		os.Exit(1)
	}
}

type options struct {
	rounds    int
	duration  time.Duration
	conns     int
	threads   int
	origins   int
	idleConns int
	tether    string
	// against is a second Tether binary, compared with the first.
	against string
	// floors adds the floor proxies to the plain-HTTP workloads, and
	// floorWork, when above 0, floors spending that much CPU time on each
	// request.
	floors    bool
	floorWork time.Duration
	// originsPID is the process serving the origins.
	originsPID int
}

// workload is one kind of traffic the proxies are compared on.
type workload struct {
	name string
	// tls serves the site over HTTPS.
	tls bool
	// sticky sends the persistence cookie learned on the first request.
	sticky bool
	// close sends "Connection: close", so each request opens a connection.
	close bool
	// idle measures memory per idle connection instead of running wrk.
	idle  bool
	about string
}

var workloads = []workload{
	{name: "sticky", sticky: true, about: "keep-alive, requests with a valid cookie"},
	{name: "first-visit", about: "keep-alive, requests without a cookie (Set-Cookie on every response)"},
	{name: "tls", tls: true, sticky: true, about: "TLS keep-alive, requests with a valid cookie"},
	{name: "handshake", tls: true, sticky: true, close: true, about: "TLS, one handshake per request (Connection: close)"},
	{name: "idle", idle: true, about: "resident memory per idle keep-alive client connection"},
	{name: "tls-idle", tls: true, idle: true, about: "resident memory per idle TLS keep-alive client connection"},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lbbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = w.name
	}
	list := fs.String("workloads", strings.Join(names, ","), "comma-separated workloads: "+strings.Join(names, ", "))
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds per proxy")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "wrk duration per run")
	fs.IntVar(&o.conns, "conns", 32, "wrk connections")
	fs.IntVar(&o.threads, "threads", 1, "wrk threads")
	fs.IntVar(&o.origins, "origins", 4, "origin servers")
	fs.IntVar(&o.idleConns, "idle", 5000, "idle connections opened by the idle workload")
	fs.StringVar(&o.tether, "tether", "", "tether binary (default: built from ./cmd/tether)")
	fs.StringVar(&o.against, "against", "", "a second tether binary to compare with the first, as "+tetherB+": haproxy and the two Tethers only, and each round's ratio of the second to the first, summed up as median and quartiles")
	fs.BoolVar(&o.floors, "floors", false, "also measure the floor proxies ("+floorGoroutines+", "+floorEpoll+") on plain HTTP: what Go costs a request before any proxy's own work")
	fs.DurationVar(&o.floorWork, "floor-work", 0, "with -floors, also measure the floors spending this much CPU time on each request (e.g. 10us), standing for a proxy's own work")
	pgoOut := fs.String("pgo", "", "instead of comparing, run Tether alone under the "+strings.Join(pgoWorkloads, ", ")+" workloads and write their merged CPU profile to this file (cmd/tether/default.pgo, which go build uses for profile-guided optimization)")
	originMode := fs.String("serve-origins", "", "internal: serve origins on these comma-separated addresses")
	floorMode := fs.String("serve-floor", "", "internal: serve a floor proxy (KIND[+WORK],LISTEN,ORIGIN,...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *originMode != "" {
		return serveOrigins(ctx, strings.Split(*originMode, ","))
	}
	if *floorMode != "" {
		return serveFloor(ctx, *floorMode)
	}
	if o.against != "" {
		if _, err := os.Stat(o.against); err != nil {
			return fmt.Errorf("-against: %w", err)
		}
	}
	var chosen []workload
	for _, n := range strings.Split(*list, ",") {
		i := slices.IndexFunc(workloads, func(w workload) bool { return w.name == strings.TrimSpace(n) })
		if i < 0 {
			return fmt.Errorf("unknown workload %q (want %s)", n, strings.Join(names, ", "))
		}
		chosen = append(chosen, workloads[i])
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk is not installed (apt-get install wrk)")
	}
	dir, err := os.MkdirTemp("", "lbbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	raiseFileLimit()

	originAddrs := freeAddrs(o.origins)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	origins := exec.CommandContext(ctx, self, "-serve-origins", strings.Join(originAddrs, ","))
	origins.Stderr = stderr
	if err := origins.Start(); err != nil {
		return fmt.Errorf("start origins: %w", err)
	}
	defer stopProcess(origins)
	o.originsPID = origins.Process.Pid
	for _, a := range originAddrs {
		if err := waitHTTP(ctx, "http://"+a+"/"); err != nil {
			return fmt.Errorf("origin %s: %w", a, err)
		}
	}
	tetherBin, err := buildTether(ctx, dir, o.tether)
	if *pgoOut != "" {
		if err != nil {
			return err
		}
		return writePGOProfile(ctx, o, dir, originAddrs, tetherBin, *pgoOut, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "tether left out:", err)
	}
	for _, w := range chosen {
		if err := runWorkload(ctx, w, o, dir, originAddrs, tetherBin, stdout, stderr); err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
	}
	return nil
}

// newSite prepares what the proxies serve for workload w, in a folder of
// its own under dir.
func newSite(w workload, o options, dir string, origins []string) (site, error) {
	s := site{dir: filepath.Join(dir, w.name), origins: origins, maxConn: 4096}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return s, err
	}
	if w.idle {
		s.maxConn = o.idleConns + 1000
	}
	if w.tls {
		c, err := writeCert(s.dir)
		if err != nil {
			return s, err
		}
		s.tls = c
	}
	return s, nil
}

// runWorkload starts the proxies for one workload, measures them and
// prints the workload's table.
func runWorkload(ctx context.Context, w workload, o options, dir string, origins []string, tetherBin string, stdout, stderr io.Writer) error {
	s, err := newSite(w, o, dir, origins)
	if err != nil {
		return err
	}
	proxies := startProxies(ctx, s, tetherBin, o, o.floors && !w.tls, stderr)
	defer func() {
		for _, p := range proxies {
			stopProcess(p.cmd)
		}
	}()
	if len(proxies) == 0 {
		return errors.New("no proxy could be started")
	}
	fmt.Fprintf(stdout, "\n== %s: %s\n", w.name, w.about)
	if w.idle {
		return measureIdle(ctx, proxies, o.idleConns, stdout, stderr)
	}
	fmt.Fprintf(stdout, "wrk -t%d -c%d -d%s, %d origins, %d interleaved rounds\n", o.threads, o.conns, o.duration, len(origins), o.rounds)
	order := slices.Clone(proxies)
	for round := 1; round <= o.rounds; round++ {
		for _, p := range order {
			res, err := runWrk(ctx, p, w, o)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", p.name, round, err)
			}
			p.results = append(p.results, res)
			fmt.Fprintf(stderr, "%s round %d %-8s %10.0f req/s  p50 %-8s p99 %-8s CPU/req %s  origins %s  idle %.0f%%\n", w.name, round, p.name, res.rps, res.p50, res.p99, res.cpu.Round(100*time.Nanosecond), res.originCPU.Round(100*time.Nanosecond), 100*res.idle)
		}
		// The next round runs them in the reverse order: each proxy's
		// runs follow as many of the others' as precede them.
		slices.Reverse(order)
	}
	printTable(stdout, proxies)
	printComparison(stdout, proxies)
	return nil
}

// raiseFileLimit lifts the open-file limit to its maximum for lbbench and
// the proxies it starts, which the idle workload needs.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
