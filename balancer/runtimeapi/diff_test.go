package runtimeapi

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/e2etest"
	"tether/balancer/haproxycfg"
)

var diffVerbose = flag.Bool("diff.verbose", false, "print every differential reply pair")

// diffStep is one line of testdata/diff/script.txt.
type diffStep struct {
	line  int
	level string
	cmd   string // bytes to send, newline included
	mask  string
	known bool // a documented difference: logged, not failed
}

func loadDiffScript(t *testing.T) []diffStep {
	t.Helper()
	f, err := os.Open("testdata/diff/script.txt")
	if err != nil {
		t.Fatalf("open differential script: %v", err)
	}
	defer f.Close()
	var steps []diffStep
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		level, rest, ok := strings.Cut(text, ": ")
		if !ok {
			t.Fatalf("script.txt:%d: want LEVEL: COMMAND", n)
		}
		st := diffStep{line: n, level: level}
		if i := strings.LastIndex(rest, " ## "); i >= 0 {
			st.mask = strings.TrimSpace(rest[i+4:])
			if m, ok := strings.CutSuffix(" "+st.mask, " known"); ok {
				st.mask, st.known = strings.TrimSpace(m), true
			}
			rest = rest[:i]
		}
		if strings.HasPrefix(rest, `"`) {
			s, err := strconv.Unquote(rest)
			if err != nil {
				t.Fatalf("script.txt:%d: bad quoted command: %v", n, err)
			}
			st.cmd = s
		} else {
			st.cmd = rest + "\n"
		}
		st.cmd = repeatRe.ReplaceAllStringFunc(st.cmd, func(m string) string {
			p := repeatRe.FindStringSubmatch(m)
			n, _ := strconv.Atoi(p[2])
			return strings.Repeat(p[1], n)
		})
		steps = append(steps, st)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read differential script: %v", err)
	}
	return steps
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// diffPorts are the free loopback ports of the differential
// configuration's listeners.
type diffPorts [2]int

func diffConfig(t *testing.T, sockPrefix string, ports diffPorts) string {
	t.Helper()
	src, err := os.ReadFile("testdata/diff/haproxy.cfg")
	if err != nil {
		t.Fatalf("read differential configuration: %v", err)
	}
	s := strings.ReplaceAll(string(src), "{{SOCK}}", sockPrefix)
	s = strings.ReplaceAll(s, "{{PORT}}", strconv.Itoa(ports[0]))
	return strings.ReplaceAll(s, "{{PORT2}}", strconv.Itoa(ports[1]))
}

// rawExec sends raw bytes to a UNIX socket and reads until it closes.
func rawExec(t *testing.T, path, data string) string {
	t.Helper()
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", path, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, data); err != nil {
		return ""
	}
	// Like "echo ... | socat": the client closes its side once sent.
	_ = conn.(*net.UnixConn).CloseWrite()
	out, _ := io.ReadAll(conn) // a reset after the reply is not an error here
	return string(out)
}

func startHAProxy(t *testing.T, bin, dir string, ports diffPorts) string {
	t.Helper()
	prefix := filepath.Join(dir, "h-")
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(diffConfig(t, prefix, ports)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-db", "-f", cfgPath)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", prefix+"admin.sock")
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not open its stats socket: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return prefix
}

func startTether(t *testing.T, dir string, ports diffPorts) string {
	t.Helper()
	prefix := filepath.Join(dir, "t-")
	cfg, _, err := haproxycfg.Parse("haproxy.cfg", []byte(diffConfig(t, prefix, ports)))
	if err != nil {
		t.Fatalf("parse differential configuration: %v", err)
	}
	b, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatalf("build balancer: %v", err)
	}
	d := NewDispatcher(b, DispatcherOptions{})
	ls, err := ListenAll(context.Background(), cfg.Global, d)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		for _, l := range ls {
			_ = l.Close()
		}
	})
	return prefix
}

// repeatRe matches {TEXT*N}: TEXT repeated N times.
var repeatRe = regexp.MustCompile(`\{([^{}*]+)\*(\d+)\}`)

// TestDifferentialHAProxy runs testdata/diff/script.txt against HAProxy
// 2.6 and Tether on the same configuration and compares the replies.
func TestDifferentialHAProxy(t *testing.T) {
	bin := e2etest.RequireProgram(t, "haproxy")
	out, err := exec.Command(bin, "-v").Output()
	if err != nil || !strings.Contains(string(out), "version 2.6.") {
		if os.Getenv("TETHER_E2E") == "require" {
			t.Fatalf("haproxy 2.6 required, got %q (%v)", out, err)
		}
		t.Skipf("differential test needs haproxy 2.6, found %q", strings.SplitN(string(out), "\n", 2)[0])
	}
	dir := t.TempDir()
	ports := diffPorts{freePort(t), freePort(t)}
	hp := startHAProxy(t, bin, dir, ports)
	tp := startTether(t, dir, ports)

	d := NewDispatcher(nil, DispatcherOptions{})
	same := 0
	steps := loadDiffScript(t)
	for _, st := range steps {
		h := rawExec(t, hp+st.level+".sock", st.cmd)
		g := rawExec(t, tp+st.level+".sock", st.cmd)
		hn, gn := normalise(d, st.mask, h), normalise(d, st.mask, g)
		if *diffVerbose {
			t.Logf("script.txt:%d %s: %q\nhaproxy: %q\ntether:  %q", st.line, st.level, st.cmd, h, g)
		}
		if hn != gn && st.known {
			t.Logf("known difference, script.txt:%d %s: %q\n%s", st.line, st.level, st.cmd, lineDiff(hn, gn))
			continue
		}
		if hn != gn {
			t.Errorf("script.txt:%d %s: %q\n%s", st.line, st.level, st.cmd, lineDiff(hn, gn))
			continue
		}
		same++
	}
	t.Logf("%d of %d script steps gave the same reply", same, len(steps))
}

// lineDiff shows the first differing line of two replies.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b || (i >= len(w)) != (i >= len(g)) {
			return fmt.Sprintf("first difference at line %d:\nhaproxy: %q\ntether:  %q\n(haproxy reply %q)\n(tether reply  %q)", i+1, a, b, clip(want), clip(got))
		}
	}
	return "replies differ"
}

func clip(s string) string {
	if len(s) > 600 {
		return s[:600] + "..."
	}
	return s
}

var versionRe = regexp.MustCompile(`2\.6\.\d+-[^\s:,"]+`)

// normalise masks what differs by nature between the two implementations.
func normalise(d *Dispatcher, mask, s string) string {
	s = strings.ReplaceAll(s, Version, "<VERSION>")
	s = versionRe.ReplaceAllString(s, "<VERSION>")
	switch mask {
	case "":
		return s
	case "unknown":
		return normaliseUnknown(s)
	case "help":
		return normaliseHelp(d, s)
	case "info":
		return normaliseInfo(s)
	case "stat":
		return normaliseLines(s, normaliseCSVLine)
	case "typed":
		return strings.ReplaceAll(normaliseLines(s, normaliseTypedLine), "~\n", "")
	case "json":
		return normaliseJSON(s)
	case "state":
		return normaliseLines(s, normaliseStateLine)
	case "conn":
		return normaliseLines(s, normaliseConnLine)
	}
	return s
}

func normaliseLines(s string, f func(string) string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = f(l)
	}
	return strings.Join(lines, "\n")
}

// normaliseUnknown keeps only the first line of each usage screen: the
// suggestions depend on the whole command table, which differs.
func normaliseUnknown(s string) string {
	var out []string
	skipping := false
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "  ") && skipping {
			continue
		}
		skipping = strings.Contains(l, "Unknown command") || strings.Contains(l, "commands are valid")
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// normaliseHelp keeps the help lines of commands both implement.
func normaliseHelp(d *Dispatcher, s string) string {
	known := map[string]bool{}
	for _, kw := range d.table {
		if kw.usage != "" && !kw.extension {
			known[helpLine(kw.usage, kw.desc)] = true
		}
	}
	for _, l := range helpTail {
		known[l] = true
	}
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "  ") && !known[l] {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

// normaliseInfo keeps field names only, and only those Tether reports.
func normaliseInfo(s string) string {
	var names []string
	tetherFields := map[string]bool{}
	for _, f := range (&Dispatcher{}).infoNames() {
		tetherFields[f] = true
	}
	if strings.HasPrefix(s, "[") {
		var fields []struct {
			Field struct {
				Pos  int
				Name string
			}
			Tags  map[string]string
			Value struct{ Type string }
		}
		if err := json.Unmarshal([]byte(s), &fields); err != nil {
			return "bad json: " + err.Error()
		}
		for _, f := range fields {
			if tetherFields[f.Field.Name] {
				names = append(names, fmt.Sprintf("%d.%s:%v:%s", f.Field.Pos, f.Field.Name, f.Tags, f.Value.Type))
			}
		}
		return strings.Join(names, "\n")
	}
	for _, l := range strings.Split(s, "\n") {
		name := l
		if i := strings.Index(l, ": "); i >= 0 {
			name = l[:i]
		}
		if p := strings.Split(l, ":"); len(p) >= 3 && strings.Count(p[0], ".") >= 2 {
			// typed: pos.name.proc:tags:type:value
			f := strings.SplitN(p[0], ".", 2)
			name = strings.TrimSuffix(f[1], ".1")
			if tetherFields[name] {
				names = append(names, p[0]+":"+p[1]+":"+p[2])
			}
			continue
		}
		if tetherFields[name] {
			names = append(names, name)
		}
	}
	return strings.Join(names, "\n")
}

// stableStat are the show stat positions whose values must match: names,
// states, weights, configuration. Other non-empty values are masked.
var stableStat = map[int]bool{0: true, 1: true, 17: true, 18: true, 19: true, 20: true, 25: true,
	26: true, 27: true, 28: true, 29: true, 31: true, 32: true, 36: true, 37: true, 45: true, 56: true, 57: true,
	62: true, 63: true, 64: true, 65: true, 66: true, 67: true, 68: true, 69: true, 70: true,
	71: true, 72: true, 73: true, 74: true, 75: true, 76: true, 99: true}

// unfilledStat are positions HAProxy fills that Tether leaves empty for
// lack of a configured limit (see the package documentation).
var unfilledStat = map[int]bool{6: true}

func normaliseCSVLine(l string) string {
	if strings.HasPrefix(l, "#") || l == "" {
		return l
	}
	f := strings.Split(l, ",")
	pos := 0
	for i := range f {
		if f[i] == "-" && i == stStaticFields {
			continue
		}
		switch {
		case unfilledStat[pos] && (f[1] == "FRONTEND" || f[1] == "BACKEND"):
			f[i] = "~"
		case f[i] != "" && !stableStat[pos]:
			f[i] = "#"
		}
		pos++
	}
	return strings.Join(f, ",")
}

var typedRe = regexp.MustCompile(`^([FBSL])\.(\d+)\.(\d+)\.(\d+)\.([^.]+)\.1:([^:]+):([^:]+):(.*)$`)

func normaliseTypedLine(l string) string {
	m := typedRe.FindStringSubmatch(l)
	if m == nil {
		return l
	}
	pos, _ := strconv.Atoi(m[4])
	v := m[8]
	if !stableStat[pos] {
		v = "#"
	}
	if unfilledStat[pos] && m[1] != "S" {
		return "~"
	}
	return fmt.Sprintf("%s.%s.%s.%s.%s:%s:%s:%s", m[1], m[2], m[3], m[4], m[5], m[6], m[7], v)
}

func normaliseJSON(s string) string {
	var rows [][]struct {
		ObjType string
		ID      int
		Field   struct {
			Pos  int
			Name string
		}
		Tags  map[string]string
		Value struct {
			Type  string
			Value any
		}
	}
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return "bad json: " + err.Error()
	}
	var b strings.Builder
	for _, r := range rows {
		for _, f := range r {
			v := fmt.Sprint(f.Value.Value)
			if !stableStat[f.Field.Pos] {
				v = "#"
			}
			if unfilledStat[f.Field.Pos] && f.ObjType != "Server" {
				continue
			}
			fmt.Fprintf(&b, "%s %d %d %s %v %s %s\n", f.ObjType, f.ID, f.Field.Pos, f.Field.Name, f.Tags, f.Value.Type, v)
		}
		b.WriteString("--\n")
	}
	return b.String()
}

func normaliseStateLine(l string) string {
	f := strings.Fields(l)
	if len(f) != 25 {
		return l
	}
	f[9] = "#"                             // srv_time_since_last_change
	f[13] = strconv.Itoa(atoi(f[13]) &^ 1) // check in progress
	return strings.Join(f, " ")
}

func normaliseConnLine(l string) string {
	if strings.HasPrefix(l, "#") {
		return regexp.MustCompile(`idle_per_thr\[\d+\]`).ReplaceAllString(l, "idle_per_thr[#]")
	}
	f := strings.Fields(l)
	if len(f) < 13 {
		return l
	}
	if bk, sv, ok := strings.Cut(f[1], "/"); ok {
		_ = bk
		f[1] = "#/" + sv
	}
	return strings.Join(f, " ")
}
