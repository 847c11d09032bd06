package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/e2etest"
	"tether/balancer/haproxycfg"
	"tether/balancer/runtimeapi"
)

const ctlTestCfg = `
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
backend be
    balance roundrobin
    server s1 127.0.0.1:18081
    server s2 127.0.0.1:18082 weight 10
`

// ctlTether starts a Tether Runtime API socket and returns its path.
func ctlTether(t *testing.T) string {
	t.Helper()
	cfg, _, err := haproxycfg.Parse("ctl.cfg", []byte(ctlTestCfg))
	if err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tether.sock")
	l, err := runtimeapi.Listen(context.Background(), balancer.StatsSocket{Address: path, Level: balancer.LevelAdmin},
		runtimeapi.NewDispatcher(b, runtimeapi.DispatcherOptions{}), balancer.Global{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return path
}

// ctlHAProxy starts HAProxy 2.6 with an admin socket, or skips.
func ctlHAProxy(t *testing.T) string {
	t.Helper()
	bin := e2etest.RequireProgram(t, "haproxy")
	dir := t.TempDir()
	sock := filepath.Join(dir, "haproxy.sock")
	cfg := fmt.Sprintf("global\n    stats socket %s level admin\n%s", sock, ctlTestCfg)
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-db", "-f", cfgPath)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("haproxy did not open its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunCtl(t *testing.T) {
	servers := map[string]func(*testing.T) string{"tether": ctlTether, "haproxy": ctlHAProxy}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			sock := start(t)
			tests := []struct {
				args    []string
				stdin   string
				want    string
				prefix  bool // want is only the start of the output
				wantErr bool
			}{
				{args: []string{"-s", sock, "get weight be/s2"}, want: "10 (initial 10)\n\n"},
				{args: []string{"-s", sock, "set weight be/s1 3; get", "weight be/s1"}, want: "\n3 (initial 1)\n\n"},
				{args: []string{"-s", sock, "get weight be/zz"}, want: "No such server.\n\n", wantErr: true},
				{args: []string{"-s", sock, "show cli level"}, want: "admin\n\n"},
				{args: []string{"-s", sock}, stdin: "get weight be/s2\nhistory\n!1\nget weight be/zz\n",
					want: "10 (initial 10)\n\n    1  get weight be/s2\nget weight be/s2\n10 (initial 10)\n\nNo such server.\n\n", wantErr: true},
				{args: []string{"-s", sock}, stdin: "show cli level\nquit\nget weight be/zz\n", want: "admin\n\n"},
				{args: []string{"-s", sock, "foo bar"}, want: "Unknown command", prefix: true, wantErr: true},
				{args: []string{"-s", sock, "show cli level;foo"}, want: "admin\n\nUnknown command", prefix: true, wantErr: true},
				{args: []string{"-s", sock}, stdin: "foo\nshow cli level\n", want: "Unknown command", prefix: true, wantErr: true},
				{args: []string{"-s", sock, "help"}, want: "The following commands are valid", prefix: true},
			}
			for _, tt := range tests {
				var out, errOut strings.Builder
				err := runCtl(context.Background(), tt.args, strings.NewReader(tt.stdin), &out, &errOut)
				if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errCtlCommandFailed)) {
					t.Errorf("runCtl(%q) error = %v, want error %v", tt.args[2:], err, tt.wantErr)
				}
				if tt.prefix && !strings.HasPrefix(out.String(), tt.want) || !tt.prefix && out.String() != tt.want {
					t.Errorf("runCtl(%q) printed %q, want %q", tt.args[2:], out.String(), tt.want)
				}
			}
		})
	}
}

func TestRunCtlDefaultSocket(t *testing.T) {
	sock := ctlTether(t)
	t.Setenv("TETHER_SOCKET", sock)
	var out strings.Builder
	if err := runCtl(context.Background(), []string{"show cli level"}, strings.NewReader(""), &out, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "admin\n\n" {
		t.Fatalf("printed %q", out.String())
	}
	t.Setenv("TETHER_SOCKET", filepath.Join(t.TempDir(), "missing.sock"))
	if err := runCtl(context.Background(), []string{"show cli level"}, strings.NewReader(""), &out, &out); err == nil {
		t.Fatal("no error for a missing socket")
	}
}

func TestCtlAddress(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9999":   "ipv4@127.0.0.1:9999",
		"[::1]:9999":       "ipv6@[::1]:9999",
		"ipv4@10.0.0.1:1":  "ipv4@10.0.0.1:1",
		"/run/tether.sock": "/run/tether.sock",
		"./tether.sock":    "./tether.sock",
	} {
		if got := ctlAddress(in); got != want {
			t.Errorf("ctlAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
