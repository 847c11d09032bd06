package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tether/balancer/e2etest"
	"tether/store"
)

func noEnv(string) string { return "" }

// runCmd runs a tether subcommand in-process and returns its output.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, noEnv, nil, &out, &out)
	return out.String(), err
}

func TestSecondServeOnOneDatabaseIsRefused(t *testing.T) {
	f := newFixture(t, 2)
	stop := f.serve(t)
	defer stop()
	before := exportOf(t, f.db)

	// A second process with another file on the same database: refused
	// before it reads or writes anything.
	other := filepath.Join(f.dir, "other.cfg")
	cfg, _ := os.ReadFile(f.cfg)
	os.WriteFile(other, bytes.Replace(cfg, []byte("dynamic-cookie-key k1"), []byte("dynamic-cookie-key k2"), 1), 0o600)
	out, err := runCmd(t, "serve", "-f", other, "-db", f.db, "-console", "", "-socket", "")
	want := f.db + " is in use by pid " + strconv.Itoa(os.Getpid())
	if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second serve: %v (output %q), want %q", err, out, want)
	}
	out, err = runCmd(t, "import", "-f", other, "-db", f.db)
	if !errors.Is(err, store.ErrInUse) {
		t.Fatalf("import beside a running process: %v (output %q), want in use", err, out)
	}
	if after := exportOf(t, f.db); after != before {
		t.Errorf("the running process's state changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A dry run may read beside the running process.
	out, err = runCmd(t, "import", "-n", "-f", other, "-db", f.db)
	if err != nil || !strings.Contains(out, "dynamic-cookie-key") || !strings.Contains(out, "dry run: nothing written") {
		t.Errorf("dry run beside a running process: %v\n%s", err, out)
	}
}

func TestFailedStartChangesNothing(t *testing.T) {
	f := newFixture(t, 2)
	if out, err := runCmd(t, "import", "-f", f.cfg, "-db", f.db); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	before := exportOf(t, f.db)

	// The edited file binds a port that is taken: the start fails and the
	// edit is not imported.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg, _ := os.ReadFile(f.cfg)
	edited := bytes.Replace(cfg, []byte("bind "+f.frontend), []byte("bind "+busy.Addr().String()), 1)
	edited = bytes.Replace(edited, []byte("dynamic-cookie-key k1"), []byte("dynamic-cookie-key k2"), 1)
	os.WriteFile(f.cfg, edited, 0o600)
	_, err = runCmd(t, "serve", "-f", f.cfg, "-db", f.db, "-console", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "listen on "+busy.Addr().String()) {
		t.Fatalf("serve on a busy port: %v, want a listen error", err)
	}
	if after := exportOf(t, f.db); after != before {
		t.Errorf("a failed start changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	st, err := store.OpenReadOnly(context.Background(), f.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.CountUsers(context.Background()); err != nil || n != 0 {
		t.Errorf("a failed start created %d users (%v); the admin password would be lost", n, err)
	}
}

func TestFailedFirstStartSeedsNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tether.db")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, err = runCmd(t, "serve", "-db", db, "-console", busy.Addr().String(), "-socket", filepath.Join(dir, "t.sock"))
	if err == nil {
		t.Fatal("serve with a busy console address succeeded")
	}
	st, err := store.OpenReadOnly(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, found, _ := st.LoadState(context.Background()); found {
		t.Errorf("a failed first start seeded the demo")
	}
	if n, _ := st.CountUsers(context.Background()); n != 0 {
		t.Errorf("a failed first start created %d users", n)
	}
}

func TestImportDryRunCreatesNothing(t *testing.T) {
	f := newFixture(t, 1)
	out, err := runCmd(t, "import", "-n", "-f", f.cfg, "-db", f.db)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "+ backend be") || !strings.HasSuffix(out, "dry run: nothing written\n") {
		t.Errorf("dry run output:\n%s", out)
	}
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "tether.db") {
			t.Errorf("a dry run created %s", e.Name())
		}
	}
}

func TestImportStrictFailsOnWarnings(t *testing.T) {
	f := newFixture(t, 1)
	cfg, _ := os.ReadFile(f.cfg)
	os.WriteFile(f.cfg, append(cfg, []byte("    option httplog\n")...), 0o600)
	out, err := runCmd(t, "import", "-strict", "-f", f.cfg, "-db", f.db)
	if err == nil || !strings.Contains(err.Error(), "-strict") {
		t.Fatalf("strict import with a warning: %v\n%s", err, out)
	}
	if _, err := os.Stat(f.db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused strict import created the database (%v)", err)
	}
	if _, err := runCmd(t, "import", "-f", f.cfg, "-db", f.db); err != nil {
		t.Errorf("the same import without -strict: %v", err)
	}
}

// TestRestartWithEditedFileSaysWhatItReplaced: a file edited while Tether
// was stopped is imported at the next start, which prints every change,
// runtime changes the file overrides included.
func TestRestartWithEditedFileSaysWhatItReplaced(t *testing.T) {
	f := newFixture(t, 2)
	stop := f.serve(t)
	exec1(t, f.sock, "set server be/s2 weight 40")
	stop()

	cfg, _ := os.ReadFile(f.cfg)
	edited := strings.Replace(string(cfg), "dynamic-cookie-key k1", "dynamic-cookie-key k2", 1)
	i := strings.Index(edited, "    server s2 ")
	line := edited[i : i+strings.Index(edited[i:], "\n")]
	edited = strings.Replace(edited, line, line+" weight 3", 1)
	os.WriteFile(f.cfg, []byte(edited), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	var out e2etest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "-f", f.cfg, "-db", f.db, "-console", ""}, noEnv, nil, io.Discard, &out)
	}()
	waitSocket(t, f.sock, done)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"changed since its last import: ~ backend be dynamic-cookie-key",
		"changed since its last import: ~ server be/s2",
		"changed since its last import: ! server be/s2: runtime weight 40 replaced by the file",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("start output lacks %q:\n%s", want, out.String())
		}
	}
}
