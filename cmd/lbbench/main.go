// Command lbbench compares Tether, HAProxy and Caddy side by side on
// loopback with wrk on a sticky workload: the same origins, requests that
// carry a valid persistence cookie, interleaved rounds, and a table of
// medians and ratios.
//
//	go run ./cmd/lbbench [-rounds 3] [-duration 4s] [-conns 32] [-origins 4]
//
// It needs wrk, haproxy and caddy on PATH (Debian packages); a proxy whose
// program is missing is left out of the table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
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
	rounds   int
	duration time.Duration
	conns    int
	threads  int
	origins  int
	tether   string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lbbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds per proxy")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "wrk duration per run")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections")
	fs.IntVar(&o.threads, "threads", 1, "wrk threads")
	fs.IntVar(&o.origins, "origins", 4, "origin servers")
	fs.StringVar(&o.tether, "tether", "", "tether binary (default: built from ./cmd/tether)")
	originMode := fs.String("serve-origins", "", "internal: serve origins on these comma-separated addresses")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *originMode != "" {
		return serveOrigins(ctx, strings.Split(*originMode, ","))
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk is not installed (apt-get install wrk)")
	}
	dir, err := os.MkdirTemp("", "lbbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

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
	for _, a := range originAddrs {
		if err := waitHTTP(ctx, "http://"+a+"/"); err != nil {
			return fmt.Errorf("origin %s: %w", a, err)
		}
	}

	var proxies []*proxy
	if p, err := startHAProxy(ctx, dir, originAddrs); err != nil {
		fmt.Fprintln(stderr, "haproxy left out:", err)
	} else {
		proxies = append(proxies, p)
	}
	if p, err := startTether(ctx, dir, originAddrs, o.tether); err != nil {
		fmt.Fprintln(stderr, "tether left out:", err)
	} else {
		proxies = append(proxies, p)
	}
	if p, err := startCaddy(ctx, dir, originAddrs); err != nil {
		fmt.Fprintln(stderr, "caddy left out:", err)
	} else {
		proxies = append(proxies, p)
	}
	defer func() {
		for _, p := range proxies {
			stopProcess(p.cmd)
		}
	}()
	if len(proxies) == 0 {
		return errors.New("no proxy could be started")
	}
	for _, p := range proxies {
		if err := p.learnCookie(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	fmt.Fprintf(stdout, "wrk -t%d -c%d -d%s, %d origins, requests with a valid cookie, %d interleaved rounds\n", o.threads, o.conns, o.duration, o.origins, o.rounds)
	for round := 1; round <= o.rounds; round++ {
		for _, p := range proxies {
			res, err := runWrk(ctx, p, o)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", p.name, round, err)
			}
			p.results = append(p.results, res)
			fmt.Fprintf(stderr, "round %d %-8s %10.0f req/s  p50 %-8s p99 %s\n", round, p.name, res.rps, res.p50, res.p99)
		}
	}
	printTable(stdout, proxies)
	return nil
}

// proxy is one load balancer under test.
type proxy struct {
	name    string
	url     string
	cookie  string // the cookie header wrk sends
	cmd     *exec.Cmd
	results []result
}

type result struct {
	rps      float64
	p50, p99 time.Duration
}

func (p *proxy) learnCookie(ctx context.Context) error {
	if err := waitHTTP(ctx, p.url); err != nil {
		return err
	}
	resp, err := http.Get(p.url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		p.cookie = c.Name + "=" + c.Value
		return nil
	}
	return errors.New("first response set no persistence cookie")
}

func startHAProxy(ctx context.Context, dir string, origins []string) (*proxy, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, err
	}
	addr := freeAddrs(1)[0]
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(balancerConfig(addr, origins)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-db", "-f", cfg)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proxy{name: "haproxy", url: "http://" + addr + "/", cmd: cmd}, nil
}

func startTether(ctx context.Context, dir string, origins []string, bin string) (*proxy, error) {
	if bin == "" {
		bin = filepath.Join(dir, "tether")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tether")
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build tether: %v\n%s", err, out)
		}
	}
	addr := freeAddrs(1)[0]
	cfg := filepath.Join(dir, "tether.cfg")
	if err := os.WriteFile(cfg, []byte(balancerConfig(addr, origins)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", "-f", cfg, "-db", filepath.Join(dir, "tether.db"), "-console", "", "-socket", "")
	cmd.Stderr = io.Discard
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proxy{name: "tether", url: "http://" + addr + "/", cmd: cmd}, nil
}

func startCaddy(ctx context.Context, dir string, origins []string) (*proxy, error) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return nil, err
	}
	addr := freeAddrs(1)[0]
	cfg := filepath.Join(dir, "Caddyfile")
	text := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n}\nhttp://%s {\n\treverse_proxy %s {\n\t\tlb_policy cookie SERVER_USED\n\t}\n}\n", addr, strings.Join(origins, " "))
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stderr = io.Discard
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proxy{name: "caddy", url: "http://" + addr + "/", cmd: cmd}, nil
}

// balancerConfig is the HAProxy-syntax config both HAProxy and Tether run.
func balancerConfig(listen string, origins []string) string {
	var b strings.Builder
	b.WriteString("global\n    maxconn 4096\n\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n")
	fmt.Fprintf(&b, "frontend fe\n    bind %s\n    default_backend servers\n\n", listen)
	b.WriteString("backend servers\n    balance roundrobin\n    cookie SERVER_USED insert indirect nocache dynamic\n    dynamic-cookie-key benchkey\n")
	for i, o := range origins {
		fmt.Fprintf(&b, "    server web%d %s\n", i+1, o)
	}
	return b.String()
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	latRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func runWrk(ctx context.Context, p *proxy, o options) (result, error) {
	args := []string{"-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.conns), "-d" + o.duration.String(), "--latency", "-H", "Cookie: " + p.cookie, p.url}
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	var r result
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, lm := range latRe.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(lm[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(lm[3])]
		d := time.Duration(v * float64(unit))
		if string(lm[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if strings.Contains(string(out), "Non-2xx") {
		return r, fmt.Errorf("non-2xx responses:\n%s", out)
	}
	return r, nil
}

func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func printTable(w io.Writer, proxies []*proxy) {
	var ref *proxy
	for _, p := range proxies {
		if p.name == "haproxy" {
			ref = p
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "proxy\treq/s (median)\tp50\tp99\tvs haproxy\tvs caddy\t")
	med := map[string]float64{}
	for _, p := range proxies {
		med[p.name] = median(pluck(p.results, func(r result) float64 { return r.rps }))
	}
	for _, p := range proxies {
		rps := med[p.name]
		vsH, vsC := "-", "-"
		if ref != nil {
			vsH = fmt.Sprintf("%.2fx", rps/med["haproxy"])
		}
		if c, ok := med["caddy"]; ok && c > 0 {
			vsC = fmt.Sprintf("%.2fx", rps/c)
		}
		p50 := median(pluck(p.results, func(r result) time.Duration { return r.p50 }))
		p99 := median(pluck(p.results, func(r result) time.Duration { return r.p99 }))
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t\n", p.name, rps, p50.Round(time.Microsecond), p99.Round(time.Microsecond), vsH, vsC)
	}
	tw.Flush()
}

func pluck[T any](rs []result, f func(result) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// freeAddrs returns n loopback addresses with free ports.
func freeAddrs(n int) []string {
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			continue
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not answering at %s: %w", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stopProcess(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// serveOrigins serves small origin servers until ctx is done.
func serveOrigins(ctx context.Context, addrs []string) error {
	body := []byte(strings.Repeat("x", 64) + "\n")
	errc := make(chan error, len(addrs))
	var servers []*http.Server
	for i, a := range addrs {
		name := "web" + strconv.Itoa(i+1)
		srv := &http.Server{Addr: a, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Origin", name)
			w.Header().Set("Content-Type", "text/plain")
			w.Write(body)
		})}
		servers = append(servers, srv)
		go func() { errc <- srv.ListenAndServe() }()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	for _, s := range servers {
		s.Close()
	}
	return nil
}
