package discovery

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"tether/balancer"
)

// startReal builds a real balancer from cfg after InitAddrs and runs a
// resolver on it until the test ends.
func startReal(t *testing.T, cfg balancer.Config) (*balancer.Balancer, *Resolver) {
	t.Helper()
	initCfg, errs := InitAddrs(context.Background(), cfg, func(ctx context.Context, host string) ([]netip.Addr, error) {
		return nil, fmt.Errorf("no libc lookups in tests (%s)", host)
	}, nil)
	if len(errs) > 0 {
		t.Fatalf("InitAddrs: %v", errs)
	}
	b, err := balancer.New(initCfg, balancer.Options{})
	if err != nil {
		t.Fatalf("balancer.New: %v", err)
	}
	r := New(cfg, b, nil, WithResolvConf(""))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
	})
	return b, r
}

// TestEndToEndBalancer drives the real balancer: records appear and slots
// get addresses, a record disappears and its slot goes to maintenance, an
// address changes and so does that slot's dynamic cookie.
func TestEndToEndBalancer(t *testing.T) {
	d := startDNS(t) // no records yet: NXDOMAIN
	cfg := templateConfig(fastResolvers("mydns", ns(d.Addr)), svc, 4, balancer.Server{Port: 80, PortSet: true})
	cfg.Backends[0].Cookie = &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert, Dynamic: true}
	cfg.Backends[0].DynamicCookieKey = "dynckey"
	b, _ := startReal(t, cfg)

	if got := addrsOf(b.Snapshot(), "b"); len(got) != 4 || got["web1"] != "MAINT" {
		t.Fatalf("before any answer: %v, want 4 slots in maintenance", got)
	}
	cookies := func() map[string]string {
		out := map[string]string{}
		for _, s := range b.Snapshot().Backend("b").Servers {
			out[s.Config.Name] = s.Cookie
		}
		return out
	}
	steps := []struct {
		name    string
		records []string
		want    map[string]string
	}{
		{"records appear", []string{"A 127.0.0.11", "A 127.0.0.12", "A 127.0.0.13"},
			map[string]string{"web1": "127.0.0.13:80", "web2": "127.0.0.12:80", "web3": "127.0.0.11:80", "web4": "MAINT"}},
		{"a record disappears", []string{"A 127.0.0.11", "A 127.0.0.13"},
			map[string]string{"web1": "127.0.0.13:80", "web2": "MAINT", "web3": "127.0.0.11:80", "web4": "MAINT"}},
		{"an address changes", []string{"A 127.0.0.11", "A 127.0.0.14"},
			map[string]string{"web1": "127.0.0.14:80", "web2": "MAINT", "web3": "127.0.0.11:80", "web4": "MAINT"}},
	}
	var before map[string]string
	for _, step := range steps {
		if step.records != nil {
			d.set(svc, step.records...)
		}
		waitFor(t, 5*time.Second, step.name, func() (bool, string) {
			got := addrsOf(b.Snapshot(), "b")
			return equalMaps(got, step.want), fmt.Sprint(got)
		})
		after := cookies()
		switch step.name {
		case "records appear":
			// The dynamic cookie of 127.0.0.13:80 under key dynckey.
			if after["web1"] == "" || after["web1"] == after["web2"] {
				t.Errorf("dynamic cookies after resolution: %v", after)
			}
		case "an address changes":
			if after["web1"] == before["web1"] {
				t.Errorf("web1's cookie %q did not change with its address", after["web1"])
			}
			if after["web3"] != before["web3"] {
				t.Errorf("web3's cookie changed without an address change: %q -> %q", before["web3"], after["web3"])
			}
		}
		before = after
	}
}

// TestEndToEndPayloadSize: a large answer reaches the real balancer only
// with a large enough accepted_payload_size.
func TestEndToEndPayloadSize(t *testing.T) {
	for _, tc := range []struct {
		payload int
		want    int
	}{{0, 0}, {8192, 40}} {
		t.Run(fmt.Sprint("accepted_payload_size=", tc.payload), func(t *testing.T) {
			d := startDNS(t)
			d.set(svc, bigAnswer(40)...)
			res := fastResolvers("mydns", ns(d.Addr))
			res.AcceptedPayloadSize = tc.payload
			cfg := templateConfig(res, svc, 40, balancer.Server{ResolvePrefer: "ipv4"})
			b, r := startReal(t, cfg)
			waitFor(t, 5*time.Second, "answers", func() (bool, string) {
				n := 0
				for _, v := range addrsOf(b.Snapshot(), "b") {
					if v != "MAINT" {
						n++
					}
				}
				v := counter(r, "mydns", "ns1", func(c *counters) *atomicInt { return &c.valid })
				tr := counter(r, "mydns", "ns1", func(c *counters) *atomicInt { return &c.truncated })
				return n == tc.want && v+tr >= 3, fmt.Sprintf("%d in service, valid %d, truncated %d", n, v, tr)
			})
		})
	}
}

// TestOneAnswerOneCommit fills a 100-slot server-template from one DNS
// answer: the balancer commits it as one batch (one journal entry, one
// transaction), not one per slot.
func TestOneAnswerOneCommit(t *testing.T) {
	d := startDNS(t)
	res := fastResolvers("mydns", ns(d.Addr))
	res.AcceptedPayloadSize = 8192
	cfg := templateConfig(res, svc, 100, balancer.Server{Port: 80, PortSet: true, ResolvePrefer: "ipv4"})
	b, _ := startReal(t, cfg)
	var mu sync.Mutex
	var commits []int // changes per commit
	b.SetCommitter(func(c balancer.Commit) error {
		mu.Lock()
		defer mu.Unlock()
		commits = append(commits, len(c.Changes))
		return nil
	})
	d.set(svc, bigAnswer(100)...)
	waitFor(t, 5*time.Second, "every slot resolved", func() (bool, string) {
		got := addrsOf(b.Snapshot(), "b")
		for _, a := range got {
			if a == "MAINT" {
				return false, fmt.Sprint(got)
			}
		}
		return len(got) == 100, fmt.Sprint(len(got))
	})
	mu.Lock()
	defer mu.Unlock()
	if len(commits) != 1 || commits[0] != 100 {
		t.Errorf("commits (changes in each) = %v, want one of 100", commits)
	}
}
