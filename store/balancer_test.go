package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// liveConfig is a configuration the balancer accepts.
func liveConfig() balancer.Config {
	cfg := balancer.Config{
		Frontends: []balancer.Frontend{{Name: "www", Binds: balancer.BindAddrs("127.0.0.1:0"), DefaultBackend: "app"}},
		Backends: []balancer.Backend{
			{
				Name:             "app",
				Balance:          balancer.RoundRobin,
				Cookie:           &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert, Indirect: true, NoCache: true, Dynamic: true},
				DynamicCookieKey: "first-live-key",
				Retries:          3,
				Servers: []balancer.Server{
					{Name: "s1", Address: "127.0.0.1", Port: 9001, PortSet: true, Weight: 1},
					{Name: "s2", Address: "127.0.0.1", Port: 9002, PortSet: true, Weight: 1},
					{Name: "s3", Address: "127.0.0.1", Port: 9003, PortSet: true, Weight: 1, Cookie: "c3"},
				},
			},
			{
				Name:    "static",
				Balance: balancer.StaticRR,
				Servers: []balancer.Server{{Name: "x1", Address: "127.0.0.2", Port: 80, PortSet: true, Weight: 1}},
			},
		},
	}
	return cfg
}

// liveBalancer builds a balancer over a new store seeded with its state,
// the way the program does on first start.
func liveBalancer(t *testing.T, path string) (*balancer.Balancer, *store.Store) {
	t.Helper()
	s := storetest.OpenPath(t, path)
	b, err := balancer.New(liveConfig(), balancer.Options{})
	if err != nil {
		t.Fatalf("balancer.New: %v", err)
	}
	if err := s.ReplaceState(context.Background(), b.State(), store.AuditEntry{Channel: "import", Command: "seed"}); err != nil {
		t.Fatal(err)
	}
	b.SetCommitter(s.Committer())
	return b, s
}

// TestBalancerChangesAreStored applies changes through the real balancer
// and checks after each that the database holds the balancer's state, and
// that a balancer rebuilt from the database has that state too.
func TestBalancerChangesAreStored(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tether.db")
	b, s := liveBalancer(t, path)
	ref := func(srv string) balancer.ServerRef { return balancer.ServerRef{Backend: "app", Server: srv} }
	changes := []struct {
		change     balancer.Change
		command    string
		wantDetail string
	}{
		{balancer.SetAdminState{ServerRef: ref("s1"), State: balancer.Drain}, "set server app/s1 state drain", "state ready → drain"},
		{balancer.SetWeight{ServerRef: ref("s2"), Weight: 50}, "set server app/s2 weight 50", "weight 1 → 50"},
		{balancer.SetAddr{ServerRef: ref("s2"), Address: "127.0.0.3", Port: 9005, PortSet: true}, "set server app/s2 addr 127.0.0.3 port 9005", "127.0.0.3"},
		{balancer.SetMaxConn{ServerRef: ref("s3"), MaxConn: 10}, "set maxconn server app/s3 10", "maxconn 0 → 10"},
		{balancer.SetDynamicCookies{Backend: "app", Enabled: false}, "disable dynamic-cookie backend app", "dynamic-cookies on → off"},
		{balancer.SetDynamicCookies{Backend: "app", Enabled: true}, "enable dynamic-cookie backend app", "dynamic-cookies off → on"},
		{balancer.SetDynamicCookieKey{Backend: "app", Key: "second-live-key"}, "set dynamic-cookie-key backend app ********", "key fp"},
		{balancer.AddServer{Backend: "app", Server: balancer.Server{Name: "s4", Address: "127.0.0.1", Port: 9004, PortSet: true, Weight: 1}}, "add server app/s4 127.0.0.1:9004", "add server s4"},
		{balancer.SetAdminState{ServerRef: ref("s4"), State: balancer.Ready}, "set server app/s4 state ready", "state maint → ready"},
		{balancer.SetAdminState{ServerRef: ref("s1"), State: balancer.Maint}, "set server app/s1 state maint", "state drain → maint"},
		{balancer.DelServer{ServerRef: ref("s1")}, "del server app/s1", "del server s1"},
		{balancer.SetWeight{ServerRef: balancer.ServerRef{Backend: "static", Server: "x1"}, Weight: 0}, "set weight static/x1 0", "weight 1 → 0"},
	}
	for _, c := range changes {
		origin := balancer.Origin{Channel: "socket", Source: "unix@/run/t.sock", Command: c.command}
		if err := b.Apply(c.change, origin); err != nil {
			t.Fatalf("apply %s: %v", c.command, err)
		}
		got, want := loadState(t, s), store.Normalize(b.State())
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after %s the database differs from the balancer:\n%s", c.command, diffStates(got, want))
		}
		if e := lastAudit(t, s); !strings.Contains(e.Detail, c.wantDetail) || e.Command != c.command {
			t.Errorf("after %s: audit entry %+v, want detail containing %q", c.command, e, c.wantDetail)
		}
	}
	if text := auditText(t, s); strings.Contains(text, "live-key") {
		t.Fatalf("audit log holds a key: %s", text)
	}

	// A change the balancer rejects leaves the database untouched.
	before := loadState(t, s)
	nAudit := len(listAudit(t, s))
	for _, bad := range []balancer.Change{
		balancer.SetWeight{ServerRef: ref("s2"), Weight: 300},
		balancer.SetAdminState{ServerRef: ref("nope"), State: balancer.Drain},
		balancer.DelServer{ServerRef: ref("s2")}, // not in maintenance
	} {
		if err := b.Apply(bad, balancer.Origin{Channel: "socket"}); err == nil {
			t.Errorf("balancer accepted %#v", bad)
		}
	}
	if got := loadState(t, s); !reflect.DeepEqual(got, before) {
		t.Errorf("rejected changes changed the database:\n%s", diffStates(got, before))
	}
	if n := len(listAudit(t, s)); n != nAudit {
		t.Errorf("rejected changes wrote %d audit entries through the committer", n-nAudit)
	}

	// Restart: a balancer rebuilt from the database has the same state.
	want := store.Normalize(b.State())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := storetest.OpenPath(t, path)
	st, found, err := s2.LoadState(ctx)
	if err != nil || !found {
		t.Fatalf("LoadState after restart: found=%v err=%v", found, err)
	}
	b2, err := balancer.New(st.Config, balancer.Options{Runtime: st.Servers, Committer: s2.Committer()})
	if err != nil {
		t.Fatalf("rebuild balancer from the database: %v", err)
	}
	if got := store.Normalize(b2.State()); !reflect.DeepEqual(got, want) {
		t.Errorf("rebuilt balancer differs:\n%s", diffStates(got, want))
	}
	snap := b2.Snapshot().Backend("app")
	if snap == nil || snap.KeyFingerprint == "" {
		t.Fatalf("rebuilt backend app: %+v", snap)
	}
	if s4 := snap.Server("s4"); s4 == nil || s4.Weight != 1 || s4.Admin&balancer.AdminFMaint != 0 {
		t.Errorf("rebuilt server s4: %+v", s4)
	}
	if s2s := snap.Server("s2"); s2s == nil || s2s.Weight != 50 {
		t.Errorf("rebuilt server s2: %+v", s2s)
	}
	if snap.Server("s1") != nil {
		t.Error("deleted server s1 came back after restart")
	}
}

// TestBalancerCommitFailureAppliesNothing: a change that cannot be stored
// is not applied.
func TestBalancerCommitFailureAppliesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tether.db")
	b, s := liveBalancer(t, path)
	before := b.State()
	stored := loadState(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := b.Apply(balancer.SetAdminState{ServerRef: balancer.ServerRef{Backend: "app", Server: "s1"}, State: balancer.Maint},
		balancer.Origin{Channel: "console", Actor: "alice"})
	if err == nil {
		t.Fatal("Apply succeeded although the store is closed")
	}
	if !reflect.DeepEqual(b.State(), before) {
		t.Error("the balancer applied a change that was not stored")
	}
	s2 := storetest.OpenPath(t, path)
	if got := loadState(t, s2); !reflect.DeepEqual(got, stored) {
		t.Errorf("database changed:\n%s", diffStates(got, stored))
	}
}

// TestBalancerKeyFingerprintMatches checks that the store and the balancer
// show a key by the same fingerprint, so the console and the audit log
// agree.
func TestBalancerKeyFingerprintMatches(t *testing.T) {
	b, err := balancer.New(liveConfig(), balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := b.Snapshot().Backend("app").KeyFingerprint
	if want := store.KeyFingerprint("first-live-key"); got != want {
		t.Errorf("balancer fingerprint %q, store fingerprint %q", got, want)
	}
}

// TestBalancerCommitLatency logs the latency of committing one change on a
// backend of 1000 servers through the real balancer.
func TestBalancerCommitLatency(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures latency: skipped with -short or -race")
	}
	cfg := liveConfig()
	for i := range 1000 {
		cfg.Backends[0].Servers = append(cfg.Backends[0].Servers, balancer.Server{Name: fmt.Sprintf("big%04d", i),
			Address: fmt.Sprintf("127.1.%d.%d", i/250, i%250+1), Port: 80, PortSet: true, Weight: 1})
	}
	s := storetest.Open(t)
	b, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceState(context.Background(), b.State(), store.AuditEntry{Channel: "import"}); err != nil {
		t.Fatal(err)
	}
	commit := s.Committer()
	var commitLat []time.Duration
	b.SetCommitter(func(c balancer.Commit) error {
		start := time.Now()
		err := commit(c)
		commitLat = append(commitLat, time.Since(start))
		return err
	})
	const n = 200
	lat := make([]time.Duration, n)
	for i := range n {
		st := []balancer.AdminMode{balancer.Drain, balancer.Ready}[i%2]
		start := time.Now()
		if err := b.Apply(balancer.SetAdminState{ServerRef: balancer.ServerRef{Backend: "app", Server: "big0500"}, State: st},
			balancer.Origin{Channel: "socket"}); err != nil {
			t.Fatal(err)
		}
		lat[i] = time.Since(start)
	}
	slices.Sort(lat)
	slices.Sort(commitLat)
	t.Logf("on a backend of 1003 servers, Apply (with commit): median %v, p99 %v; the commit alone: median %v, p99 %v (n=%d)",
		lat[n/2], lat[n*99/100], commitLat[n/2], commitLat[n*99/100], n)
	if got := loadState(t, s); !reflect.DeepEqual(got, store.Normalize(b.State())) {
		t.Error("database differs from the balancer after the run")
	}
}

func listAudit(t *testing.T, s *store.Store) []store.AuditEntry {
	t.Helper()
	e, err := s.ListAudit(context.Background(), store.AuditFilter{Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
