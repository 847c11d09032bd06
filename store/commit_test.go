package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// seeded opens a store holding richState.
func seeded(t *testing.T) (*store.Store, balancer.State) {
	t.Helper()
	s := storetest.Open(t)
	st := richState()
	if err := s.ReplaceState(context.Background(), st, store.AuditEntry{Channel: "import", Command: "seed"}); err != nil {
		t.Fatal(err)
	}
	return s, clone(st)
}

func loadState(t *testing.T, s *store.Store) balancer.State {
	t.Helper()
	got, found, err := s.LoadState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("no state stored")
	}
	return got
}

func lastAudit(t *testing.T, s *store.Store) store.AuditEntry {
	t.Helper()
	e, err := s.ListAudit(context.Background(), store.AuditFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(e) != 1 {
		t.Fatalf("audit log has %d entries, want at least 1", len(e))
	}
	return e[0]
}

// TestCommitSequence applies changes of every kind through a balancer
// running richState and checks after each that the database holds the
// balancer's state and that the journal row describes the change. A step
// with replace set runs the whole state it returns, as a reload does.
func TestCommitSequence(t *testing.T) {
	type step struct {
		name       string
		change     balancer.Change
		replace    func(t *testing.T, st *balancer.State)
		wantServer string
		wantDetail []string // substrings of the audit entry's Detail
	}
	steps := []step{
		{
			name:       "drain",
			change:     balancer.SetAdminState{ServerRef: balancer.ServerRef{Backend: "app", Server: "web1"}, State: balancer.Drain},
			wantServer: "web1",
			wantDetail: []string{"state ready → drain"},
		},
		{
			name:       "weight",
			change:     balancer.SetWeight{ServerRef: balancer.ServerRef{Backend: "app", Server: "web1"}, Weight: 50},
			wantServer: "web1",
			wantDetail: []string{"weight 10 → 50"},
		},
		{
			name:       "runtime appears",
			change:     balancer.SetWeight{ServerRef: balancer.ServerRef{Backend: "api", Server: "a2"}, Weight: 3},
			wantServer: "a2",
			wantDetail: []string{"weight 1 → 3"},
		},
		{
			name:       "addr",
			change:     balancer.SetAddr{ServerRef: balancer.ServerRef{Backend: "app", Server: "web1"}, Address: "10.0.0.9", Port: 81, PortSet: true},
			wantServer: "web1",
			wantDetail: []string{"addr 10.0.0.1 → 10.0.0.9", "port 80 → 81"},
		},
		{
			name:       "check",
			change:     balancer.SetCheckEnabled{ServerRef: balancer.ServerRef{Backend: "app", Server: "web1"}, Enabled: false},
			wantServer: "web1",
			wantDetail: []string{"check on → off"},
		},
		{
			name:       "template slot resolved",
			change:     balancer.SetAddr{ServerRef: balancer.ServerRef{Backend: "app", Server: "dyn2"}, Address: "10.0.5.2", Resolved: true},
			wantServer: "dyn2",
			wantDetail: []string{`addr "" → 10.0.5.2`},
		},
		{
			name:       "template slot forgotten",
			change:     balancer.SetAddr{ServerRef: balancer.ServerRef{Backend: "app", Server: "dyn2"}, Resolved: true},
			wantServer: "dyn2",
			wantDetail: []string{`addr 10.0.5.2 → ""`},
		},
		{
			name:       "maxconn",
			change:     balancer.SetMaxConn{ServerRef: balancer.ServerRef{Backend: "app", Server: "web2"}, MaxConn: 7},
			wantServer: "web2",
			wantDetail: []string{"maxconn 0 → 7"},
		},
		{
			name:       "check port",
			change:     balancer.SetCheckPort{ServerRef: balancer.ServerRef{Backend: "app", Server: "web1"}, Port: 9090},
			wantServer: "web1",
			wantDetail: []string{"check-port 8080 → 9090"},
		},
		{
			name:       "add server at end",
			change:     balancer.AddServer{Backend: "app", Server: balancer.Server{Name: "web4", Address: "10.0.0.4", Port: 80, PortSet: true, Weight: 1}},
			wantServer: "web4",
			wantDetail: []string{"add server web4 10.0.0.4:80 state maint weight 1 check off"},
		},
		{
			name:       "maintenance before delete",
			change:     balancer.SetAdminState{ServerRef: balancer.ServerRef{Backend: "app", Server: "web1"}, State: balancer.Maint},
			wantServer: "web1",
			wantDetail: []string{"state drain → maint"},
		},
		{
			name:       "delete first server",
			change:     balancer.DelServer{ServerRef: balancer.ServerRef{Backend: "app", Server: "web1"}},
			wantServer: "web1",
			wantDetail: []string{"del server web1"},
		},
		{
			name:       "add server in the middle",
			change:     balancer.AddServer{Backend: "app", Server: balancer.Server{Name: "mid"}},
			wantServer: "mid",
			wantDetail: []string{"add server mid"},
		},
		{
			name:       "delete an added server",
			change:     balancer.DelServer{ServerRef: balancer.ServerRef{Backend: "app", Server: "web4"}},
			wantServer: "web4",
			wantDetail: []string{"del server web4"},
		},
		{
			name: "reorder servers",
			replace: func(t *testing.T, st *balancer.State) {
				b := backendOf(t, st, "app")
				for i, j := 0, len(b.Servers)-1; i < j; i, j = i+1, j-1 {
					b.Servers[i], b.Servers[j] = b.Servers[j], b.Servers[i]
				}
			},
			wantDetail: []string{"servers reordered"},
		},
		{
			name:       "dynamic cookies off",
			change:     balancer.SetDynamicCookies{Backend: "app", Enabled: false},
			wantDetail: []string{"dynamic-cookies on → off"},
		},
		{
			name:       "key",
			change:     balancer.SetDynamicCookieKey{Backend: "app", Key: "another-secret"},
			wantDetail: []string{"key fp " + store.KeyFingerprint("s3cr3t-key-app") + " → " + store.KeyFingerprint("another-secret")},
		},
		{
			name:       "cookie removed",
			change:     balancer.SetCookie{Backend: "api"},
			wantDetail: []string{"cookie on → off", "cookie.name API → \"\""},
		},
		{
			name: "cookie set",
			change: balancer.SetCookie{Backend: "api", Cookie: &balancer.CookieConfig{Name: "NEW", Mode: balancer.CookieInsert,
				Domains: []string{".a.example"}, MaxIdle: time.Hour}},
			wantDetail: []string{"cookie off → on", "cookie.mode passive → insert", "cookie.domains none → .a.example", "cookie.maxidle 0s → 1h0m0s"},
		},
		{
			name:       "no durable change",
			change:     balancer.ShutdownSessions{ServerRef: balancer.ServerRef{Backend: "api", Server: "a1"}},
			wantServer: "a1",
			wantDetail: []string{"no durable change"},
		},
		{
			name:       "resolution empties address",
			change:     balancer.SetAddr{ServerRef: balancer.ServerRef{Backend: "api", Server: "a1"}, Resolved: true},
			wantServer: "a1",
			wantDetail: []string{`addr 10.0.1.1 → ""`},
		},
		{
			name: "other objects",
			replace: func(t *testing.T, st *balancer.State) {
				st.Config.Global.StatsMaxConn = 5
				st.Config.Frontends[0].Binds = append(st.Config.Frontends[0].Binds, balancer.Bind{Addr: "127.0.0.1:8443"})
				st.Config.Resolvers[0].Hold["nx"] = time.Minute
				st.Config.Resolvers = st.Config.Resolvers[:1]
				st.Config.Backends = append(st.Config.Backends[:2], st.Config.Backends[3:]...)
				st.Config.Backends = append(st.Config.Backends, balancer.Backend{Name: "new", Balance: balancer.RoundRobin,
					Servers: []balancer.Server{{Name: "n1", Address: "127.0.0.1"}}})
				st.Servers["new/n1"] = balancer.ServerRuntime{Weight: 1, CheckEnabled: true}
				st.Config.Backends[0].Templates[0].High = 9
			},
			wantDetail: []string{"global: stats-maxconn 20 → 5", "frontend www: binds", "resolvers dns: hold", "del resolvers empty",
				"del backend rewrite", "add backend new", "server-template", "dyn[1-5]"},
		},
	}

	s := storetest.Open(t)
	st := richState()
	b, err := balancer.New(st.Config, balancer.Options{Runtime: st.Servers})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceState(context.Background(), b.State(), store.AuditEntry{Channel: "import", Command: "seed"}); err != nil {
		t.Fatal(err)
	}
	b.SetCommitter(s.Committer())
	for i, step := range steps {
		o := balancer.Origin{Channel: "socket", Source: "/run/tether.sock", Actor: "alice", Command: fmt.Sprintf("cmd %d", i)}
		if step.replace != nil {
			next := clone(b.State())
			step.replace(t, &next)
			if err := b.Replace(next, o, step.name); err != nil {
				t.Fatalf("step %s: %v", step.name, err)
			}
		} else if err := b.Apply(step.change, o); err != nil {
			t.Fatalf("step %s: %v", step.name, err)
		}
		if got, want := loadState(t, s), store.Normalize(b.State()); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %s: stored state differs:\n%s", step.name, diffStates(got, want))
		}
		e := lastAudit(t, s)
		if e.Command != o.Command || e.Actor != "alice" || e.Channel != "socket" || e.Source != o.Source || e.Result != store.ResultOK {
			t.Errorf("step %s: audit entry %+v does not match the commit", step.name, e)
		}
		if step.change != nil && e.Backend != step.change.BackendName() {
			t.Errorf("step %s: audit backend = %q, want %q", step.name, e.Backend, step.change.BackendName())
		}
		if e.Server != step.wantServer {
			t.Errorf("step %s: audit server = %q, want %q", step.name, e.Server, step.wantServer)
		}
		for _, w := range step.wantDetail {
			if !strings.Contains(e.Detail, w) {
				t.Errorf("step %s: audit detail %q lacks %q", step.name, e.Detail, w)
			}
		}
		t.Logf("%-26s before=%q after=%q detail=%q", step.name, e.Before, e.After, e.Detail)
	}
}

// TestCommitErrorLeavesDatabaseUnchanged: a commit the store refuses or
// cannot write changes neither the state nor the journal.
func TestCommitErrorLeavesDatabaseUnchanged(t *testing.T) {
	tests := []struct {
		name   string
		commit func(st balancer.State) balancer.Commit
	}{
		{
			name: "reload with runtime settings of a backend that does not exist",
			commit: func(st balancer.State) balancer.Commit {
				st.Servers["nobody/s1"] = balancer.ServerRuntime{Weight: 1}
				return balancer.Commit{Replaced: true, After: st, Origin: balancer.Origin{Channel: "import"}}
			},
		},
		{
			name: "change of an unknown type",
			commit: func(st balancer.State) balancer.Commit {
				return balancer.Commit{Changes: []balancer.Change{unknownChange{}}, Origin: balancer.Origin{Channel: "ctl"}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, st := seeded(t)
			auditBefore, err := s.ListAudit(ctx, store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Committer()(tt.commit(clone(st))); err == nil {
				t.Fatal("commit succeeded, want an error")
			}
			if got, want := loadState(t, s), store.Normalize(st); !reflect.DeepEqual(got, want) {
				t.Errorf("failed commit changed the database:\n%s", diffStates(got, want))
			}
			auditAfter, err := s.ListAudit(ctx, store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(auditAfter, auditBefore) {
				t.Errorf("failed commit wrote to the journal: %+v", auditAfter[0])
			}
		})
	}
}

// unknownChange is a change type the journal's codec does not know.
type unknownChange struct{ balancer.SetWeight }

// TestConcurrentWriters runs committers, audit appends and audit reads at
// once: SQLite must never report the database as locked.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	const backends, rounds = 4, 25
	st := balancer.State{Servers: map[string]balancer.ServerRuntime{}}
	for b := range backends {
		be := balancer.Backend{Name: fmt.Sprintf("b%d", b), Balance: balancer.RoundRobin}
		for i := range 50 {
			be.Servers = append(be.Servers, balancer.Server{Name: fmt.Sprintf("s%d", i), Address: "127.0.0.1", Port: 8000 + i, PortSet: true, Weight: 1})
			st.Servers[fmt.Sprintf("b%d/s%d", b, i)] = balancer.ServerRuntime{Weight: 1}
		}
		st.Config.Backends = append(st.Config.Backends, be)
	}
	b, err := balancer.New(st.Config, balancer.Options{Runtime: st.Servers})
	if err != nil {
		t.Fatal(err)
	}
	st = b.State()
	if err := s.ReplaceState(ctx, st, store.AuditEntry{Channel: "import"}); err != nil {
		t.Fatal(err)
	}
	commit := s.Committer()

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	finals := make([]balancer.State, backends)
	for b := range backends {
		wg.Go(func() {
			// Each writer owns one backend and keeps its own view of the
			// state, in which only that backend changes.
			view := clone(st)
			for r := range rounds {
				key := fmt.Sprintf("b%d/s%d", b, r%50)
				rt := view.Servers[key]
				rt.Weight = r + 2
				view.Servers[key] = rt
				if err := commit(balancer.Commit{
					Changes: []balancer.Change{balancer.SetWeight{ServerRef: balancer.ServerRef{Backend: fmt.Sprintf("b%d", b), Server: fmt.Sprintf("s%d", r%50)}, Weight: r + 2}},
					Origin:  balancer.Origin{Channel: "socket"},
				}); err != nil {
					errs <- err
					return
				}
			}
			finals[b] = view
		})
	}
	for w := range 2 {
		wg.Go(func() {
			for r := range rounds {
				if err := s.AppendAudit(ctx, store.AuditEntry{Channel: "console", Actor: fmt.Sprintf("u%d", w),
					Command: "set weight x/y 999", Result: "refused"}); err != nil {
					errs <- err
					return
				}
				if _, err := s.ListAudit(ctx, store.AuditFilter{Limit: 10 + r}); err != nil {
					errs <- err
					return
				}
				if _, _, err := s.LoadState(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent access: %v", err)
	}
	if t.Failed() {
		return
	}
	got := loadState(t, s)
	want := clone(st)
	for b := range backends {
		for i := range 50 {
			key := fmt.Sprintf("b%d/s%d", b, i)
			want.Servers[key] = finals[b].Servers[key]
		}
	}
	if want = store.Normalize(want); !reflect.DeepEqual(got, want) {
		t.Errorf("state after concurrent commits:\n%s", diffStates(got, want))
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + backends*rounds + 2*rounds; len(all) != want {
		t.Errorf("audit log has %d entries, want %d", len(all), want)
	}
}

// TestTwoStoresOneFile writes through two stores opened on the same file,
// as two processes would: SQLite's busy timeout and IMMEDIATE transactions
// must serialise them without "database is locked".
func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	a := storetest.OpenPath(t, path)
	b := storetest.OpenPath(t, path)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, s := range []*store.Store{a, b} {
		wg.Go(func() {
			for j := range n {
				if err := s.AppendAudit(ctx, store.AuditEntry{Channel: "ctl", Actor: fmt.Sprintf("p%d", i), Command: fmt.Sprint(j)}); err != nil {
					errs <- err
				}
				if _, err := s.ListAudit(ctx, store.AuditFilter{Limit: 5}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("two stores on one file: %v", err)
	}
	all, err := a.ListAudit(ctx, store.AuditFilter{Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2*n {
		t.Errorf("%d audit entries, want %d", len(all), 2*n)
	}
}
