package storetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/pgtest"
)

// Engine opens stores of one database engine for the conformance suite.
type Engine interface {
	// Open returns a store on a new, empty database.
	Open(t *testing.T) *store.Store
	// Reopen closes s and opens its database again, as a restart does.
	Reopen(t *testing.T, s *store.Store) *store.Store
}

// SQLite is the embedded engine: a database file under t.TempDir().
type SQLite struct{}

// Open opens a new database file.
func (SQLite) Open(t *testing.T) *store.Store { return Open(t) }

// Reopen closes s and opens its file again.
func (SQLite) Reopen(t *testing.T, s *store.Store) *store.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
	return OpenPath(t, s.Path())
}

// Postgres is the shared engine: a new database on Cluster for each Open.
type Postgres struct{ Cluster *pgtest.Cluster }

// Open creates a database and opens it.
func (e Postgres) Open(t *testing.T) *store.Store { return OpenPath(t, e.Cluster.NewDatabase(t)) }

// Reopen closes s and opens its database again.
func (Postgres) Reopen(t *testing.T, s *store.Store) *store.Store { return SQLite{}.Reopen(t, s) }

// Run runs the conformance suite every storage engine must pass: the
// journal and state documents, the audit log it doubles as, console users
// and sessions.
func Run(t *testing.T, e Engine) {
	t.Run("journal replays every change after a restart", func(t *testing.T) { journalReplays(t, e) })
	t.Run("refused commands are journal rows", func(t *testing.T) { refusedCommands(t, e) })
	t.Run("a whole state replaces the last one", func(t *testing.T) { replaceState(t, e) })
	t.Run("pruning the journal keeps the state", func(t *testing.T) { pruneKeepsState(t, e) })
	t.Run("users", func(t *testing.T) { users(t, e) })
	t.Run("sessions", func(t *testing.T) { sessions(t, e) })
}

// suiteConfig is a small configuration the balancer accepts.
func suiteConfig() balancer.Config {
	return balancer.Config{
		Frontends: []balancer.Frontend{{Name: "www", Binds: balancer.BindAddrs("127.0.0.1:0"), DefaultBackend: "app"}},
		Backends: []balancer.Backend{{
			Name:             "app",
			Balance:          balancer.RoundRobin,
			Cookie:           &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert, Indirect: true, NoCache: true, Dynamic: true},
			DynamicCookieKey: "suite-first-key",
			Servers: []balancer.Server{
				{Name: "s1", Address: "127.0.0.1", Port: 9001, PortSet: true, Weight: 1},
				{Name: "s2", Address: "127.0.0.1", Port: 9002, PortSet: true, Weight: 1},
			},
		}},
	}
}

// seed stores suiteConfig's state in s and returns a balancer running it
// that commits to s.
func seed(t *testing.T, s *store.Store) *balancer.Balancer {
	t.Helper()
	b, err := balancer.New(suiteConfig(), balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceState(context.Background(), b.State(), store.AuditEntry{Channel: "import", Source: "suite.cfg", Command: "import suite.cfg"}); err != nil {
		t.Fatal(err)
	}
	b.SetCommitter(s.Committer())
	return b
}

func mustLoad(t *testing.T, s *store.Store) balancer.State {
	t.Helper()
	st, found, err := s.LoadState(context.Background())
	if err != nil || !found {
		t.Fatalf("LoadState: found=%v err=%v", found, err)
	}
	return st
}

func mustList(t *testing.T, s *store.Store, f store.AuditFilter) []store.AuditEntry {
	t.Helper()
	es, err := s.ListAudit(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func ref(server string) balancer.ServerRef { return balancer.ServerRef{Backend: "app", Server: server} }

func journalReplays(t *testing.T, e Engine) {
	s := e.Open(t)
	b := seed(t, s)
	changes := []struct {
		change  balancer.Change
		command string
	}{
		{balancer.SetWeight{ServerRef: ref("s1"), Weight: 40}, "set server app/s1 weight 40"},
		{balancer.SetAdminState{ServerRef: ref("s2"), State: balancer.Drain}, "set server app/s2 state drain"},
		{balancer.AddServer{Backend: "app", Server: balancer.Server{Name: "s3", Address: "127.0.0.1", Port: 9003, PortSet: true, Weight: 1}}, "add server app/s3 127.0.0.1:9003"},
		{balancer.SetDynamicCookieKey{Backend: "app", Key: "suite-second-key"}, "set dynamic-cookie-key backend app ********"},
		{balancer.SetAdminState{ServerRef: ref("s2"), State: balancer.Maint}, "set server app/s2 state maint"},
		{balancer.DelServer{ServerRef: ref("s2")}, "del server app/s2"},
		{balancer.SetDynamicCookies{Backend: "app", Enabled: false}, "disable dynamic-cookie backend app"},
		{balancer.SetMaintWhenIdle{ServerRef: ref("s3"), Intent: balancer.IdleIntent{Asked: true, By: "alice", From: "/backends/app"}}, "set maint-when-idle server app/s3 on"},
		{balancer.SetAddr{ServerRef: ref("s1"), Address: "127.0.0.2", Port: 9011, PortSet: true}, "set server app/s1 addr 127.0.0.2 port 9011"},
	}
	for _, c := range changes {
		if err := b.Apply(c.change, balancer.Origin{Channel: "socket", Source: "unix@/run/t.sock", Command: c.command}); err != nil {
			t.Fatalf("%s: %v", c.command, err)
		}
	}
	// Two changes as one batch are one journal row.
	if err := b.ApplyBatch(balancer.Origin{Channel: "dns", Source: "dns"},
		balancer.SetWeight{ServerRef: ref("s1"), Weight: 2}, balancer.SetWeight{ServerRef: ref("s3"), Weight: 3}); err != nil {
		t.Fatal(err)
	}
	want := store.Normalize(b.State())
	s = e.Reopen(t, s)
	if got := mustLoad(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after a restart differs from the balancer's:\ngot  %+v\nwant %+v", got, want)
	}
	if k := want.Config.Backends[0].DynamicCookieKey; k != "suite-second-key" {
		t.Errorf("key after replay = %q", k)
	}
	if in := want.Servers["app/s3"].WhenIdle; !in.Asked || in.By != "alice" {
		t.Errorf("request for maintenance when idle after replay = %+v", in)
	}
	rows := mustList(t, s, store.AuditFilter{})
	if len(rows) != 1+len(changes)+1 {
		t.Fatalf("%d journal rows, want %d", len(rows), 2+len(changes))
	}
	for i, c := range changes {
		r := rows[len(changes)-i]
		if r.Command != c.command || r.Result != store.ResultOK || r.Channel != "socket" || r.Backend != "app" {
			t.Errorf("row for %q = %+v", c.command, r)
		}
	}
	for _, r := range rows {
		text := strings.Join([]string{r.Command, r.Source, r.Result, r.Before, r.After, r.Detail}, " ")
		if strings.Contains(text, "suite-first-key") || strings.Contains(text, "suite-second-key") {
			t.Errorf("journal row %d shows a key: %s", r.ID, text)
		}
	}
}

func refusedCommands(t *testing.T, e Engine) {
	ctx := context.Background()
	s := e.Open(t)
	seed(t, s)
	before := mustLoad(t, s)
	for i, actor := range []string{"alice", "bob", "alice"} {
		err := s.AppendAudit(ctx, store.AuditEntry{Channel: "console", Actor: actor, Backend: "app", Server: "s1",
			Command: "set server app/s1 weight 999", Result: "Absolute weight can only be between 0 and 256 inclusive."})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if got := mustLoad(t, s); !reflect.DeepEqual(got, before) {
		t.Error("a refused command changed the state")
	}
	alice := mustList(t, s, store.AuditFilter{Actor: "alice"})
	if len(alice) != 2 || alice[0].ID <= alice[1].ID || alice[0].Result == store.ResultOK {
		t.Fatalf("alice's rows = %+v, want two refusals, newest first", alice)
	}
	older := mustList(t, s, store.AuditFilter{BeforeID: alice[0].ID, Limit: 1})
	if len(older) != 1 || older[0].Actor != "bob" {
		t.Errorf("the row before %d = %+v, want bob's", alice[0].ID, older)
	}
	if n := len(mustList(t, s, store.AuditFilter{Channel: "console", Backend: "app"})); n != 3 {
		t.Errorf("%d console rows for app, want 3", n)
	}
}

func replaceState(t *testing.T, e Engine) {
	ctx := context.Background()
	s := e.Open(t)
	b := seed(t, s)
	if err := b.Apply(balancer.SetWeight{ServerRef: ref("s1"), Weight: 9}, balancer.Origin{Channel: "socket"}); err != nil {
		t.Fatal(err)
	}
	cfg := suiteConfig()
	cfg.Backends[0].Servers = cfg.Backends[0].Servers[:1]
	cfg.Backends[0].Name = "other"
	cfg.Frontends[0].DefaultBackend = "other"
	nb, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := nb.State()
	if err := s.ReplaceState(ctx, want, store.AuditEntry{Channel: "import", Command: "import other.cfg"}); err != nil {
		t.Fatal(err)
	}
	s = e.Reopen(t, s)
	if got := mustLoad(t, s); !reflect.DeepEqual(got, store.Normalize(want)) {
		t.Errorf("state after ReplaceState and a restart:\ngot  %+v\nwant %+v", got, want)
	}
	bad := want
	bad.Servers = map[string]balancer.ServerRuntime{"ghost/s1": {Weight: 1}}
	if err := s.ReplaceState(ctx, bad, store.AuditEntry{Channel: "import"}); err == nil {
		t.Error("ReplaceState accepted runtime settings of a backend that does not exist")
	}
	if got := mustLoad(t, s); !reflect.DeepEqual(got, store.Normalize(want)) {
		t.Error("a refused ReplaceState changed the state")
	}
}

func pruneKeepsState(t *testing.T, e Engine) {
	ctx := context.Background()
	s := e.Open(t)
	b := seed(t, s)
	for w := range 5 {
		if err := b.Apply(balancer.SetWeight{ServerRef: ref("s2"), Weight: w + 10}, balancer.Origin{Channel: "socket"}); err != nil {
			t.Fatal(err)
		}
	}
	want := store.Normalize(b.State())
	if _, err := s.PruneAudit(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rows := mustList(t, s, store.AuditFilter{})
	if len(rows) != 1 || rows[0].Channel != "import" {
		t.Errorf("rows after pruning everything = %+v, want only the newest import", rows)
	}
	s = e.Reopen(t, s)
	if got := mustLoad(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("state after pruning and a restart:\ngot  %+v\nwant %+v", got, want)
	}
}

// suitePassword is strong enough for the store's password rules.
const suitePassword = "correct horse battery staple 9"

func users(t *testing.T, e Engine) {
	ctx := context.Background()
	s := e.Open(t)
	admin, err := s.CreateUser(ctx, "Alice", suitePassword, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if admin.Name != "alice" || admin.Role != "admin" || admin.ID == 0 {
		t.Errorf("created %+v, want canonical name alice", admin)
	}
	if _, err := s.CreateUser(ctx, "ALICE", suitePassword, "viewer"); !errors.Is(err, store.ErrExists) {
		t.Errorf("second alice: %v, want ErrExists", err)
	}
	if _, err := s.CreateUser(ctx, "bob", suitePassword, "root"); !errors.Is(err, store.ErrInvalidRole) {
		t.Errorf("role root: %v, want ErrInvalidRole", err)
	}
	if _, err := s.Authenticate(ctx, "alice", suitePassword); err != nil {
		t.Errorf("authenticate: %v", err)
	}
	if _, err := s.Authenticate(ctx, "alice", suitePassword+"x"); !errors.Is(err, store.ErrBadCredentials) {
		t.Errorf("wrong password: %v, want ErrBadCredentials", err)
	}
	if err := s.SetUserRole(ctx, "alice", "viewer"); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("demoting the only admin: %v, want ErrLastAdmin", err)
	}
	if err := s.DeleteUser(ctx, "alice"); !errors.Is(err, store.ErrLastAdmin) {
		t.Errorf("deleting the only admin: %v, want ErrLastAdmin", err)
	}
	if _, err := s.CreateUser(ctx, "bob", suitePassword, "operator"); err != nil {
		t.Fatal(err)
	}
	s = e.Reopen(t, s)
	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("users after a restart: %+v, %v", list, err)
	}
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted user: %v, want ErrNotFound", err)
	}
}

func sessions(t *testing.T, e Engine) {
	ctx := context.Background()
	s := e.Open(t)
	u, err := s.CreateUser(ctx, "carol", suitePassword, "operator")
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.CreateSession(ctx, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s = e.Reopen(t, s)
	if got, err := s.SessionUser(ctx, token); err != nil || got.Name != "carol" {
		t.Fatalf("session after a restart: %+v, %v", got, err)
	}
	if err := s.SetUserRole(ctx, "carol", "viewer"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after a role change: %v, want ErrNotFound (sessions end)", err)
	}
	token, err = s.CreateSession(ctx, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionUser(ctx, token); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session: %v, want ErrNotFound", err)
	}
	if _, err := s.SessionUser(ctx, "not-a-token"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown token: %v, want ErrNotFound", err)
	}
}
