package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

func TestLoadStateEmpty(t *testing.T) {
	s := storetest.Open(t)
	st, found, err := s.LoadState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if found {
		t.Errorf("found = true on a new database")
	}
	if !reflect.DeepEqual(st, balancer.State{}) {
		t.Errorf("state of a new database = %+v, want zero", st)
	}
}

func TestStateRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		state func(t *testing.T) balancer.State
	}{
		{"rich", func(*testing.T) balancer.State { return richState() }},
		{"every field set", filledState},
		{"empty", func(*testing.T) balancer.State { return balancer.State{} }},
		{"empty lists not nil", func(*testing.T) balancer.State {
			return balancer.State{
				Config: balancer.Config{
					Global:    balancer.Global{StatsSockets: []balancer.StatsSocket{}},
					Frontends: []balancer.Frontend{{Name: "f", Binds: balancer.BindAddrs()}},
					Backends: []balancer.Backend{{Name: "b", Cookie: &balancer.CookieConfig{Domains: []string{}, Attrs: []string{}},
						Servers: []balancer.Server{{Name: "s", InitAddr: []string{}}}, Templates: []balancer.ServerTemplate{}}},
					Resolvers: []balancer.Resolvers{{Name: "r", Hold: map[string]time.Duration{}, Nameservers: []balancer.Nameserver{}}},
				},
				Servers: map[string]balancer.ServerRuntime{},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t)
			want := tt.state(t)
			if err := s.ReplaceState(ctx, want, store.AuditEntry{Channel: "import", Command: "import"}); err != nil {
				t.Fatal(err)
			}
			got, found, err := s.LoadState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				t.Fatal("found = false after ReplaceState")
			}
			if n := store.Normalize(want); !reflect.DeepEqual(got, n) {
				t.Errorf("loaded state differs from stored:\n%s", diffStates(got, n))
			}
			if !reflect.DeepEqual(store.Normalize(got), got) {
				t.Errorf("LoadState's result is not in normal form")
			}
		})
	}
}

func TestReplaceStateReplacesEverything(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	if err := s.ReplaceState(ctx, richState(), store.AuditEntry{Channel: "import"}); err != nil {
		t.Fatal(err)
	}
	small := balancer.State{Config: balancer.Config{
		Backends: []balancer.Backend{{Name: "only", Balance: balancer.Random, Servers: []balancer.Server{{Name: "s1", Address: "127.0.0.1"}}}},
	}}
	if err := s.ReplaceState(ctx, small, store.AuditEntry{Channel: "import"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := store.Normalize(small); !reflect.DeepEqual(got, want) {
		t.Errorf("after second ReplaceState:\n%s", diffStates(got, want))
	}
}

func TestReplaceStateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*balancer.State)
	}{
		{"runtime for unknown backend", func(st *balancer.State) {
			st.Servers["ghost/s1"] = balancer.ServerRuntime{Weight: 1}
		}},
		{"runtime key without server", func(st *balancer.State) {
			st.Servers["app"] = balancer.ServerRuntime{Weight: 1}
		}},
		{"duplicate server", func(st *balancer.State) {
			st.Config.Backends[1].Servers = append(st.Config.Backends[1].Servers, st.Config.Backends[1].Servers[0])
		}},
		{"duplicate backend", func(st *balancer.State) {
			st.Config.Backends = append(st.Config.Backends, balancer.Backend{Name: "app"})
		}},
		{"unknown cookie mode", func(st *balancer.State) { st.Config.Backends[0].Cookie.Mode = 42 }},
		{"unknown admin mode", func(st *balancer.State) {
			st.Servers["app/web1"] = balancer.ServerRuntime{Admin: 7}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t)
			orig := richState()
			if err := s.ReplaceState(ctx, orig, store.AuditEntry{Channel: "import"}); err != nil {
				t.Fatal(err)
			}
			bad := clone(orig)
			tt.mutate(&bad)
			if err := s.ReplaceState(ctx, bad, store.AuditEntry{Channel: "import"}); err == nil {
				t.Fatal("ReplaceState accepted a state it cannot store")
			}
			got, _, err := s.LoadState(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := store.Normalize(orig); !reflect.DeepEqual(got, want) {
				t.Errorf("a failed ReplaceState changed the database:\n%s", diffStates(got, want))
			}
			entries, err := s.ListAudit(ctx, store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("%d audit entries after a failed ReplaceState, want 1", len(entries))
			}
		})
	}
}

func TestNormalizeDoesNotAlias(t *testing.T) {
	orig := richState()
	c := store.Normalize(orig)
	c.Config.Backends[0].Servers[0].Name = "changed"
	c.Config.Backends[0].Cookie.Domains[0] = "changed"
	c.Servers["app/web1"] = balancer.ServerRuntime{}
	c.Config.Resolvers[0].Hold["nx"] = 0
	if !reflect.DeepEqual(orig, richState()) {
		t.Error("changing Normalize's result changed its input")
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub.db")
	s := storetest.OpenPath(t, path)
	if err := s.ReplaceState(ctx, richState(), store.AuditEntry{Channel: "import"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group or other access", p, m)
		}
	}
}

func TestOpenRejectsNonFiles(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if s, err := store.Open(context.Background(), p, nil); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func TestReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tether.db")
	s, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceState(ctx, richState(), store.AuditEntry{Channel: "import"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := storetest.OpenPath(t, path)
	got, found, err := s2.LoadState(ctx)
	if err != nil || !found {
		t.Fatalf("LoadState after reopen: found=%v err=%v", found, err)
	}
	if want := store.Normalize(richState()); !reflect.DeepEqual(got, want) {
		t.Errorf("state after reopen:\n%s", diffStates(got, want))
	}
}

func TestPathWithSpecialCharacters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a dir?#%", "t.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s := storetest.OpenPath(t, path)
	if err := s.ReplaceState(ctx, richState(), store.AuditEntry{Channel: "import"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %s: %v", path, err)
	}
}
