package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/haproxycfg"
	"tether/store"
)

// TestExportSaysWhatItDrops checks that export names, on stderr, every
// runtime setting an HAProxy configuration cannot express, and nothing
// else.
func TestExportSaysWhatItDrops(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "t.cfg")
	os.WriteFile(cfgFile, []byte(`defaults
    mode http
backend be
    server ok 127.0.0.1:8001 check
    server drained 127.0.0.1:8002 check
    server unchecked 127.0.0.1:8003 check
    server maint 127.0.0.1:8004 check
    server-template web 2 app.example:80 check
`), 0o600)
	cfg, _, err := haproxycfg.ParseFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	rt := func(admin balancer.AdminMode, check bool) balancer.ServerRuntime {
		return balancer.ServerRuntime{Admin: admin, Weight: 1, CheckEnabled: check}
	}
	st := balancer.State{Config: cfg, Servers: map[string]balancer.ServerRuntime{
		"be/ok":        rt(balancer.Ready, true),
		"be/drained":   rt(balancer.Drain, true),
		"be/unchecked": rt(balancer.Ready, false),
		"be/maint":     rt(balancer.Maint, true),
		"be/web1":      rt(balancer.Ready, true),
		"be/web2":      rt(balancer.Maint, true),
	}}
	db := filepath.Join(dir, "t.db")
	s, err := store.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.ReplaceState(context.Background(), st, store.AuditEntry{Time: time.Now(), Actor: "test", Channel: "import", Command: "seed", Result: "ok"})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"export", "-db", db}, func(string) string { return "" }, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	notes := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	want := []string{
		"export: warning: server be/drained is in drain mode",
		"export: warning: server be/unchecked has its health checks disabled at run time",
		"export: warning: server be/web2 (from server-template web) is in maint mode",
	}
	if len(notes) != len(want) {
		t.Fatalf("stderr:\n%s\nwant %d notes", stderr.String(), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(notes[i], w) {
			t.Errorf("note %d = %q, want %q…", i, notes[i], w)
		}
	}
	if !strings.Contains(stdout.String(), "server maint 127.0.0.1:8004 check disabled") {
		t.Errorf("maintenance is not exported as 'disabled':\n%s", stdout.String())
	}
}

// TestExportReparsesToStoredConfig imports every valid configuration of the
// parser's testdata and checks that the export parses back to the very
// Config the database holds: nothing a configuration can say is dropped.
func TestExportReparsesToStoredConfig(t *testing.T) {
	// Certificate paths in the files are relative to the parser's
	// directory, as HAProxy reads them relative to where it runs.
	t.Chdir("../../balancer/haproxycfg")
	files, err := filepath.Glob("testdata/valid/*.cfg")
	if err != nil || len(files) < 5 {
		t.Fatalf("no test configs found: %v", err)
	}
	env := func(string) string { return "" }
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "t.db")
			if err := run(context.Background(), []string{"import", "-f", file, "-db", db}, env, nil, io.Discard, io.Discard); err != nil {
				t.Fatalf("import: %v", err)
			}
			s, err := store.Open(context.Background(), db, nil)
			if err != nil {
				t.Fatal(err)
			}
			stored, _, err := s.LoadState(context.Background())
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			var out, stderr bytes.Buffer
			if err := run(context.Background(), []string{"export", "-db", db}, env, nil, &out, &stderr); err != nil {
				t.Fatalf("export: %v", err)
			}
			if stderr.Len() != 0 {
				t.Errorf("export of a freshly imported file warns:\n%s", stderr.String())
			}
			again, _, err := haproxycfg.Parse("exported.cfg", out.Bytes())
			if err != nil {
				t.Fatalf("export does not parse: %v\n%s", err, out.String())
			}
			if !reflect.DeepEqual(again.WithoutPositions(), stored.Config.WithoutPositions()) {
				t.Errorf("export parses to another Config:\nstored: %+v\nexport: %+v\n%s", stored.Config, again, out.String())
			}
		})
	}
}

// TestImportRefusesFailOpenConfig checks that import and serve refuse a
// file with a directive Tether cannot honour, naming file and line, and
// store nothing.
func TestImportRefusesFailOpenConfig(t *testing.T) {
	for _, cmd := range []string{"import", "serve"} {
		t.Run(cmd, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "proxy-protocol.cfg")
			os.WriteFile(file, []byte("defaults\n    mode http\nfrontend fe\n    bind "+freeAddr(t)+" accept-proxy\n    default_backend be\nbackend be\n    server s 127.0.0.1:8001\n"), 0o600)
			db := filepath.Join(dir, "t.db")
			args := []string{cmd, "-f", file, "-db", db}
			if cmd == "serve" {
				args = append(args, "-console", "")
			}
			err := run(context.Background(), args, func(string) string { return "" }, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), file+":4: bind parameter 'accept-proxy' is not supported by Tether") {
				t.Fatalf("%s error = %v, want %s:4 refusing 'accept-proxy'", cmd, err, file)
			}
			if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
				return
			}
			s, err := store.Open(context.Background(), db, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, found, _ := s.LoadState(context.Background()); found {
				t.Fatalf("%s stored a refused file", cmd)
			}
		})
	}
}

// TestExportSaysItLeavesOutANulKey checks the note for a dynamic-cookie
// key a configuration file cannot hold (one a database may keep from
// before such keys were refused).
func TestExportSaysItLeavesOutANulKey(t *testing.T) {
	st := balancer.State{Config: balancer.Config{Backends: []balancer.Backend{
		{Name: "shop", DynamicCookieKey: "bad\x00key"},
		{Name: "api", DynamicCookieKey: "fine"},
	}}}
	notes := unexportable(st)
	if len(notes) != 1 || !strings.Contains(notes[0], "backend shop's dynamic-cookie-key holds a NUL byte") {
		t.Errorf("notes %q", notes)
	}
	if strings.Contains(strings.Join(notes, " "), "bad") {
		t.Errorf("a note shows the key: %q", notes)
	}
}
