// Package pgtest runs a PostgreSQL server for tests: a new cluster in a
// temporary directory, owned and run by the postgres user (PostgreSQL
// refuses to run as root), listening on a free loopback port and on a unix
// socket in that directory, stopped when the test ends.
//
// When PostgreSQL is not installed the test is skipped, or fails when
// TETHER_E2E=require (e2etest.Required).
package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"tether/balancer/e2etest"
)

// Cluster is a running PostgreSQL server. Its methods are safe for
// concurrent use.
type Cluster struct {
	bin  string // directory of initdb, pg_ctl and postgres
	dir  string // cluster directory: data/, the unix socket, the log
	port int
	// runAs is the user the server runs as: postgres when the test runs
	// as root, else the test's own user.
	runAs string
	dbs   atomic.Int64
}

// Start initialises and starts a cluster and stops it, removing its files,
// when t ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := findBinaries(t)
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		c.runAs = "postgres"
		if _, err := user.Lookup(c.runAs); err != nil {
			fail(t, "PostgreSQL refuses to run as root and there is no postgres user to run it as: %v", err)
		}
	}
	// Not under t.TempDir(): that directory is private to the test's
	// user, and the server's user must reach its files.
	dir, err := os.MkdirTemp("", "tether-pg-")
	if err != nil {
		t.Fatalf("create cluster directory: %v", err)
	}
	c.dir = dir
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove cluster directory: %v", err)
		}
	})
	if c.runAs != "" {
		if out, err := exec.Command("chown", c.runAs+":", dir).CombinedOutput(); err != nil {
			t.Fatalf("give %s to %s: %v: %s", dir, c.runAs, err, out)
		}
	}
	if out, err := c.command("initdb", "-D", c.dataDir(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.port = freePort(t)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.stop("fast"); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	return c
}

// findBinaries returns the directory of initdb and pg_ctl: PATH, else the
// newest /usr/lib/postgresql/N/bin.
func findBinaries(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	if e2etest.Required() {
		t.Fatalf("PostgreSQL is required (TETHER_E2E=require) but initdb and pg_ctl are not installed")
	}
	t.Skipf("PostgreSQL is not installed; install it (Debian: apt-get install postgresql) to run this test")
	return ""
}

func fail(t testing.TB, format string, args ...any) {
	t.Helper()
	if e2etest.Required() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// command runs a PostgreSQL program as the cluster's user.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	prog := filepath.Join(c.bin, name)
	if c.runAs == "" {
		return exec.Command(prog, args...)
	}
	return exec.Command("runuser", append([]string{"-u", c.runAs, "--", prog}, args...)...)
}

func (c *Cluster) start() error {
	opts := fmt.Sprintf("-h 127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=200", c.port, c.dir)
	out, err := c.command("pg_ctl", "-D", c.dataDir(), "-l", filepath.Join(c.dir, "log"), "-o", opts, "-w", "-t", "30", "start").CombinedOutput()
	if err != nil {
		logText, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("start PostgreSQL: %v: %s\n%s", err, out, logText)
	}
	return nil
}

func (c *Cluster) stop(mode string) error {
	out, err := c.command("pg_ctl", "-D", c.dataDir(), "-m", mode, "-w", "-t", "30", "stop").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Is server running?") {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Stop stops the server ("fast": connections are closed), as an outage.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.stop("fast"); err != nil {
		t.Fatal(err)
	}
}

// Crash stops the server at once ("immediate": no checkpoint, as after
// kill -9), interrupting any commit in flight.
func (c *Cluster) Crash(t testing.TB) {
	t.Helper()
	if err := c.stop("immediate"); err != nil {
		t.Fatal(err)
	}
}

// Restart starts a stopped server again on the same port.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
}

// URL returns the postgres:// URL of database name, over TCP on loopback.
func (c *Cluster) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: "127.0.0.1:" + strconv.Itoa(c.port), Path: "/" + name}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

// NewDatabase creates an empty database and returns its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := "tether_" + strconv.FormatInt(c.dbs.Add(1), 10)
	if err := c.Exec(context.Background(), "postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return c.URL(name)
}

// Exec runs one statement as the superuser in database db.
func (c *Cluster) Exec(ctx context.Context, db, statement string, args ...any) error {
	conn, err := pgx.Connect(ctx, c.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, statement, args...)
	return err
}

// TerminateConnections ends the other connections to database db whose
// application_name is application (every one when application is ""), as
// a network failure or a server-side kill would, and returns how many it
// ended.
func (c *Cluster) TerminateConnections(ctx context.Context, db, application string) (int, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2 = '' OR application_name = $2)) t`, db, application).Scan(&n)
	return n, err
}

// DatabaseName returns the database a URL from URL or NewDatabase names.
func DatabaseName(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}
