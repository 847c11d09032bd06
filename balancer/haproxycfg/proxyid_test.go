package haproxycfg

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/e2etest"
)

func TestAtoi32(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"7", 7}, {"07", 7}, {"+7", 7}, {"-7", -7}, {" 7", 7}, {"7x", 7}, {"x", 0}, {"", 0}, {"-", 0},
		{"2147483647", 2147483647}, {"2147483648", -2147483648}, {"4294967297", 1},
		{"9223372036854775807", -1}, {"99999999999999999999", -1}, {"-9223372036854775808", 0},
		{"-99999999999999999999", 0},
	}
	for _, tt := range tests {
		if got := atoi32(tt.in); got != tt.want {
			t.Errorf("atoi32(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// proxyIDCases are configurations whose proxy numbers are compared with
// HAProxy's. {{SOCK}} is the stats socket, {{P1}}.. free loopback ports.
var proxyIDCases = []struct {
	name string
	src  string
	want string // "name:kind=id" for each frontend (F) and backend (B)
}{
	{
		name: "declaration order; listen is one proxy",
		src: `global
    stats socket {{SOCK}} level admin
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
backend b0
    server s 127.0.0.1:1
frontend fe
    bind 127.0.0.1:{{P1}}
    default_backend b
backend b
    server s 127.0.0.1:1
listen li
    bind 127.0.0.1:{{P2}}
    server s 127.0.0.1:1
`,
		want: "fe:F=3 li:F=5 b0:B=2 b:B=4 li:B=5",
	},
	{
		name: "explicit IDs are skipped by automatic ones",
		src: `global
    stats socket {{SOCK}} level admin
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
backend b0
    id 4
    server s 127.0.0.1:1
frontend fe
    bind 127.0.0.1:{{P1}}
    default_backend b
backend b
    server s 127.0.0.1:1
listen li
    id 3
    bind 127.0.0.1:{{P2}}
    server s 127.0.0.1:1
backend b9
    server s 127.0.0.1:1
backend b1
    id 1
    server s 127.0.0.1:1
`,
		want: "fe:F=5 li:F=3 b0:B=4 b:B=6 li:B=3 b9:B=8 b1:B=1",
	},
	{
		name: "the Runtime API proxy takes a number where it is created",
		src: `defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
backend b0
    server s 127.0.0.1:1
frontend fe
    bind 127.0.0.1:{{P1}}
    default_backend b0
global
    stats timeout 20s
global
    stats socket {{SOCK}} level admin
backend b
    server s 127.0.0.1:1
frontend b
    bind 127.0.0.1:{{P2}}
    default_backend b
`,
		want: "fe:F=2 b:F=5 b0:B=1 b:B=4",
	},
}

// TestProxyIDsMatchHAProxy runs HAProxy on each case and compares the iid
// column of its show stat with Parse's IDs, then does the same with what
// Format writes: HAProxy must number the written file identically and
// list its proxies in the same order.
func TestProxyIDsMatchHAProxy(t *testing.T) {
	bin := e2etest.RequireProgram(t, "haproxy")
	for _, tc := range proxyIDCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sock := filepath.Join(dir, "s.sock")
			src := strings.ReplaceAll(tc.src, "{{SOCK}}", sock)
			for i := 1; strings.Contains(src, fmt.Sprintf("{{P%d}}", i)); i++ {
				src = strings.ReplaceAll(src, fmt.Sprintf("{{P%d}}", i), strconv.Itoa(freePort(t)))
			}
			cfg, _, err := parse("ids.cfg", []byte(src), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if got := idSummary(cfg); got != tc.want {
				t.Errorf("Parse IDs = %q, want %q", got, tc.want)
			}
			stat := haproxyShowStat(t, bin, dir, "orig.cfg", src, sock)
			if got, want := statIDs(stat), configStatIDs(cfg); got != want {
				t.Errorf("HAProxy numbers %q, Parse %q", got, want)
			}
			out, err := Format(cfg)
			if err != nil {
				t.Fatal(err)
			}
			again, _, err := parse("written.cfg", out, noEnv)
			if err != nil {
				t.Fatalf("written configuration does not parse: %v\n%s", err, out)
			}
			if got := idSummary(again); got != tc.want {
				t.Errorf("IDs after Format and Parse = %q, want %q\n%s", got, tc.want, out)
			}
			stat2 := haproxyShowStat(t, bin, dir, "written.cfg", string(out), sock)
			if got, want := statRows(stat2), statRows(stat); got != want {
				t.Errorf("HAProxy on the written file lists\n%s\nwant\n%s\n%s", got, want, out)
			}
		})
	}
}

func idSummary(cfg balancer.Config) string {
	var parts []string
	for _, f := range cfg.Frontends {
		parts = append(parts, fmt.Sprintf("%s:F=%d", f.Name, f.ID))
	}
	for _, b := range cfg.Backends {
		parts = append(parts, fmt.Sprintf("%s:B=%d", b.Name, b.ID))
	}
	return strings.Join(parts, " ")
}

// configStatIDs returns "name:FRONTEND=id" and "name:BACKEND=id" in name
// order, as statIDs does for a show stat dump.
func configStatIDs(cfg balancer.Config) string {
	var parts []string
	for _, f := range cfg.Frontends {
		parts = append(parts, fmt.Sprintf("%s:FRONTEND=%d", f.Name, f.ID))
	}
	for _, b := range cfg.Backends {
		parts = append(parts, fmt.Sprintf("%s:BACKEND=%d", b.Name, b.ID))
	}
	return sortedJoin(parts)
}

func statIDs(csv string) string {
	var parts []string
	for _, f := range statFields(csv) {
		if f[1] == "FRONTEND" || f[1] == "BACKEND" {
			parts = append(parts, fmt.Sprintf("%s:%s=%s", f[0], f[1], f[27]))
		}
	}
	return sortedJoin(parts)
}

// statRows returns the name, row kind and iid of every show stat row, in
// order.
func statRows(csv string) string {
	var rows []string
	for _, f := range statFields(csv) {
		rows = append(rows, f[0]+","+f[1]+","+f[27])
	}
	return strings.Join(rows, "\n")
}

func statFields(csv string) [][]string {
	var out [][]string
	for _, l := range strings.Split(csv, "\n") {
		if f := strings.Split(l, ","); len(f) > 28 && !strings.HasPrefix(l, "#") {
			out = append(out, f)
		}
	}
	return out
}

func sortedJoin(parts []string) string {
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// haproxyShowStat runs HAProxy on src until it answers "show stat" on sock,
// and returns the reply.
func haproxyShowStat(t *testing.T, bin, dir, name, src, sock string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(sock)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-db", "-f", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		cancel()
		<-exited
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = io.WriteString(conn, "show stat\n")
			var out []byte
			if err == nil {
				out, err = io.ReadAll(conn)
			}
			conn.Close()
			if err != nil {
				t.Fatalf("show stat: %v", err)
			}
			return string(out)
		}
		select {
		case <-exited:
			t.Fatalf("haproxy exited:\n%s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-exited
			t.Fatalf("haproxy did not open its stats socket: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
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

// TestFormatProxyIDs writes hand-built Configs: IDs left at 0 are numbered
// without "id" lines, a frontend and a backend sharing a name become a
// listen section, and IDs that HAProxy would not give get an "id" line.
func TestFormatProxyIDs(t *testing.T) {
	tests := []struct {
		name      string
		cfg       balancer.Config
		wantLines []string // lines the output must hold, in order
		noLines   []string // lines it must not hold
		wantIDs   string
	}{
		{
			name: "numbered in order, listen for a shared name",
			cfg: balancer.Config{
				Frontends: []balancer.Frontend{{Name: "web", Binds: balancer.BindAddrs(":8080"), DefaultBackend: "app"}, {Name: "li", Binds: balancer.BindAddrs(":8081")}},
				Backends:  []balancer.Backend{{Name: "app"}, {Name: "li", ForwardFor: true}},
			},
			wantLines: []string{"frontend web", "backend app", "listen li", "    option forwardfor"},
			noLines:   []string{"    id 1", "    id 2", "    id 3", "frontend li", "backend li"},
			wantIDs:   "web:F=1 li:F=3 app:B=2 li:B=3",
		},
		{
			name: "IDs HAProxy would not give",
			cfg: balancer.Config{
				Global:    balancer.Global{StatsSockets: []balancer.StatsSocket{{Address: "/run/t.sock"}}},
				Frontends: []balancer.Frontend{{Name: "web", ID: 7, Binds: balancer.BindAddrs(":8080"), DefaultBackend: "app"}},
				Backends:  []balancer.Backend{{Name: "app", ID: 3}, {Name: "next"}},
			},
			wantLines: []string{"backend app", "    id 3", "backend next", "frontend web", "    id 7"},
			noLines:   []string{"    id 4"},
			wantIDs:   "web:F=7 app:B=3 next:B=4",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Format(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(out), "\n")
			at := 0
			for _, want := range tt.wantLines {
				for at < len(lines) && lines[at] != want {
					at++
				}
				if at == len(lines) {
					t.Errorf("output lacks %q (in order):\n%s", want, out)
					break
				}
			}
			for _, l := range lines {
				for _, no := range tt.noLines {
					if l == no {
						t.Errorf("output holds %q:\n%s", no, out)
					}
				}
			}
			cfg, _, err := parse("written.cfg", out, noEnv)
			if err != nil {
				t.Fatalf("written configuration does not parse: %v\n%s", err, out)
			}
			if got := idSummary(cfg); got != tt.wantIDs {
				t.Errorf("IDs = %q, want %q\n%s", got, tt.wantIDs, out)
			}
		})
	}
}
