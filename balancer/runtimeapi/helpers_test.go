package runtimeapi

import (
	"context"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/haproxycfg"
)

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
