package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tether/balancer/e2etest"
)

// scriptedListener returns the queued errors first, then connections from
// conns; it counts Accept calls.
type scriptedListener struct {
	mu     sync.Mutex
	errs   []error
	calls  int
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newScripted(errs ...error) *scriptedListener {
	return &scriptedListener{errs: errs, conns: make(chan net.Conn, 16), closed: make(chan struct{})}
}

func (s *scriptedListener) Accept() (net.Conn, error) {
	s.mu.Lock()
	s.calls++
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	}
}

func (s *scriptedListener) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *scriptedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

func (s *scriptedListener) acceptCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// pipeConn returns one end of an in-memory connection, closing both ends
// when the test ends.
func pipeConn(t *testing.T) net.Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

type acceptResult struct {
	c   net.Conn
	err error
}

func acceptAsync(l net.Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := l.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCapOnRealListener: with maxconn 2, the third client waits in the
// backlog until an accepted connection closes, and closing one connection
// twice releases a single slot.
func TestCapOnRealListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := NewLimit(2)
	ln := NewListener(inner, nil, lim)
	defer ln.Close()

	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	second, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got := lim.Current(); got != 2 {
		t.Fatalf("Current = %d after two accepts, want 2", got)
	}
	third := acceptAsync(ln)
	select {
	case r := <-third:
		t.Fatalf("third connection accepted while the cap was reached (err %v)", r.err)
	case <-time.After(100 * time.Millisecond):
	}
	first.Close()
	first.Close()
	var r acceptResult
	select {
	case r = <-third:
	case <-time.After(5 * time.Second):
		t.Fatal("third connection not accepted after one closed")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	if got := lim.Current(); got != 2 {
		t.Fatalf("Current = %d after a double close and a new accept, want 2", got)
	}
	// The accepted connection is the third client's: data flows end to end.
	if _, err := clients[2].Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read from the third connection: %q, %v", buf, err)
	}
	second.Close()
	r.c.Close()
	r.c.Close()
	// An Accept waiting for a client holds a slot but is no connection.
	waiting := acceptAsync(ln)
	if got := lim.Current(); got != 0 {
		t.Fatalf("Current = %d after every connection closed, want 0", got)
	}
	ln.Close()
	if r := <-waiting; !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v", r.err)
	}
}

// TestSharedLimits: a global limit caps listeners of different frontends
// together, and a listener's own limit caps it alone.
func TestSharedLimits(t *testing.T) {
	global := NewLimit(3)
	feA, feB := NewLimit(2), NewLimit(5)
	a, b := newScripted(), newScripted()
	la := NewListener(a, nil, feA, global)
	lb := NewListener(b, nil, feB, global)
	defer la.Close()
	defer lb.Close()
	for range 4 {
		a.conns <- pipeConn(t)
		b.conns <- pipeConn(t)
	}
	tests := []struct {
		name    string
		ln      *Listener
		wantCur [3]int // global, feA, feB after the accept
	}{
		{"a1", la, [3]int{1, 1, 0}},
		{"a2", la, [3]int{2, 2, 0}},
		{"b1", lb, [3]int{3, 2, 1}},
	}
	var open []net.Conn
	for _, tt := range tests {
		c, err := tt.ln.Accept()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		open = append(open, c)
		got := [3]int{global.Current(), feA.Current(), feB.Current()}
		if got != tt.wantCur {
			t.Fatalf("%s: currents (global, a, b) = %v, want %v", tt.name, got, tt.wantCur)
		}
	}
	// Global cap reached: b waits although its own limit has room.
	waiting := acceptAsync(lb)
	select {
	case <-waiting:
		t.Fatal("accepted beyond the global limit")
	case <-time.After(100 * time.Millisecond):
	}
	if n := b.acceptCalls(); n != 1 {
		t.Fatalf("wrapped listener's Accept called %d times, want 1 (no call while capped)", n)
	}
	open[0].Close() // one of a's
	r := <-waiting
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.c.Close()
	if got := [3]int{global.Current(), feA.Current(), feB.Current()}; got != [3]int{2, 1, 1} {
		t.Fatalf("currents (global, a, b) = %v, want [2 1 1]", got)
	}
}

// TestTemporaryErrorsKeepAccepting: EMFILE and friends never end the
// loop; a burst is logged once when it starts and once when it ends.
func TestTemporaryErrorsKeepAccepting(t *testing.T) {
	var logs e2etest.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	inner := newScripted(acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), acceptErr(syscall.ECONNABORTED), acceptErr(syscall.ENOBUFS))
	want := pipeConn(t)
	inner.conns <- want
	ln := NewListener(inner, log, NewLimit(1))
	defer ln.Close()

	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept returned %v, want the connection after the temporary errors", err)
	}
	if c.(interface{ NetConn() net.Conn }).NetConn() != want {
		t.Fatal("Accept returned another connection")
	}
	if n := inner.acceptCalls(); n != 6 {
		t.Fatalf("wrapped Accept called %d times, want 6", n)
	}
	out := logs.String()
	if n := strings.Count(out, "accept failed"); n != 1 {
		t.Errorf("burst start logged %d times, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "accepting connections again"); n != 1 || !strings.Contains(out, "failed_accepts=5") {
		t.Errorf("burst end not logged once with its count:\n%s", out)
	}
	c.Close()
}

// TestPermanentErrorAndClose: an error about the socket itself is
// returned with its slot given back, and Close wakes an Accept that
// waits for a slot or backs off.
func TestPermanentErrorAndClose(t *testing.T) {
	t.Run("permanent error", func(t *testing.T) {
		lim := NewLimit(1)
		ln := NewListener(newScripted(acceptErr(syscall.EINVAL)), nil, lim)
		defer ln.Close()
		if _, err := ln.Accept(); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("Accept error = %v, want EINVAL", err)
		}
		if lim.Current() != 0 {
			t.Fatal("slot kept after a failed accept")
		}
	})
	t.Run("close while capped", func(t *testing.T) {
		inner := newScripted()
		inner.conns <- pipeConn(t)
		lim := NewLimit(1)
		ln := NewListener(inner, nil, NewLimit(5), lim)
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waiting := acceptAsync(ln)
		ln.Close()
		if r := <-waiting; !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", r.err)
		}
		if lim.Current() != 1 {
			t.Fatalf("Current = %d, want 1 (the open connection)", lim.Current())
		}
	})
	t.Run("close while backing off", func(t *testing.T) {
		errs := make([]error, 100)
		for i := range errs {
			errs[i] = acceptErr(syscall.EMFILE)
		}
		inner := newScripted(errs...)
		lim := NewLimit(1)
		ln := NewListener(inner, nil, lim)
		waiting := acceptAsync(ln)
		waitFor(t, "a failed accept", func() bool { return inner.acceptCalls() >= 2 })
		ln.Close()
		if r := <-waiting; !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", r.err)
		}
		if lim.Current() != 0 {
			t.Fatal("slot kept after Close")
		}
	})
}

func TestBackoff(t *testing.T) {
	var b Backoff
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Fatalf("step %d: %v, want %v", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.Next(); got != MinBackoff {
		t.Fatalf("after Reset: %v, want %v", got, MinBackoff)
	}
}

func TestTemporary(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{acceptErr(syscall.EMFILE), true},
		{acceptErr(syscall.ENFILE), true},
		{acceptErr(syscall.ECONNABORTED), true},
		{acceptErr(syscall.ENOBUFS), true},
		{acceptErr(syscall.ENOMEM), true},
		{acceptErr(syscall.EINVAL), false},
		{acceptErr(syscall.EBADF), false},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		if got := Temporary(tt.err); got != tt.want {
			t.Errorf("Temporary(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestNilLimit(t *testing.T) {
	if NewLimit(0) != nil || NewLimit(-1) != nil {
		t.Fatal("NewLimit(<1) should cap nothing")
	}
	var l *Limit
	if l.Max() != 0 || l.Current() != 0 {
		t.Fatal("nil Limit reports a cap")
	}
}

// TestAcceptLogRateLimited: bursts that come and go quickly produce one
// warning a second, not one per burst, and no failure goes uncounted.
func TestAcceptLogRateLimited(t *testing.T) {
	var logs e2etest.Buffer
	a := NewAcceptLog(slog.New(slog.NewTextHandler(&logs, nil)), "addr", "x")
	a.Succeeded() // outside a burst: nothing
	for range 50 {
		a.Failed(syscall.EMFILE)
		a.Failed(syscall.EMFILE)
		a.Succeeded()
	}
	out := logs.String()
	if n := strings.Count(out, "accept failed"); n != 1 {
		t.Fatalf("%d warnings for 50 bursts within a second, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "accepting connections again"); n != 1 || !strings.Contains(out, "failed_accepts=2") {
		t.Fatalf("want one recovery line for the reported burst:\n%s", out)
	}
	// The 99 failures after the first warning are counted in the next one.
	a.warned = time.Time{}
	a.Failed(syscall.EMFILE)
	if !strings.Contains(logs.String(), "failed_accepts=100") {
		t.Fatalf("unreported failures lost:\n%s", logs.String())
	}
}

// TestIdleListenerTakesNoCapacity: a listener waiting for a client holds
// no slot of a shared limit, so a busy one can use all of it; a client
// that reaches the idle one once the limit is full waits for a slot.
func TestIdleListenerTakesNoCapacity(t *testing.T) {
	global := NewLimit(2)
	busy, idle := newScripted(), newScripted()
	lBusy := NewListener(busy, nil, global)
	lIdle := NewListener(idle, nil, global)
	defer lBusy.Close()
	defer lIdle.Close()

	pending := acceptAsync(lIdle)
	waitFor(t, "the idle listener to wait for a client", func() bool { return idle.acceptCalls() == 1 })
	busy.conns <- pipeConn(t)
	busy.conns <- pipeConn(t)
	var open []net.Conn
	for i := range 2 {
		select {
		case r := <-acceptAsync(lBusy):
			if r.err != nil {
				t.Fatalf("busy accept %d: %v", i+1, r.err)
			}
			open = append(open, r.c)
		case <-time.After(5 * time.Second):
			t.Fatalf("busy listener stuck at %d connections of 2 while the other waits for a client", i)
		}
	}
	if got := global.Current(); got != 2 {
		t.Fatalf("Current = %d, want 2", got)
	}

	// The limit is full: the idle listener's client waits for a slot.
	idle.conns <- pipeConn(t)
	waitFor(t, "the idle listener's client to be taken", func() bool { return len(idle.conns) == 0 })
	select {
	case r := <-pending:
		t.Fatalf("accepted beyond the limit (err %v)", r.err)
	case <-time.After(100 * time.Millisecond):
	}
	open[0].Close()
	r := <-pending
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := global.Current(); got != 2 {
		t.Fatalf("Current = %d after the waiting client got its slot, want 2", got)
	}
	r.c.Close()
	open[1].Close()
	if got := global.Current(); got != 0 {
		t.Fatalf("Current = %d after every connection closed, want 0", got)
	}
}

// TestLimitUnderLoad: many listeners and connections racing on a shared
// limit never exceed it, and every slot comes back.
func TestLimitUnderLoad(t *testing.T) {
	const listeners, perListener, max = 4, 200, 3
	global := NewLimit(max)
	var (
		wg   sync.WaitGroup
		peak atomic.Int64
		lns  []*Listener
	)
	for range listeners {
		inner := newScripted()
		inner.conns = make(chan net.Conn, perListener)
		for range perListener {
			inner.conns <- pipeConn(t)
		}
		ln := NewListener(inner, nil, global)
		lns = append(lns, ln)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perListener {
				c, err := ln.Accept()
				if err != nil {
					t.Error(err)
					return
				}
				n := int64(global.Current())
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				go c.Close()
			}
		}()
	}
	wg.Wait()
	for _, ln := range lns {
		ln.Close()
	}
	if p := peak.Load(); p > max {
		t.Fatalf("peak %d open connections, limit %d", p, max)
	}
	waitFor(t, "every slot back", func() bool { return global.Current() == 0 })
}
