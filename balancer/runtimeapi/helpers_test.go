package runtimeapi

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/haproxycfg"
)

// requireProgram returns the path of an external program, skipping the
// test when it is missing unless TETHER_E2E=require.
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("TETHER_E2E") == "require" {
			t.Fatalf("%s is required (TETHER_E2E=require) but not found: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// newTestBalancer builds a balancer from HAProxy configuration text.
func newTestBalancer(t *testing.T, cfgText string) (*balancer.Balancer, balancer.Config) {
	t.Helper()
	cfg, _, err := haproxycfg.Parse("test.cfg", []byte(cfgText))
	if err != nil {
		t.Fatalf("parse test configuration: %v", err)
	}
	b, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatalf("build balancer: %v", err)
	}
	return b, cfg
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func adminExec(d *Dispatcher, line string) string {
	return d.Execute(context.Background(), line, balancer.LevelAdmin, balancer.Origin{Channel: "test"})
}
