package runtimeapi

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tether/balancer"

	"tether/balancer/e2etest"
)

// failingListener returns the queued errors from Accept before accepting
// for real.
type failingListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (f *failingListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

// TestAcceptErrorsKeepSocket: descriptor exhaustion (EMFILE, ENFILE) and
// even an unexpected accept error never stop the stats socket nor remove
// its file; the socket answers once accepting works again, and the burst
// is logged once. Only Close removes the file.
func TestAcceptErrorsKeepSocket(t *testing.T) {
	accErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", errno)}
	}
	var logs e2etest.Buffer
	b, _ := newTestBalancer(t, testCfg)
	d := NewDispatcher(b, DispatcherOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	path := filepath.Join(t.TempDir(), "s.sock")
	errs := []error{accErr(syscall.EMFILE), accErr(syscall.EMFILE), accErr(syscall.ENFILE), accErr(syscall.EINVAL), accErr(syscall.EMFILE)}
	l, err := listen(context.Background(), balancer.StatsSocket{Address: path, Level: balancer.LevelAdmin}, d, balancer.Global{},
		func(ln net.Listener) net.Listener { return &failingListener{Listener: ln, errs: errs} })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	c := dialUnix(t, path)
	if _, err := c.Write([]byte("show info\n")); err != nil {
		t.Fatal(err)
	}
	if out := readUntil(t, c, "\n\n"); !strings.Contains(out, "Name: ") {
		t.Fatalf("show info after accept errors: %q", out)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("socket file gone after accept errors: %v", err)
	}
	out := logs.String()
	if n := strings.Count(out, "accept failed"); n != 1 {
		t.Errorf("burst logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "accepting connections again") || !strings.Contains(out, "failed_accepts=5") {
		t.Errorf("recovery not logged with the number of failures:\n%s", out)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

// TestCloseDuringBackoff: Close ends an accept loop that is waiting out
// a backoff, and removes the socket file.
func TestCloseDuringBackoff(t *testing.T) {
	b, _ := newTestBalancer(t, testCfg)
	d := NewDispatcher(b, DispatcherOptions{})
	path := filepath.Join(t.TempDir(), "s.sock")
	fl := &failingListener{}
	for range 1000 {
		fl.errs = append(fl.errs, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)})
	}
	l, err := listen(context.Background(), balancer.StatsSocket{Address: path}, d, balancer.Global{},
		func(ln net.Listener) net.Listener { fl.Listener = ln; return fl })
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a few failed accepts", func() bool {
		fl.mu.Lock()
		defer fl.mu.Unlock()
		return len(fl.errs) < 998
	})
	done := make(chan error, 1)
	go func() { done <- l.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the backoff")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}
