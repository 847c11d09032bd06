package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

type result struct {
	rps      float64
	p50, p99 time.Duration
	// cpu is the proxy's CPU time (user and system) per request; on a
	// machine the proxy shares with wrk and the origins, what it spends
	// is what the others cannot use.
	cpu time.Duration
	// originCPU is the origins' CPU time per request: what the proxy's
	// way of delivering requests costs the servers behind it (a proxy that
	// hands them requests in bursts wakes them less often).
	originCPU time.Duration
	// idle is the share of the machine's CPU time nobody used during the
	// run: on a machine that wrk, the origins and the proxy share, what a
	// proxy's way of waiting leaves unused, besides what it spends.
	idle float64
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	latRe = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

func runWrk(ctx context.Context, p *proxy, w workload, o options) (result, error) {
	args := []string{"-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.conns), "-d" + o.duration.String(), "--latency"}
	if w.sticky {
		args = append(args, "-H", "Cookie: "+p.cookie)
	}
	if w.close {
		args = append(args, "-H", "Connection: close")
	}
	cpuBefore, cpuErr := cpuTime(p.cmd.Process.Pid)
	originsBefore, originsErr := cpuTime(o.originsPID)
	machineBefore, machineErr := machineTimes()
	out, err := execOutput(ctx, "wrk", append(args, p.url)...)
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	cpuAfter, cpuErr2 := cpuTime(p.cmd.Process.Pid)
	originsAfter, originsErr2 := cpuTime(o.originsPID)
	machineAfter, machineErr2 := machineTimes()
	if err := errors.Join(cpuErr, cpuErr2, originsErr, originsErr2, machineErr, machineErr2); err != nil {
		return result{}, err
	}
	var r result
	if total := machineAfter.total - machineBefore.total; total > 0 {
		r.idle = float64(machineAfter.idle-machineBefore.idle) / float64(total)
	}
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
	if requests := r.rps * o.duration.Seconds(); requests > 0 {
		r.cpu = time.Duration(float64(cpuAfter-cpuBefore) / requests)
		r.originCPU = time.Duration(float64(originsAfter-originsBefore) / requests)
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "proxy\treq/s (median)\tp50\tp99\tCPU/req\torigins CPU/req\tmachine idle\tvs haproxy\tround by round\tp99 vs haproxy\tCPU vs haproxy\tvs caddy\t")
	med := map[string]result{}
	for _, p := range proxies {
		med[p.name] = result{
			rps:       median(pluck(p.results, func(r result) float64 { return r.rps })),
			p50:       median(pluck(p.results, func(r result) time.Duration { return r.p50 })),
			p99:       median(pluck(p.results, func(r result) time.Duration { return r.p99 })),
			cpu:       median(pluck(p.results, func(r result) time.Duration { return r.cpu })),
			originCPU: median(pluck(p.results, func(r result) time.Duration { return r.originCPU })),
			idle:      median(pluck(p.results, func(r result) float64 { return r.idle })),
		}
	}
	var haproxy *proxy
	for _, p := range proxies {
		if p.name == "haproxy" {
			haproxy = p
		}
	}
	for _, p := range proxies {
		m := med[p.name]
		vsH, pairedH, p99H, cpuH, vsC := "-", "-", "-", "-", "-"
		if r, ok := pairedRatio(p, haproxy); ok {
			pairedH = fmt.Sprintf("%.2fx", r)
		}
		if h, ok := med["haproxy"]; ok && h.rps > 0 {
			vsH = fmt.Sprintf("%.2fx", m.rps/h.rps)
			p99H = fmt.Sprintf("%.2fx", float64(m.p99)/float64(h.p99))
			if h.cpu > 0 {
				cpuH = fmt.Sprintf("%.2fx", float64(m.cpu)/float64(h.cpu))
			}
		}
		if c, ok := med["caddy"]; ok && c.rps > 0 {
			vsC = fmt.Sprintf("%.2fx", m.rps/c.rps)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%.0f%%\t%s\t%s\t%s\t%s\t%s\t\n", p.name, m.rps, m.p50.Round(time.Microsecond), m.p99.Round(time.Microsecond),
			m.cpu.Round(100*time.Nanosecond), m.originCPU.Round(100*time.Nanosecond), 100*m.idle, vsH, pairedH, p99H, cpuH, vsC)
	}
	tw.Flush()
}

// pairedRatio is the median, over rounds, of p's req/s divided by base's
// in the same round. The machine's speed drifts within a run; a round's
// proxies run back to back, so their ratio drifts less than the ratio of
// the medians.
func pairedRatio(p, base *proxy) (float64, bool) {
	ratios, ok := roundRatios(p, base, func(r result) float64 { return r.rps })
	if !ok {
		return 0, false
	}
	return median(ratios), true
}

// roundRatios returns, round by round, f of p's result divided by f of
// base's; false when the rounds do not pair up or a base value is 0.
func roundRatios(p, base *proxy, f func(result) float64) ([]float64, bool) {
	if base == nil || len(p.results) == 0 || len(p.results) != len(base.results) {
		return nil, false
	}
	ratios := make([]float64, 0, len(p.results))
	for i, r := range p.results {
		b := f(base.results[i])
		if b <= 0 {
			return nil, false
		}
		ratios = append(ratios, f(r)/b)
	}
	return ratios, true
}

// quartiles returns the first quartile, the median and the third quartile
// of v (the medians of its lower and upper halves, the middle value left
// out of both when v's length is odd).
func quartiles(v []float64) (q1, q2, q3 float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 1 {
		return s[0], s[0], s[0]
	}
	return median(s[:n/2]), median(s), median(s[(n+1)/2:])
}

// printComparison prints, for a run with -against, each round's ratio of
// the second Tether to the first, as median and quartiles: req/s and CPU
// time per request.
func printComparison(w io.Writer, proxies []*proxy) {
	var a, b *proxy
	for _, p := range proxies {
		switch p.name {
		case "tether":
			a = p
		case tetherB:
			b = p
		}
	}
	if a == nil || b == nil {
		return
	}
	rps, ok1 := roundRatios(b, a, func(r result) float64 { return r.rps })
	cpu, ok2 := roundRatios(b, a, func(r result) float64 { return float64(r.cpu) })
	if !ok1 || !ok2 {
		return
	}
	q1, q2, q3 := quartiles(rps)
	c1, c2, c3 := quartiles(cpu)
	fmt.Fprintf(w, "%s against tether, round by round over %d rounds (median [quartiles]): req/s %.3fx [%.3f..%.3f], CPU/req %.3fx [%.3f..%.3f]\n",
		tetherB, len(rps), q2, q1, q3, c2, c1, c3)
}

func pluck[T any](rs []result, f func(result) T) []T {
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
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

// cpuTime reads the CPU time a process has used, user and system, from
// /proc (in clock ticks of 10 ms, which a run of seconds makes fine enough).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted after it. utime and stime are fields 14 and 15.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, b)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, b)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100
// on every Linux architecture Go runs on.
const clockTicks = 100

// cpuTicks are the machine's CPU times from /proc/stat, in clock ticks:
// all of them, and those idle (idle and iowait).
type cpuTicks struct{ total, idle int64 }

func machineTimes() (cpuTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPULine(line)
}

// parseCPULine reads /proc/stat's first line: "cpu" then user, nice,
// system, idle, iowait, irq, softirq, steal (later fields, guest time,
// are already counted in user and nice).
func parseCPULine(line string) (cpuTicks, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTicks{}, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var t cpuTicks
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return cpuTicks{}, fmt.Errorf("unexpected /proc/stat line %q", line)
		}
		t.total += n
		if i == 3 || i == 4 {
			t.idle += n
		}
	}
	return t, nil
}
