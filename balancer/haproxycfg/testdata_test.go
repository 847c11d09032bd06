package haproxycfg

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"tether/balancer"
	"tether/balancer/e2etest"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/valid")

// testFile is one configuration of testdata with its expectations.
type testFile struct {
	path, name string
	kind       string // "valid", "invalid" or "unsupported"
	src        []byte
	wantErrs   []string // "# want-error: ..." lines
	wantWarns  []string // "# want-warning: ..." lines
}

func loadTestFiles(t testing.TB) []testFile {
	t.Helper()
	var files []testFile
	for _, kind := range []string{"valid", "invalid", "unsupported"} {
		paths, err := filepath.Glob(filepath.Join("testdata", kind, "*.cfg"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tf := testFile{path: p, name: filepath.Base(p), kind: kind, src: src}
			for _, l := range strings.Split(string(src), "\n") {
				if v, ok := strings.CutPrefix(l, "# want-error: "); ok {
					tf.wantErrs = append(tf.wantErrs, v)
				}
				if v, ok := strings.CutPrefix(l, "# want-warning: "); ok {
					tf.wantWarns = append(tf.wantWarns, v)
				}
			}
			files = append(files, tf)
		}
	}
	if len(files) < 20 {
		t.Fatalf("found only %d testdata files", len(files))
	}
	return files
}

// TestTestdata parses every testdata file. Valid files must parse, write to
// their golden file, and parse back to an equal Config; the others must
// fail with the errors their "# want-error:" lines name.
func TestTestdata(t *testing.T) {
	for _, tf := range loadTestFiles(t) {
		t.Run(tf.kind+"/"+tf.name, func(t *testing.T) {
			cfg, warns, err := parse(tf.name, tf.src, noEnv)
			if tf.kind != "valid" {
				if err == nil {
					t.Fatalf("Parse accepted %s; want errors %q", tf.path, tf.wantErrs)
				}
				if len(tf.wantErrs) == 0 {
					t.Fatalf("%s has no '# want-error:' line", tf.path)
				}
				for _, want := range tf.wantErrs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not contain %q:\n%v", want, err)
					}
				}
				var pe *Error
				if !errors.As(err, &pe) || pe.File != tf.name || pe.Line <= 0 {
					t.Errorf("error is not an *Error naming %s and a line: %#v", tf.name, pe)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, want := range tf.wantWarns {
				if !containsWarning(warns, want) {
					t.Errorf("no warning contains %q; got %v", want, warns)
				}
			}
			out, err := Format(cfg)
			if err != nil {
				t.Fatalf("Format: %v", err)
			}
			golden := strings.TrimSuffix(tf.path, ".cfg") + ".golden"
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("Format output differs from %s (run with -update if intended):\n%s", golden, out)
			}
			again, warns2, err := parse("golden", out, noEnv)
			if err != nil {
				t.Fatalf("written configuration does not parse: %v\n%s", err, out)
			}
			if len(warns2) != 0 {
				t.Errorf("written configuration has warnings: %v", warns2)
			}
			if !reflect.DeepEqual(withoutPositions(cfg), withoutPositions(again)) {
				t.Errorf("parse → write → parse changed the Config:\nfirst:  %+v\nsecond: %+v", cfg, again)
			}
			out2, err := Format(again)
			if err != nil || !bytes.Equal(out, out2) {
				t.Errorf("Format is not stable (err %v):\n%s\n---\n%s", err, out, out2)
			}
		})
	}
}

func containsWarning(warns []Warning, want string) bool {
	for _, w := range warns {
		if strings.Contains(w.String(), want) {
			return true
		}
	}
	return false
}

// noEnv is an empty environment, so results do not depend on the machine.
func noEnv(string) (string, bool) { return "", false }

// TestHAProxyAgrees runs "haproxy -c" on every testdata file: HAProxy must
// accept the valid and unsupported files and reject the invalid ones, and
// must accept what Format writes for every valid file.
func TestHAProxyAgrees(t *testing.T) {
	haproxy := e2etest.RequireProgram(t, "haproxy")
	dir := t.TempDir()
	check := func(t *testing.T, path string) (bool, string) {
		t.Helper()
		cmd := exec.Command(haproxy, "-c", "-f", path)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "TETHER_HAPROXYCFG_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return true, string(out)
		case errors.As(err, &exit) && exit.ExitCode() == 2 && strings.Contains(string(out), "has no error"):
			// Valid, but no listener: "will not start".
			return true, string(out)
		case errors.As(err, &exit):
			return false, string(out)
		}
		t.Fatalf("run haproxy: %v", err)
		return false, ""
	}
	for _, tf := range loadTestFiles(t) {
		t.Run(tf.kind+"/"+tf.name, func(t *testing.T) {
			abs, err := filepath.Abs(tf.path)
			if err != nil {
				t.Fatal(err)
			}
			ok, out := check(t, abs)
			if ok != (tf.kind != "invalid") {
				t.Errorf("haproxy -c accepted=%v for %s file; output:\n%s", ok, tf.kind, out)
			}
			_, _, perr := parse(tf.name, tf.src, noEnv)
			if (perr == nil) != (tf.kind == "valid") {
				t.Errorf("Parse error = %v for %s file", perr, tf.kind)
			}
			if tf.kind != "valid" {
				return
			}
			cfg, _, err := parse(tf.name, tf.src, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Format(cfg)
			if err != nil {
				t.Fatal(err)
			}
			written := filepath.Join(dir, tf.name)
			if err := os.WriteFile(written, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if ok, out := check(t, written); !ok {
				t.Errorf("haproxy -c rejects the written configuration:\n%s\n%s", out, b)
			}
		})
	}
}

// TestSnippets checks the three snippets of the HAProxy Enterprise dynamic
// cookie page: with addresses filled in they give the expected Config; as
// published, the server lines without address fail with file and line.
func TestSnippets(t *testing.T) {
	cfg, warns, err := parse("s1.cfg", mustRead(t, "testdata/valid/snippet-static-cookie.cfg"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	be := cfg.Backends[0]
	wantCookie := &balancer.CookieConfig{Name: "SERVER_USED", Mode: balancer.CookieInsert, Indirect: true, NoCache: true}
	if !reflect.DeepEqual(be.Cookie, wantCookie) {
		t.Errorf("cookie = %+v, want %+v", be.Cookie, wantCookie)
	}
	if be.Servers[0].Cookie != "web1" || be.Servers[1].Cookie != "web2" || !be.Servers[0].Check {
		t.Errorf("servers = %+v", be.Servers)
	}
	if !containsWarning(warns, "s1.cfg:3: backend 'servers' has no 'mode http'") {
		t.Errorf("no warning about the missing mode: %v", warns)
	}

	cfg, _, err = parse("s2.cfg", mustRead(t, "testdata/valid/snippet-dynamic-cookie.cfg"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	be = cfg.Backends[0]
	if !be.Cookie.Dynamic || be.DynamicCookieKey != "mysecretphrase" || be.Servers[1].Cookie != "" {
		t.Errorf("dynamic backend = %+v", be)
	}

	cfg, _, err = parse("s3.cfg", mustRead(t, "testdata/valid/snippet-server-template.cfg"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	be = cfg.Backends[0]
	tpl := be.Templates[0]
	if tpl.Prefix != "web" || tpl.Low != 1 || tpl.High != 5 || tpl.FQDN != "myservice.example.local" ||
		tpl.Params.Port != 80 || !tpl.Params.Check || tpl.Params.Resolvers != "mydns" ||
		!reflect.DeepEqual(tpl.Params.InitAddr, []string{"libc", "none"}) {
		t.Errorf("template = %+v", tpl)
	}
	if got := cfg.Resolvers[0]; got.Name != "mydns" || got.AcceptedPayloadSize != 8192 ||
		!reflect.DeepEqual(got.Nameservers, []balancer.Nameserver{{Name: "dns1", Address: "127.0.0.1:53"}}) {
		t.Errorf("resolvers = %+v", got)
	}

	_, _, err = parse("snippet.cfg", []byte("backend servers\n   cookie SERVER_USED insert indirect nocache\n   server web1 check  cookie web1\n"), noEnv)
	var pe *Error
	if !errors.As(err, &pe) || pe.File != "snippet.cfg" || pe.Line != 3 || !strings.Contains(pe.Msg, "has no address") {
		t.Fatalf("snippet without addresses: err = %v", err)
	}
	if got := pe.Error(); !strings.HasPrefix(got, "snippet.cfg:3: server 'web1' has no address") {
		t.Errorf("message = %q", got)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
