package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/e2etest"
	"tether/balancer/haproxycfg"
	"tether/store"
)

// TestExportKeepsGraceAsComments exports a state with a dynamic-cookie
// grace: the grace is written as comments (the retired key by fingerprint
// only), the warning says so, and the file stays loadable by Tether and
// by HAProxy.
func TestExportKeepsGraceAsComments(t *testing.T) {
	dir := t.TempDir()
	until := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	st := balancer.State{Config: balancer.Config{Frontends: []balancer.Frontend{{
		Name: "fe", Binds: balancer.BindAddrs("127.0.0.1:18999"), DefaultBackend: "be", TimeoutClient: time.Second,
	}}, Backends: []balancer.Backend{{
		Name:                   "be",
		Balance:                balancer.RoundRobin,
		Cookie:                 &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert, Indirect: true, Dynamic: true},
		DynamicCookieKey:       "current-key",
		DynamicCookieAddrGrace: 5 * time.Minute,
		RetiredKeys:            []balancer.RetiredKey{{Key: "retired-key", Until: until}},
		Retries:                3,
		TimeoutConnect:         time.Second,
		TimeoutServer:          time.Second,
		Servers:                []balancer.Server{{Name: "s1", Address: "127.0.0.1", Port: 8001, PortSet: true, Weight: 1}},
	}}}}
	db := filepath.Join(dir, "t.db")
	s, err := store.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.ReplaceState(context.Background(), st, store.AuditEntry{Time: time.Now(), Actor: "test", Channel: "import", Command: "seed", Result: "ok"})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"export", "-db", db}, func(string) string { return "" }, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{
		"    dynamic-cookie-key current-key\n",
		"    # tether: dynamic-cookie-addr-grace 5m\n",
		"    # tether: retired dynamic-cookie-key fingerprint " + balancer.KeyFingerprint("retired-key") + " honoured until 2026-12-01T04:00:00Z\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "retired-key") {
		t.Errorf("export holds the retired key:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "backend be has a dynamic-cookie grace") {
		t.Errorf("export did not warn about the grace: %q", stderr.String())
	}
	file := filepath.Join(dir, "exported.cfg")
	if err := os.WriteFile(file, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := haproxycfg.ParseFile(file); err != nil {
		t.Fatalf("Tether refuses the export: %v", err)
	}
	haproxy := e2etest.RequireProgram(t, "haproxy")
	if msg, err := exec.Command(haproxy, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c refuses the export: %v\n%s\n%s", err, msg, out)
	}
}
