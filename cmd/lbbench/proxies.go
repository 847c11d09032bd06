package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// proxy is one load balancer under test.
type proxy struct {
	name    string
	url     string
	cookie  string // the cookie header wrk sends on sticky workloads
	cmd     *exec.Cmd
	results []result
}

// site is what every proxy under test is configured to serve.
type site struct {
	dir     string
	origins []string
	// tls, when set, makes the proxies listen with HTTPS using this PEM
	// bundle (certificate then key) and the separate files for Caddy.
	tls *certFiles
	// maxConn is the connection limit given to the proxies.
	maxConn int
}

func (s site) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// balancerConfig is the HAProxy-syntax configuration both HAProxy and
// Tether run.
func (s site) balancerConfig(listen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    maxconn %d\n\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\n", s.maxConn)
	bind := listen
	if s.tls != nil {
		bind += " ssl crt " + s.tls.bundle + " alpn http/1.1"
	}
	fmt.Fprintf(&b, "frontend fe\n    bind %s\n    default_backend servers\n\n", bind)
	b.WriteString("backend servers\n    balance roundrobin\n    cookie SERVER_USED insert indirect nocache dynamic\n    dynamic-cookie-key benchkey\n")
	for i, o := range s.origins {
		fmt.Fprintf(&b, "    server web%d %s\n", i+1, o)
	}
	return b.String()
}

func startHAProxy(ctx context.Context, s site) (*proxy, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, err
	}
	addr := freeAddrs(1)[0]
	cfg := filepath.Join(s.dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(s.balancerConfig(addr)), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-db", "-f", cfg)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proxy{name: "haproxy", url: s.scheme() + "://" + addr + "/", cmd: cmd}, nil
}

// buildTether builds ./cmd/tether into dir unless bin names a binary.
func buildTether(ctx context.Context, dir, bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	bin = filepath.Join(dir, "tether")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tether")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build tether: %v\n%s", err, out)
	}
	return bin, nil
}

// tetherB names the second Tether of a run with -against.
const tetherB = "tether-b"

// startTether starts Tether, the program bin, as the proxy called name on
// the site's configuration, with extra arguments to its serve command.
func startTether(ctx context.Context, s site, name, bin string, extra ...string) (*proxy, error) {
	addr := freeAddrs(1)[0]
	cfg := filepath.Join(s.dir, name+".cfg")
	if err := os.WriteFile(cfg, []byte(s.balancerConfig(addr)), 0o600); err != nil {
		return nil, err
	}
	db := filepath.Join(s.dir, name+".db")
	check := exec.CommandContext(ctx, bin, "import", "-n", "-f", cfg, "-db", db)
	if b, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tether refuses the configuration: %s", strings.TrimSpace(string(b)))
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "-f", cfg, "-db", db, "-console", "", "-socket", ""}, extra...)...)
	cmd.Stderr = io.Discard
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proxy{name: name, url: s.scheme() + "://" + addr + "/", cmd: cmd}, nil
}

func startCaddy(ctx context.Context, s site) (*proxy, error) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return nil, err
	}
	addr := freeAddrs(1)[0]
	cfg := filepath.Join(s.dir, "Caddyfile")
	tls := ""
	if s.tls != nil {
		tls = fmt.Sprintf("\ttls %s %s\n", s.tls.cert, s.tls.key)
	}
	text := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n}\n%s://%s {\n%s\treverse_proxy %s {\n\t\tlb_policy cookie SERVER_USED\n\t}\n}\n",
		s.scheme(), addr, tls, strings.Join(s.origins, " "))
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+s.dir, "XDG_DATA_HOME="+s.dir, "XDG_CONFIG_HOME="+s.dir)
	cmd.Stderr = io.Discard
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proxy{name: "caddy", url: s.scheme() + "://" + addr + "/", cmd: cmd}, nil
}

// startFloor starts a floor proxy of this program (see floor.go); kind
// may carry the work it spends on each request ("floor-epoll+10µs").
func startFloor(ctx context.Context, s site, kind string) (*proxy, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr := freeAddrs(1)[0]
	cmd := exec.CommandContext(ctx, self, "-serve-floor", strings.Join(append([]string{kind, addr}, s.origins...), ","))
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &proxy{name: kind, url: "http://" + addr + "/", cmd: cmd}, nil
}

// startProxies starts every proxy whose program is present, in the order
// haproxy, tether, caddy, then the floors when asked (floors, on a
// plain-HTTP workload); with -against, haproxy and the two Tethers only.
// One that cannot start is reported and left out.
func startProxies(ctx context.Context, s site, tetherBin string, o options, floors bool, stderr io.Writer) []*proxy {
	var proxies []*proxy
	type starter struct {
		name string
		fn   func() (*proxy, error)
	}
	start := []starter{
		{"haproxy", func() (*proxy, error) { return startHAProxy(ctx, s) }},
		{"tether", func() (*proxy, error) { return startTether(ctx, s, "tether", tetherBin) }},
	}
	if o.against != "" {
		start = append(start, starter{tetherB, func() (*proxy, error) { return startTether(ctx, s, tetherB, o.against) }})
	} else {
		start = append(start, starter{"caddy", func() (*proxy, error) { return startCaddy(ctx, s) }})
	}
	if floors && o.against == "" {
		kinds := []string{floorGoroutines, floorEpoll}
		if o.floorWork > 0 {
			kinds = append(kinds, floorGoroutines+"+"+o.floorWork.String(), floorEpoll+"+"+o.floorWork.String())
		}
		for _, kind := range kinds {
			start = append(start, starter{kind, func() (*proxy, error) { return startFloor(ctx, s, kind) }})
		}
	}
	for _, st := range start {
		p, err := st.fn()
		if err == nil {
			err = p.learnCookie(ctx)
			if err != nil {
				stopProcess(p.cmd)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s left out: %v\n", st.name, err)
			continue
		}
		proxies = append(proxies, p)
	}
	return proxies
}

// client accepts the self-signed certificate lbbench made for the
// proxies it started on loopback.
var client = &http.Client{Transport: insecureTransport(), Timeout: 5 * time.Second}

func (p *proxy) learnCookie(ctx context.Context) error {
	if err := waitHTTP(ctx, p.url); err != nil {
		return err
	}
	resp, err := client.Get(p.url)
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
		resp, err := client.Get(url)
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
