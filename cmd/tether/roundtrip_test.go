package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tether/balancer/e2etest"
)

// TestImportExportEveryConfig imports every valid configuration the config
// parser's tests use into a fresh database, exports it, checks that
// HAProxy 2.6 accepts the export, and that importing the export back
// changes nothing.
func TestImportExportEveryConfig(t *testing.T) {
	haproxy := e2etest.RequireProgram(t, "haproxy")
	// Certificate paths in the files are relative to the parser's
	// directory, as HAProxy reads them relative to where it runs.
	t.Chdir("../../balancer/haproxycfg")
	files, err := filepath.Glob("testdata/valid/*.cfg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test configs found: %v", err)
	}
	env := func(string) string { return "" }
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "t.db")
			var out bytes.Buffer
			if err := run(context.Background(), []string{"import", "-f", file, "-db", db}, env, nil, &out, io.Discard); err != nil {
				t.Fatalf("import: %v\n%s", err, out.String())
			}
			var exported bytes.Buffer
			if err := run(context.Background(), []string{"export", "-db", db}, env, nil, &exported, io.Discard); err != nil {
				t.Fatalf("export: %v", err)
			}
			again := filepath.Join(dir, "exported.cfg")
			os.WriteFile(again, exported.Bytes(), 0o600)
			// "no listener" (exit status 2) is not an error in the file.
			if msg, err := exec.Command(haproxy, "-c", "-f", again).CombinedOutput(); err != nil && !bytes.Contains(msg, []byte("Configuration file has no error")) {
				t.Fatalf("haproxy -c rejects the export: %v\n%s\n%s", err, msg, exported.String())
			}
			out.Reset()
			if err := run(context.Background(), []string{"import", "-n", "-f", again, "-db", db}, env, nil, &out, io.Discard); err != nil {
				t.Fatalf("re-import: %v", err)
			}
			if strings.TrimSpace(out.String()) != "no change\ndry run: nothing written" {
				t.Fatalf("re-importing the export changes:\n%s\nexport:\n%s", out.String(), exported.String())
			}
		})
	}
}

// FuzzImport feeds arbitrary files to "tether import": a file that does
// not import must leave the database exactly as it was.
func FuzzImport(f *testing.F) {
	seeds, _ := filepath.Glob("../../balancer/haproxycfg/testdata/*/*.cfg")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("backend b\n    server s check cookie s\n"))
	dir := f.TempDir()
	base := filepath.Join(dir, "base.cfg")
	os.WriteFile(base, []byte("defaults\n    mode http\nbackend be\n    server s1 127.0.0.1:80\n"), 0o600)
	env := func(string) string { return "" }
	f.Fuzz(func(t *testing.T, src []byte) {
		d := t.TempDir()
		db := filepath.Join(d, "t.db")
		if err := run(context.Background(), []string{"import", "-f", base, "-db", db}, env, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		before := exportOf(t, db)
		file := filepath.Join(d, "in.cfg")
		os.WriteFile(file, src, 0o600)
		if err := run(context.Background(), []string{"import", "-f", file, "-db", db}, env, nil, io.Discard, io.Discard); err != nil {
			if after := exportOf(t, db); after != before {
				t.Fatalf("a failed import changed the database:\n%s\n---\n%s", before, after)
			}
		}
	})
}

func exportOf(t *testing.T, db string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"export", "-db", db}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	return out.String()
}
