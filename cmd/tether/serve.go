package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"tether/balancer"
	"tether/balancer/accesslog"
	"tether/balancer/connlimit"
	"tether/balancer/discovery"
	"tether/balancer/runtimeapi"
	"tether/store"
	"tether/store/localcopy"
	"tether/web"
)

// serveConfig is what the serve subcommand's flags and environment say.
type serveConfig struct {
	file        string
	db          string
	console     string
	socket      string
	demoTraffic bool
	logLevel    string
	// auditRetention is how long audit entries are kept; 0 keeps them all.
	auditRetention time.Duration
	// historyRetention is how long per-server minute history is kept.
	historyRetention time.Duration
	// secureCookies marks the console's session cookie Secure.
	secureCookies bool
	// metricsToken is the bearer token /metrics requires ("" for none).
	metricsToken string
	// metricsHosts are the only Host names /metrics answers on.
	metricsHosts string
	// node names this node in a fleet sharing a PostgreSQL database.
	node string
	// statsSocket replaces the configuration's stats sockets on this node.
	statsSocket string
	// binds replace frontends' bind addresses on this node.
	binds bindFlag
	// stateDir is where a fleet node keeps its local copy of the state.
	stateDir string
	// cpuProfile, when set, is where a CPU profile of the whole run is
	// written, for `go tool pprof`.
	cpuProfile string
}

func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := serveConfig{binds: bindFlag{}}
	hostname, _ := os.Hostname()
	fs.StringVar(&c.file, "f", "", "HAProxy-syntax config file to run (imported into the database when it changed)")
	fs.StringVar(&c.db, "db", envOr(getenv, "TETHER_DB", "tether.db"), "SQLite database file, or a postgres:// URL shared by a fleet of nodes (env TETHER_DB)")
	fs.StringVar(&c.node, "node", envOr(getenv, "TETHER_NODE", hostname), "this node's name in a fleet sharing a PostgreSQL database (env TETHER_NODE)")
	fs.StringVar(&c.statsSocket, "stats-socket", "", "node-local Runtime API socket (admin level) that replaces the configuration's 'stats socket' lines")
	fs.StringVar(&c.stateDir, "state-dir", getenv("TETHER_STATE_DIR"), "directory where a fleet node keeps its local copy of the state, NODE.tether-state, to start from while PostgreSQL is down; empty for beside -stats-socket, else the working directory (env TETHER_STATE_DIR)")
	fs.Var(c.binds, "bind", "node-local `FRONTEND=ADDR[,ADDR...]` replacing a frontend's configured bind addresses; repeat for several frontends")
	fs.StringVar(&c.console, "console", envOr(getenv, "TETHER_CONSOLE", "127.0.0.1:9090"), "console listen address; empty disables it (env TETHER_CONSOLE)")
	fs.StringVar(&c.socket, "socket", envOr(getenv, "TETHER_SOCKET", "tether.sock"), "admin Runtime API socket used when the config declares no 'stats socket'; empty for none")
	fs.BoolVar(&c.demoTraffic, "demo-traffic", false, "send a trickle of client traffic through the demo frontend so the console moves")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&c.historyRetention, "history-retention", 24*time.Hour, "keep per-server minute history (the console's charts) this long")
	fs.DurationVar(&c.auditRetention, "audit-retention", 0, "delete audit entries older than this (e.g. 2160h for 90 days); 0 keeps them all")
	fs.BoolVar(&c.secureCookies, "console-secure-cookies", getenv("TETHER_CONSOLE_SECURE_COOKIES") != "", "mark the console's session cookie Secure, for a console behind a TLS terminator (env TETHER_CONSOLE_SECURE_COOKIES)")
	fs.StringVar(&c.metricsToken, "metrics-token", getenv("TETHER_METRICS_TOKEN"), "bearer token that /metrics requires; empty for none (env TETHER_METRICS_TOKEN)")
	fs.StringVar(&c.cpuProfile, "cpu-profile", "", "write a CPU profile of the run (pprof format) to this file when Tether stops")
	fs.StringVar(&c.metricsHosts, "metrics-hosts", "", "comma-separated host names /metrics answers on (e.g. localhost,127.0.0.1); empty for any")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	return c, nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// runServe runs the balancer, its sockets, the console and discovery until
// ctx is done, then shuts them down in order.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sc, err := parseServeFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, sc.logLevel)
	if err != nil {
		return err
	}
	// Like HAProxy, use every descriptor the hard limit allows.
	fdLimit, err := connlimit.RaiseFileLimit()
	if err != nil {
		log.Warn("file descriptor limit", "error", err)
	}
	if sc.cpuProfile != "" {
		stop, err := startCPUProfile(sc.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if getenv("GOGC") == "" {
		// A proxy allocates short-lived request state at a high rate and
		// keeps little: collecting less often buys throughput for memory.
		debug.SetGCPercent(400)
	}
	// SIGUSR2 (what HAProxy's systemd unit sends its master) and SIGHUP
	// reload the configuration file. They are caught from the start, so
	// one sent while starting is not lost (nor, for SIGHUP, fatal): it is
	// handled once serving.
	reloads := make(chan os.Signal, 1)
	signal.Notify(reloads, syscall.SIGUSR2, syscall.SIGHUP)
	defer signal.Stop(reloads)

	// Claim the database before reading or writing it: a second process on
	// the same file must not replace the first one's state.
	// A PostgreSQL database is shared by design: the journal's version
	// check keeps its nodes apart.
	fleet := store.IsPostgresDSN(sc.db)
	if !fleet {
		lock, err := store.Lock(sc.db)
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	copyPath := localCopyPath(sc)
	st, err := store.Open(ctx, sc.db, log.With("component", "store"))
	// offline is the local copy a fleet node starts from while its
	// database cannot be reached.
	var offline *localcopy.Copy
	if err != nil {
		if !fleet {
			return err
		}
		if st, offline, err = openOffline(sc.db, copyPath, err, log); err != nil {
			return err
		}
	}
	defer st.Close()

	// Nodes starting together on an empty database seed it once: each
	// plans, stores what it runs and makes sure of the first admin user
	// in turn.
	releaseStart := func() {}
	if offline == nil {
		if releaseStart, err = st.LockStart(ctx); err != nil {
			return err
		}
	}
	defer func() { releaseStart() }()
	var plan startPlan
	if offline != nil {
		plan = startPlan{state: offline.State, version: offline.Version}
		if sc.file != "" {
			log.Warn("the configuration file is not imported while the shared database cannot be reached; reload once it is back", "file", sc.file)
		}
	} else if plan, err = planStart(ctx, st, sc.file, stderr, log); err != nil {
		return err
	}
	state := plan.state
	if err := sc.binds.check(state.Config); err != nil {
		return err
	}
	var node *fleetNode
	committer := st.Committer()
	if fleet {
		node = newFleetNode(sc.node, st, plan.version, log)
		committer = node.commit
	}
	resolved, initErrs := discovery.InitAddrs(ctx, state.Config, nil, lastAddrs(state))
	for _, e := range initErrs {
		log.Warn("init-addr", "error", e)
	}
	// Frontends with "option httplog" or a "log-format" write their
	// access log here, each output through a bounded queue: standard
	// output, standard error and syslog servers over UDP.
	accessLogs := map[string]*accesslog.Logger{
		accesslog.Stdout: accesslog.New(stdout, accesslog.DefaultCapacity),
		accesslog.Stderr: accesslog.New(stderr, accesslog.DefaultCapacity),
		accesslog.Syslog: accesslog.NewSyslog(accesslog.DefaultCapacity),
	}
	bal, err := balancer.New(state.Config, balancer.Options{
		Logger:     log.With("component", "balancer"),
		Committer:  committer,
		Runtime:    withInitAddrs(state, resolved),
		AccessLogs: accessLogs,
	})
	if err != nil {
		return err
	}
	defer bal.Close()

	var wg sync.WaitGroup
	runCtx, stopRunners := context.WithCancel(context.Background())
	defer func() { stopRunners(); wg.Wait() }()
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("stopped", "component", name, "error", err)
			}
		}()
	}

	sockets := state.Config.Global.StatsSockets
	if len(sockets) == 0 && sc.socket != "" {
		sockets = []balancer.StatsSocket{{Address: sc.socket, Level: balancer.LevelAdmin}}
	}
	if sc.statsSocket != "" {
		sockets = []balancer.StatsSocket{{Address: sc.statsSocket, Level: balancer.LevelAdmin}}
	}
	// Global maxconn, before anything listens: like HAProxy, refuse to
	// start when the descriptors it needs are not there.
	conns, err := connlimit.PlanMaxConn(state.Config.Global.MaxConn, fdLimit, countSockets(state.Config, len(sockets), sc.console != ""))
	if err != nil {
		return err
	}
	log.Info("maxconn", "global", conns.MaxConn, "derived_from_fd_limit", conns.Derived, "ulimit_n", conns.FDLimit, "maxsock", conns.MaxSock)
	globalLimit := connlimit.NewLimit(conns.MaxConn)

	// ready holds Runtime API commands until what runs is stored.
	ready := make(chan struct{})
	refused := newRefusalAudit(st, log)
	binds := newFrontendBinds(log, bal, globalLimit)
	binds.local = sc.binds
	reload := &reloader{file: sc.file, bal: bal, binds: binds, log: log}
	resolver := discovery.New(state.Config, bal, log)
	dispatcher := runtimeapi.NewDispatcher(bal, runtimeapi.DispatcherOptions{
		Logger:        log,
		ShowResolvers: resolver.WriteShowResolvers,
		Audit:         refused.record,
		MaxConn:       conns,
		Conns:         globalLimit,
		Ready:         ready,
		Certificates:  binds.certificates,
		Reload: func(ctx context.Context, o balancer.Origin) (string, error) {
			changes, err := reload.reload(ctx, "socket "+o.Source)
			logReload(log, changes, err)
			if err != nil {
				return "", err
			}
			return reportReload(changes, nil), nil
		},
	})

	// Bind every listener before writing anything: a start that fails on a
	// busy port leaves the database as it was.
	frontends, err := binds.listen(state.Config)
	if err != nil {
		return err
	}
	defer frontends.abort()
	var listeners []*runtimeapi.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, sock := range sockets {
		l, err := runtimeapi.Listen(ctx, sock, dispatcher, state.Config.Global)
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
		log.Info("runtime API listening", "socket", sock.Address, "level", levelOr(sock.Level))
	}
	var consoleLn net.Listener
	if sc.console != "" {
		consoleLn, err = net.Listen("tcp", sc.console)
		if err != nil {
			return fmt.Errorf("console: listen on %s: %w", sc.console, err)
		}
		defer consoleLn.Close()
	}

	// Everything is bound: store what runs, in one transaction.
	if offline == nil {
		wrote, err := storeRunning(ctx, st, plan, bal.State())
		if err != nil {
			return err
		}
		if node != nil && wrote > 0 {
			// The row this node just wrote holds what it runs: it has
			// applied it, unless another node's row came in between.
			if next, err := st.JournalAfter(ctx, plan.version, 1); err == nil && len(next) == 1 && next[0].Version == wrote {
				node.advance(wrote)
				plan.version = wrote
			}
		}
	}
	var saver *localcopy.Saver
	if node != nil {
		saver = localcopy.NewSaver(copyPath, log.With("component", "local copy"))
		saver.Offer(localcopy.Copy{Version: plan.version, State: bal.State()})
		node.saver = saver
	}
	var password string
	var adminCreated bool
	if consoleLn != nil && offline != nil {
		log.Warn("console sign-ins are checked against the shared database: they fail until it is back")
	} else if consoleLn != nil {
		password, adminCreated, err = ensureAdmin(ctx, st, getenv)
		if errors.Is(err, errAdminPasswordIgnored) {
			fmt.Fprintln(stdout, err)
			log.Warn(err.Error())
		} else if err != nil {
			return err
		}
	}
	releaseStart()
	releaseStart = func() {}

	demo := isDemo(state.Config)
	if demo {
		origins, err := startDemoOrigins(state.Config)
		if err != nil {
			log.Warn("demo origins not started", "error", err)
		}
		defer func() {
			for _, o := range origins {
				o.Close()
			}
		}()
	}

	var servers []*http.Server
	errc := make(chan error, 16)
	binds.apply(frontends)
	// Commands wait until the frontends run: "set ssl cert" needs their
	// certificates.
	close(ready)
	if consoleLn != nil {
		deps := web.Deps{Balancer: bal, Runtime: dispatcher, Sessions: st, Users: st, Audit: st, History: st, Certificates: binds.certificates}
		if fleet {
			deps.Fleet = st
		}
		console := web.NewServer(log, deps, web.Options{
			Socat: socatAddress(sockets), SecureCookies: sc.secureCookies,
			MetricsToken: sc.metricsToken, MetricsHosts: splitList(sc.metricsHosts),
			HistoryRetention: sc.historyRetention, NodeName: sc.node, FleetLostAfter: lostAfter,
		})
		srv := newConsoleServer(console, log, consoleTimeouts{Head: consoleHeadTimeout, Request: consoleRequestTimeout, Idle: consoleIdleTimeout})
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(consoleLn) }()
		fmt.Fprintf(stdout, "Tether console: http://%s/\n", consoleLn.Addr())
		if adminCreated {
			fmt.Fprintf(stdout, "Admin user \"admin\" created with password: %s\n(shown once; change it on the Users page)\n", password)
		}
		goRun("web", console.Run)
	}
	if plan.seeded {
		fmt.Fprintln(stdout, "Empty database: seeded the demo backend over three built-in origins.")
	}
	goRun("health", bal.Run)
	// The access logs stop after the frontends: their last lines are
	// written.
	goRun("access log stdout", accessLogs["stdout"].Run)
	goRun("access log stderr", accessLogs["stderr"].Run)
	goRun("access log syslog", accessLogs[accesslog.Syslog].Run)
	goRun("audit", refused.Run)
	if sc.auditRetention > 0 {
		goRun("audit-retention", func(ctx context.Context) error { return pruneAudit(ctx, st, sc.auditRetention, log) })
	}
	goRun("discovery", resolver.Run)
	goRun("memory", releaseMemoryWhenQuiet)
	goRun("certificates", binds.followCertificates)
	if node != nil {
		node.bal = bal
		node.replace = func(next balancer.State, o balancer.Origin) error {
			reload.mu.Lock()
			defer reload.mu.Unlock()
			plan, err := binds.listen(next.Config)
			if err != nil {
				return err
			}
			if err := bal.Replace(next, o, "the state another node stored"); err != nil {
				plan.abort()
				return err
			}
			binds.apply(plan)
			return nil
		}
		if consoleLn != nil {
			node.consoleURL = "http://" + consoleLn.Addr().String() + "/"
		}
		goRun("local copy", saver.Run)
		if offline != nil {
			goRun("migrate", func(ctx context.Context) error { return migrateOnceBack(ctx, st, log) })
		}
		goRun("fleet", node.follow)
		goRun("heartbeat", node.heartbeat)
		log.Info("fleet node following the journal", "node", sc.node, "version", plan.version)
	}
	if sc.demoTraffic {
		goRun("demo-traffic", func(ctx context.Context) error { return demoTraffic(ctx, state.Config) })
	}

wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case sig := <-reloads:
			changes, err := reload.reload(ctx, "signal "+sig.String())
			logReload(log, changes, err)
		case err := <-binds.errc:
			log.Error("frontend listener failed", "error", err)
			break wait
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("listener failed", "error", err)
			}
			break wait
		}
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	for _, srv := range servers {
		srv.Shutdown(shutdownCtx)
	}
	binds.close(shutdownCtx)
	for _, l := range listeners {
		l.Close()
	}
	listeners = nil
	stopRunners()
	wg.Wait()
	for target, l := range accessLogs {
		if n := l.Dropped(); n > 0 {
			log.Warn("access log lines dropped: the output was too slow", "target", target, "dropped", n)
		}
	}
	return nil
}

// countSockets counts the descriptors the process keeps besides client
// and server connections: one per frontend bind, stats socket and the
// console, one per checked server, Go's single netpoller, and room for
// every stats socket's clients, so that the Runtime API can always accept.
func countSockets(cfg balancer.Config, statsSockets int, console bool) connlimit.Sockets {
	statsMaxConn := cfg.Global.StatsMaxConn
	if statsMaxConn <= 0 {
		statsMaxConn = runtimeapi.DefaultStatsMaxConn
	}
	s := connlimit.Sockets{Listeners: statsSockets, Pollers: 1, AdminClients: statsSockets * statsMaxConn}
	if console {
		s.Listeners++
	}
	for _, fe := range cfg.Frontends {
		s.Listeners += len(fe.Binds)
	}
	for _, be := range cfg.Backends {
		for _, sv := range be.Servers {
			if sv.Check {
				s.Checks++
			}
		}
		for _, t := range be.Templates {
			if t.Params.Check {
				s.Checks += t.High - t.Low + 1
			}
		}
	}
	return s
}

func levelOr(l balancer.Level) string {
	if l == 0 {
		l = balancer.LevelOperator
	}
	return l.String()
}

// bindAddr turns an HAProxy bind address into a Go listen address:
// "*:80" and ":80" listen on every address.
func bindAddr(a string) string {
	if strings.HasPrefix(a, "*:") {
		return a[1:]
	}
	return strings.TrimPrefix(a, "ipv4@")
}

// socatAddress is the first UNIX socket, for "copy as socat command". A
// relative path is made absolute against the working directory the sockets
// are opened from, so the command works from any directory.
func socatAddress(sockets []balancer.StatsSocket) string {
	for _, s := range sockets {
		if !strings.Contains(s.Address, "@") {
			if abs, err := filepath.Abs(s.Address); err == nil {
				return abs
			}
			return s.Address
		}
	}
	if len(sockets) > 0 {
		a := sockets[0].Address
		if i := strings.IndexByte(a, '@'); i >= 0 {
			return "tcp:" + a[i+1:]
		}
	}
	return ""
}

// storeRunning stores the state the balancer runs, in one transaction: the
// plan's import or demo, with what building the balancer filled in
// (defaults, addresses found by init-addr), so that every later change
// commits on top of exactly what runs. Addresses init-addr found are what
// this node resolved, not configuration: they are journalled as resolved
// addresses on top of the stored state rather than replacing it.
// It returns the version of the journal row it wrote, 0 when nothing
// needed writing.
func storeRunning(ctx context.Context, st *store.Store, plan startPlan, running balancer.State) (int64, error) {
	if plan.write != nil {
		return st.ReplaceStateVersion(ctx, running, *plan.write)
	}
	stored, run := store.Normalize(plan.state), store.Normalize(running)
	if reflect.DeepEqual(stored, run) {
		return 0, nil
	}
	now := time.Now()
	if changes := resolvedAddrs(stored, run); len(changes) > 0 {
		if replayed, err := balancer.Replay(stored, changes, now); err == nil && reflect.DeepEqual(store.Normalize(replayed), run) {
			return st.CommitVersion(ctx, balancer.Commit{Changes: changes, Time: now, Before: stored, After: run,
				Origin: balancer.Origin{Channel: "dns", Source: "init-addr", Actor: "tether", Command: "init-addr"}})
		}
	}
	e := store.AuditEntry{Time: now, Actor: "tether", Channel: "import", Source: "startup", Command: "store the running state", Result: store.ResultOK}
	return st.ReplaceStateVersion(ctx, running, e)
}

// resolvedAddrs returns the address changes that turn the runtime
// addresses of from into those of to, as resolutions.
func resolvedAddrs(from, to balancer.State) []balancer.Change {
	keys := slices.Sorted(maps.Keys(to.Servers))
	var out []balancer.Change
	for _, k := range keys {
		rt, old := to.Servers[k], from.Servers[k]
		if rt.Address == old.Address && rt.Port == old.Port && rt.PortSet == old.PortSet {
			continue
		}
		b, s, _ := strings.Cut(k, "/")
		out = append(out, balancer.SetAddr{ServerRef: balancer.ServerRef{Backend: b, Server: s},
			Address: rt.Address, Port: rt.Port, PortSet: rt.PortSet, Resolved: true})
	}
	return out
}

// withInitAddrs returns the runtime settings to start with: the stored
// ones, with the address init-addr found (or none) for every server whose
// configured address is a host name.
func withInitAddrs(st balancer.State, resolved balancer.Config) map[string]balancer.ServerRuntime {
	out := make(map[string]balancer.ServerRuntime, len(st.Servers))
	for k, v := range st.Servers {
		out[k] = v
	}
	for _, be := range resolved.Backends {
		for _, s := range be.Servers {
			k := be.Name + "/" + s.Name
			if configuredIP(st.Config, be.Name, s.Name) {
				continue
			}
			rt, ok := out[k]
			if !ok {
				rt = balancer.ServerRuntime{Weight: s.Weight, CheckEnabled: s.Check}
				if s.Disabled {
					rt.Admin = balancer.Maint
				}
			}
			rt.Address = s.Address
			if _, err := netip.ParseAddr(s.Address); err != nil {
				rt.Address = ""
			}
			out[k] = rt
		}
	}
	return out
}

// configuredIP reports whether a server is configured with an IP literal
// (template slots and host names are not).
func configuredIP(cfg balancer.Config, backend, server string) bool {
	for _, be := range cfg.Backends {
		if be.Name != backend {
			continue
		}
		for _, s := range be.Servers {
			if s.Name == server {
				_, err := netip.ParseAddr(s.Address)
				return err == nil
			}
		}
	}
	return false
}

// lastAddrs returns each server's last known address, for init-addr last.
func lastAddrs(st balancer.State) map[string]netip.AddrPort {
	out := make(map[string]netip.AddrPort)
	for k, rt := range st.Servers {
		if ap, ok := addrPortOf(rt); ok {
			out[k] = ap
		}
	}
	return out
}

// errAdminPasswordIgnored says TETHER_ADMIN_PASSWORD had no effect.
var errAdminPasswordIgnored = errors.New("TETHER_ADMIN_PASSWORD ignored: the database already has users (change a password with 'tether user passwd NAME')")

// ensureAdmin creates the first admin user when there is none, with
// TETHER_ADMIN_PASSWORD or a random password.
func ensureAdmin(ctx context.Context, st *store.Store, getenv func(string) string) (string, bool, error) {
	n, err := st.CountUsers(ctx)
	if err != nil {
		return "", false, err
	}
	if n > 0 {
		if getenv("TETHER_ADMIN_PASSWORD") != "" {
			return "", false, errAdminPasswordIgnored
		}
		return "", false, nil
	}
	password := getenv("TETHER_ADMIN_PASSWORD")
	fromEnv := password != ""
	if !fromEnv {
		var b [12]byte
		rand.Read(b[:])
		password = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if _, err := st.CreateUser(ctx, "admin", password, "admin"); err != nil {
		return "", false, fmt.Errorf("create the first admin user: %w", err)
	}
	if fromEnv {
		return "(from TETHER_ADMIN_PASSWORD)", true, nil
	}
	return password, true, nil
}

// pruneAudit deletes audit entries older than keep, at start and then
// every hour, until ctx is done.
func pruneAudit(ctx context.Context, st *store.Store, keep time.Duration, log *slog.Logger) error {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		if n, err := st.PruneAudit(ctx, time.Now().Add(-keep)); err != nil {
			log.Error("prune the audit log", "error", err)
		} else if n > 0 {
			log.Info("pruned the audit log", "entries", n, "older_than", keep)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// consoleTimeouts bound how long the console waits for its clients.
type consoleTimeouts struct {
	// Head is the time a client has to send a request's head.
	Head time.Duration
	// Request is the time a client has to send a whole request.
	Request time.Duration
	// Idle is how long a kept-alive connection may wait for its next
	// request before the console closes it.
	Idle time.Duration
}

// The console's timeouts: a client that trickles a request or keeps idle
// connections open cannot hold the console's connections for long.
const (
	consoleHeadTimeout    = 10 * time.Second
	consoleRequestTimeout = 30 * time.Second
	consoleIdleTimeout    = 2 * time.Minute
)

// newConsoleServer returns the HTTP server of the console's handler h,
// with the timeouts to.
func newConsoleServer(h http.Handler, log *slog.Logger, to consoleTimeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: to.Head, ReadTimeout: to.Request, IdleTimeout: to.Idle,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
}

// startCPUProfile starts profiling the CPU into the file at path; the
// function it returns stops and writes it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
