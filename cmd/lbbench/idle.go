package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// settle is how long a proxy is left alone before its memory is read.
const settle = 3 * time.Second

// measureIdle opens n keep-alive connections to each proxy in turn, each
// having made one request, and reports how much the proxy's resident
// memory grew per connection while they sit idle.

func measureIdle(ctx context.Context, proxies []*proxy, n int, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "%d idle keep-alive connections, each after one request\n", n)
	type row struct {
		name          string
		before, after int64 // kB
	}
	var rows []row
	// Measure the baseline at rest too, as the figure with connections is:
	// a proxy just started may still hold its start-up garbage.
	time.Sleep(settle)
	for _, p := range proxies {
		before, err := rssKB(p.cmd.Process.Pid)
		if err != nil {
			return err
		}
		conns, err := openIdle(ctx, p.url, n)
		if err == nil {
			// Let the proxy settle after the last request, as it would
			// between bursts: a garbage-collected proxy may return the
			// memory of the requests it served.
			time.Sleep(settle)
			var after int64
			after, err = rssKB(p.cmd.Process.Pid)
			rows = append(rows, row{p.name, before, after})
			fmt.Fprintf(stderr, "idle %-8s RSS %d kB -> %d kB\n", p.name, before, after)
		}
		for _, c := range conns {
			c.Close()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	per := func(r row) float64 { return float64(r.after-r.before) / float64(n) }
	var ref float64
	for _, r := range rows {
		if r.name == "haproxy" {
			ref = per(r)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "proxy\tRSS before\tRSS with idle\tper connection\tvs haproxy\t")
	for _, r := range rows {
		vs := "-"
		if ref > 0 {
			vs = fmt.Sprintf("%.2fx", per(r)/ref)
		}
		fmt.Fprintf(tw, "%s\t%.1f MB\t%.1f MB\t%.1f kB\t%s\t\n", r.name, float64(r.before)/1024, float64(r.after)/1024, per(r), vs)
	}
	return tw.Flush()
}

// openIdle opens n connections to target (with a TLS handshake for an
// https target) and makes one request on each, leaving them open.
func openIdle(ctx context.Context, target string, n int) ([]net.Conn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conns := make([]net.Conn, 0, n)
	req := "GET / HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n"
	for range n {
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err == nil && u.Scheme == "https" {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err = tc.HandshakeContext(ctx); err != nil {
				c.Close()
			}
			c = tc
		}
		if err != nil {
			return conns, fmt.Errorf("connection %d: %w", len(conns)+1, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			return conns, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return conns, fmt.Errorf("connection %d: %w", len(conns), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			return conns, fmt.Errorf("connection %d was not kept alive", len(conns))
		}
		c.SetDeadline(time.Time{})
	}
	return conns, nil
}

// rssKB reads a process's resident set size from /proc.
func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// execOutput runs a program and returns its combined output.
func execOutput(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
