package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tether/balancer/e2etest"
)

// startBinary runs "tether serve" on the fixture as its own process until
// the test ends, and returns it once its Runtime API answers.
func startBinary(t *testing.T, f fixture) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(tetherBinary(t), "serve", "-f", f.cfg, "-db", f.db, "-console", "")
	var logs e2etest.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		if t.Failed() {
			t.Logf("tether's log:\n%s", logs.String())
		}
	})
	waitSocket(t, f.sock, done)
	return cmd
}

func TestSecondProcessOnOneDatabaseIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	f := newFixture(t, 2)
	first := startBinary(t, f)
	before := exportOf(t, f.db)

	second := exec.Command(tetherBinary(t), "serve", "-f", f.cfg, "-db", f.db, "-console", "", "-socket", "")
	out, err := second.CombinedOutput()
	want := fmt.Sprintf("%s is in use by pid %d", f.db, first.Process.Pid)
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("second process: %v\n%s\nwant %q", err, out, want)
	}
	if after := exportOf(t, f.db); after != before {
		t.Errorf("the second process changed the first one's state")
	}
	if got := exec1(t, f.sock, "show cli level"); strings.TrimSpace(got) != "admin" {
		t.Errorf("the first process stopped answering: %q", got)
	}
}

// TestReloadUnderWrkLoad reloads the real process three times (two
// signals and "tether reload") while wrk loads it: no request may fail,
// and the new servers and weights are live afterwards.
func TestReloadUnderWrkLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary under load")
	}
	wrk := e2etest.RequireProgram(t, "wrk")
	f := newFixture(t, 2)
	proc := startBinary(t, f)
	extra := make([]string, 3)
	for i := range extra {
		o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "x%d", i) }))
		t.Cleanup(o.Close)
		extra[i] = o.Listener.Addr().String()
	}
	load := exec.Command(wrk, "-t1", "-c16", "-d4s", "http://"+f.frontend+"/")
	var report bytes.Buffer
	load.Stdout, load.Stderr = &report, &report
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(f.cfg)
	for i, addr := range extra {
		time.Sleep(700 * time.Millisecond) // let load run between reloads
		added := string(cfg)
		for j := 0; j <= i; j++ {
			added += fmt.Sprintf("    server x%d %s weight %d\n", j, extra[j], 10+i)
		}
		os.WriteFile(f.cfg, []byte(added), 0o600)
		switch i {
		case 0:
			proc.Process.Signal(syscall.SIGUSR2)
		case 1:
			proc.Process.Signal(syscall.SIGHUP)
		default:
			if out, err := runCmd(t, "reload", "-s", f.sock); err != nil {
				t.Fatalf("tether reload: %v\n%s", err, out)
			}
		}
		want := strconv.Itoa(10+i) + " (initial " + strconv.Itoa(10+i) + ")"
		waitFor(t, "reload "+addr, func() bool { return strings.HasPrefix(exec1(t, f.sock, fmt.Sprintf("get weight be/x%d", i)), want) })
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("wrk: %v\n%s", err, report.String())
	}
	rep := report.String()
	t.Logf("wrk:\n%s", rep)
	if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(rep); m == nil || m[1] == "0" {
		t.Fatalf("wrk sent no request:\n%s", rep)
	}
	for _, bad := range []string{"Socket errors", "Non-2xx or 3xx responses"} {
		if strings.Contains(rep, bad) {
			t.Errorf("requests failed during the reloads: %s", bad)
		}
	}
}
