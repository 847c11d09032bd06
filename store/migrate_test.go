package store_test

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"tether/balancer"
	"tether/migrations"
	"tether/store"
	"tether/store/storetest"
)

// migrationVersions returns the versions of the embedded migrations, in
// order, checking their names.
func migrationVersions(t *testing.T) []int64 {
	t.Helper()
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	re := regexp.MustCompile(`^(\d{4})_[a-z]+(_[a-z0-9]+)+\.sql$`)
	var versions []int64
	for i, name := range names {
		m := re.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("migration %s is not named NNNN_verb_noun.sql", name)
			continue
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		if v != int64(i+1) {
			t.Errorf("migration %s has version %d, want %d (numbers are dense)", name, v, i+1)
		}
		body, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), "-- +goose Up") {
			t.Errorf("migration %s has no '-- +goose Up' annotation", name)
		}
		if strings.Contains(string(body), "+goose Down") {
			t.Errorf("migration %s has a Down section; migrations are forward-only", name)
		}
		versions = append(versions, v)
	}
	return versions
}

func TestMigrateFromEmpty(t *testing.T) {
	versions := migrationVersions(t)
	s := storetest.Open(t)
	v, err := s.SchemaVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := versions[len(versions)-1]; v != want {
		t.Errorf("schema version %d, want %d", v, want)
	}
}

// TestMigrateFromEachVersion brings a database to every earlier version,
// then opens it: Open must finish the migration and the store must work.
func TestMigrateFromEachVersion(t *testing.T) {
	versions := migrationVersions(t)
	for _, from := range versions {
		t.Run("from "+strconv.FormatInt(from, 10), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "old.db")
			db, err := sql.Open("sqlite", store.DSN(path))
			if err != nil {
				t.Fatal(err)
			}
			if err := store.MigrateTo(ctx, db, from); err != nil {
				t.Fatal(err)
			}
			var got int64
			if err := db.QueryRow("SELECT MAX(version_id) FROM goose_db_version").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != from {
				t.Fatalf("database at version %d, want %d", got, from)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			s := storetest.OpenPath(t, path)
			v, err := s.SchemaVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := versions[len(versions)-1]; v != want {
				t.Errorf("schema version %d after Open, want %d", v, want)
			}
			if err := s.ReplaceState(ctx, richState(), store.AuditEntry{Channel: "import"}); err != nil {
				t.Fatal(err)
			}
			if got, want := loadState(t, s), store.Normalize(richState()); !reflect.DeepEqual(got, want) {
				t.Errorf("state round trip after migration:\n%s", diffStates(got, want))
			}
			if _, err := s.CreateUser(ctx, "admin", "plum-orbit-41", store.RoleAdmin); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestOpenTwiceIsIdempotent reopens a migrated database: nothing to do.
func TestOpenTwiceIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	s1, err := store.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := storetest.OpenPath(t, path)
	if _, err := s2.SchemaVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentOpen opens several stores at once, each migrating its own
// file: goose must not share state between them.
func TestConcurrentOpen(t *testing.T) {
	dir := t.TempDir()
	done := make(chan error)
	for i := range 4 {
		go func() {
			s, err := store.Open(context.Background(), filepath.Join(dir, strconv.Itoa(i)+".db"), nil)
			if err == nil {
				err = s.Close()
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestMigrateKeepsProxiesUnnumbered opens a database written before proxy
// IDs were stored: its frontends and backends load with ID 0, the
// balancer numbers them, and the numbers are stored from then on.
func TestMigrateKeepsProxiesUnnumbered(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", store.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateTo(ctx, db, 3); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO global_settings (id, stats_timeout_ns, stats_maxconn) VALUES (1, 10000000000, 10)",
		"INSERT INTO stats_sockets (position, address, mode, level, severity_output) VALUES (0, '/run/t.sock', 0, 3, '')",
		"INSERT INTO frontends (name, position, binds, default_backend, forward_for, timeout_client_ns) VALUES ('fe', 0, '[\"127.0.0.1:8080\"]', 'app', 0, 0)",
		`INSERT INTO backends (name, position, balance, cookie_enabled, cookie_name, cookie_mode, cookie_indirect,
			cookie_nocache, cookie_postonly, cookie_preserve, cookie_httponly, cookie_secure, cookie_dynamic,
			cookie_domains, cookie_maxidle_ns, cookie_maxlife_ns, cookie_attrs, dynamic_cookie_key,
			persist, redispatch, redispatch_interval, retries, forward_for,
			httpchk_enabled, httpchk_method, httpchk_uri, httpchk_version, httpchk_expect_status,
			timeout_connect_ns, timeout_server_ns, timeout_check_ns, timeout_queue_ns)
			VALUES ('app', 0, 'roundrobin', 0, '', 'passive', 0, 0, 0, 0, 0, 0, 0, '[]', 0, 0, '[]', '', 0, 0, -1, 3, 0,
			0, '', '', '', 0, 0, 0, 0, 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := storetest.OpenPath(t, path)
	st := loadState(t, s)
	if st.Config.Frontends[0].ID != 0 || st.Config.Backends[0].ID != 0 {
		t.Fatalf("old rows load with IDs %d and %d, want 0", st.Config.Frontends[0].ID, st.Config.Backends[0].ID)
	}
	b, err := balancer.New(st.Config, balancer.Options{Runtime: st.Servers})
	if err != nil {
		t.Fatal(err)
	}
	numbered := b.State()
	if fe, be := numbered.Config.Frontends[0].ID, numbered.Config.Backends[0].ID; fe != 2 || be != 3 {
		t.Fatalf("balancer numbered the proxies %d and %d, want 2 and 3", fe, be)
	}
	if err := s.ReplaceState(ctx, numbered, store.AuditEntry{Channel: "import"}); err != nil {
		t.Fatal(err)
	}
	if got := loadState(t, s); !reflect.DeepEqual(got, store.Normalize(numbered)) {
		t.Errorf("numbered state round trip:\n%s", diffStates(got, store.Normalize(numbered)))
	}
}

// TestMigrateCanonicalUserNames checks migration 6: stored names are lower
// cased where that collides with nothing, and then sign in by any case.
func TestMigrateCanonicalUserNames(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", store.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.MigrateTo(ctx, db, 5); err != nil {
		t.Fatal(err)
	}
	// Password hashes are not checked here; a real one is set below.
	for i, name := range []string{"Admin", "Bob", "BOB", "Carol", "carol", "dave"} {
		if _, err := db.Exec("INSERT INTO users (name, role, password_hash, created_ns) VALUES (?, 'admin', 'x', ?)", name, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := storetest.OpenPath(t, path)
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Name)
	}
	if want := "BOB Carol admin bob carol dave"; strings.Join(got, " ") != want {
		t.Errorf("names after migration: %q, want %q", strings.Join(got, " "), want)
	}
	if err := s.SetUserPassword(ctx, "ADMIN", "plum-orbit-41"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.Authenticate(ctx, "Admin", "plum-orbit-41"); err != nil || u.Name != "admin" {
		t.Errorf("Authenticate(Admin) = %+v, %v; want admin", u, err)
	}
	// A name left as it was is still managed by its stored form.
	if err := s.DeleteUser(ctx, "BOB"); err != nil {
		t.Errorf("delete BOB: %v", err)
	}
	if _, err := s.GetUser(ctx, "bob"); err != nil {
		t.Errorf("bob deleted with BOB: %v", err)
	}
}
