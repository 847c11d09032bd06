package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tether/store"
)

// load sends requests through a frontend from several keep-alive clients
// until stopped, counting answers by origin and failures.
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	byOrigin map[string]int
	failed   atomic.Int64
	lastErr  atomic.Value
}

func startLoad(t *testing.T, url string, clients int) *load {
	t.Helper()
	l := &load{stop: make(chan struct{}), byOrigin: map[string]int{}}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
			defer client.CloseIdleConnections()
			for n := 0; n < 100000; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err != nil {
					l.failed.Add(1)
					l.lastErr.Store(err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
					l.lastErr.Store(fmt.Sprintf("status %d, %v", resp.StatusCode, err))
					continue
				}
				l.mu.Lock()
				l.byOrigin[string(body)]++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for k, v := range l.byOrigin {
		out[k] = v
	}
	return out
}

func (l *load) end() { close(l.stop); l.wg.Wait() }

// waitFor polls until ok returns true.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReloadUnderLoad(t *testing.T) {
	f := newFixture(t, 2)
	stop := f.serve(t)
	defer stop()
	exec1(t, f.sock, "set server be/s2 state drain")

	l := startLoad(t, "http://"+f.frontend+"/", 4)
	waitFor(t, "traffic", func() bool { return l.counts()["s1"] > 50 })

	// The file gains a server s3 and changes s1's weight; s2's drain,
	// made at run time, is kept: the file does not touch s2.
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "s3") }))
	defer s3.Close()
	cfg, _ := os.ReadFile(f.cfg)
	cfg = bytes.Replace(cfg, []byte("    server s2 "), []byte("    server s3 "+s3.Listener.Addr().String()+" weight 3\n    server s2 "), 1)
	os.WriteFile(f.cfg, cfg, 0o600)

	var out bytes.Buffer
	if err := run(context.Background(), []string{"reload", "-s", f.sock}, noEnv, nil, &out, &out); err != nil {
		t.Fatalf("tether reload: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "change(s) applied") || !strings.Contains(out.String(), "+ server be/s3") {
		t.Errorf("reload reply:\n%s", out.String())
	}
	waitFor(t, "traffic to the new server", func() bool { return l.counts()["s3"] > 50 })
	l.end()
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the reload (last: %v)", n, l.lastErr.Load())
	}
	state := exec1(t, f.sock, "show servers state be")
	if !strings.Contains(state, " s2 ") || !strings.Contains(exec1(t, f.sock, "show stat"), "be,s3,") {
		t.Errorf("servers after reload:\n%s", state)
	}
	if got := exec1(t, f.sock, "get weight be/s3"); !strings.HasPrefix(got, "3 (initial 3)") {
		t.Errorf("s3 weight: %q", got)
	}
	if c := l.counts(); c["s2"] != 0 {
		t.Errorf("the drained s2 got %d new clients after the reload", c["s2"])
	}
	// The reload counts as the file's import: a restart runs the stored
	// state without importing it again.
	if out, _ := runCmd(t, "import", "-n", "-f", f.cfg, "-db", f.db); !strings.HasPrefix(out, "no change") {
		t.Errorf("stored state differs from the reloaded file:\n%s", out)
	}
}

func TestReloadOfABadFileChangesNothing(t *testing.T) {
	f := newFixture(t, 2)
	stop := f.serve(t)
	defer stop()
	before := stableState(exec1(t, f.sock, "show servers state"))
	good, _ := os.ReadFile(f.cfg)

	for _, tc := range []struct{ name, cfg, want string }{
		{"syntax", string(good) + "    bogus-keyword 1\n", "haproxy.cfg:"},
		{"missing backend", strings.Replace(string(good), "default_backend be", "default_backend nowhere", 1), "nowhere"},
		{"global", strings.Replace(string(good), "mode 600 level admin", "mode 600 level operator", 1), "need a restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(f.cfg, []byte(tc.cfg), 0o600)
			var out bytes.Buffer
			err := run(context.Background(), []string{"reload", "-s", f.sock}, noEnv, nil, &out, &out)
			if err == nil || !strings.Contains(out.String(), tc.want) {
				t.Errorf("reload of a bad file: err %v, reply %q, want %q", err, out.String(), tc.want)
			}
			if after := stableState(exec1(t, f.sock, "show servers state")); after != before {
				t.Errorf("a refused reload changed the servers:\n%s\n%s", before, after)
			}
		})
	}
	os.WriteFile(f.cfg, good, 0o600)
	if out, err := runCmd(t, "reload", "-s", f.sock); err != nil || !strings.Contains(out, "no change") {
		t.Errorf("reload of the unchanged file: %v %q", err, out)
	}
}

func TestReloadMovesABind(t *testing.T) {
	f := newFixture(t, 1)
	stop := f.serve(t)
	defer stop()
	moved := freeAddr(t)
	cfg, _ := os.ReadFile(f.cfg)
	os.WriteFile(f.cfg, bytes.Replace(cfg, []byte("bind "+f.frontend), []byte("bind "+moved), 1), 0o600)
	if out, err := runCmd(t, "reload", "-s", f.sock); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	resp, err := http.Get("http://" + moved + "/")
	if err != nil {
		t.Fatalf("new bind: %v", err)
	}
	resp.Body.Close()
	waitFor(t, "the old bind to close", func() bool {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
		_, err := c.Get("http://" + f.frontend + "/")
		return err != nil
	})
}

// TestSignalsReload runs the real binary: SIGUSR2 and SIGHUP reload the
// file instead of ending the process.
func TestSignalsReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := tetherBinary(t)
	f := newFixture(t, 2)
	cmd := exec.Command(bin, "serve", "-f", f.cfg, "-db", f.db, "-console", "")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		if t.Failed() {
			t.Logf("tether's log:\n%s", logs.String())
		}
	}()
	waitSocket(t, f.sock, done)

	cfg, _ := os.ReadFile(f.cfg)
	s1Addr := strings.Fields(strings.SplitN(string(cfg), "server s1 ", 2)[1])[0]
	for i, sig := range []syscall.Signal{syscall.SIGUSR2, syscall.SIGHUP} {
		// Each signal reloads a file that adds s9 with another weight.
		edited := strings.Replace(string(cfg), "\n    server s2 ", fmt.Sprintf("\n    server s9 %s weight %d\n    server s2 ", s1Addr, 10+i), 1)
		os.WriteFile(f.cfg, []byte(edited), 0o600)
		cmd.Process.Signal(sig)
		waitFor(t, "reload by "+sig.String(), func() bool {
			select {
			case err := <-done:
				t.Fatalf("%v ended the process: %v\n%s", sig, err, logs.String())
			default:
			}
			return strings.HasPrefix(exec1(t, f.sock, "get weight be/s9"), fmt.Sprintf("%d (initial %d)", 10+i, 10+i))
		})
	}
}

// TestReloadSaysWhatItReplaces: a reload that changes a server reports,
// logs and audits what the file replaced, the runtime change it overrides
// included, and the counters of the servers it leaves alone go on.
func TestReloadSaysWhatItReplaces(t *testing.T) {
	f := newFixture(t, 2)
	stop := f.serve(t)
	defer stop()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range 10 {
		resp, err := c.Get("http://" + f.frontend + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	before := serverStot(t, f.sock, "be", "s1")
	if before == 0 {
		t.Fatalf("s1 served no request before the reload")
	}
	exec1(t, f.sock, "set server be/s2 weight 40")

	cfg, _ := os.ReadFile(f.cfg)
	i := bytes.Index(cfg, []byte("    server s2 "))
	end := i + bytes.IndexByte(cfg[i:], '\n')
	edited := string(cfg[:end]) + " weight 3" + string(cfg[end:])
	os.WriteFile(f.cfg, []byte(edited), 0o600)
	out, err := runCmd(t, "reload", "-s", f.sock)
	if err != nil {
		t.Fatalf("tether reload: %v\n%s", err, out)
	}
	for _, want := range []string{"~ server be/s2", "! server be/s2: runtime weight 40 replaced by the file"} {
		if !strings.Contains(out, want) {
			t.Errorf("reload reply lacks %q:\n%s", want, out)
		}
	}
	if got := exec1(t, f.sock, "get weight be/s2"); !strings.HasPrefix(got, "3 (initial 3)") {
		t.Errorf("s2 weight after the reload: %q", got)
	}
	if after := serverStot(t, f.sock, "be", "s1"); after < before {
		t.Errorf("the reload reset the unchanged s1's counters: stot %d, was %d", after, before)
	}

	st, err := store.OpenReadOnly(context.Background(), f.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.ListAudit(context.Background(), store.AuditFilter{Channel: "import", Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatalf("audit of the reload: %v, %d rows", err, len(rows))
	}
	a := rows[0]
	if a.Command != importCommand(f.cfg) || !strings.Contains(a.Before, "weight 40") || !strings.Contains(a.After, "weight 3") {
		t.Errorf("audit of the reload does not say the runtime weight 40 was replaced by the file's 3: %+v", a)
	}
}

// serverStot returns a server's stot (total sessions) from show stat.
func serverStot(t *testing.T, sock, backend, server string) int {
	t.Helper()
	lines := strings.Split(exec1(t, sock, "show stat"), "\n")
	col := -1
	for i, name := range strings.Split(strings.TrimPrefix(lines[0], "# "), ",") {
		if name == "stot" {
			col = i
		}
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) > col && col >= 0 && f[0] == backend && f[1] == server {
			n, err := strconv.Atoi(f[col])
			if err != nil {
				t.Fatalf("stot of %s/%s: %q", backend, server, f[col])
			}
			return n
		}
	}
	t.Fatalf("no %s/%s in show stat", backend, server)
	return 0
}
