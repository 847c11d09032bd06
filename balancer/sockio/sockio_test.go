package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a Sock over the server side of a loopback connection and
// the client side.
func pair(t *testing.T) (*Sock, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s := New(server)
	t.Cleanup(func() { s.Close() })
	if s.FD() < 0 || s.RawConn() == nil {
		t.Fatal("a TCP socket without system-call access")
	}
	return s, client
}

func TestReadLimits(t *testing.T) {
	s, client := pair(t)
	// Bytes already there: read at once whatever the limit.
	client.Write([]byte("abc"))
	s.SetReadLimits(time.Time{}, 50*time.Millisecond)
	buf := make([]byte, 8)
	time.Sleep(20 * time.Millisecond)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// Nothing there: the wait ends at the idle limit, each time afresh.
	for range 2 {
		start := time.Now()
		_, err := s.Read(buf)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want a timeout", err)
		}
		if waited := time.Since(start); waited < 40*time.Millisecond {
			t.Errorf("timed out after %v, want about 50ms", waited)
		}
	}
	// An absolute deadline wins over the idle limit.
	s.SetReadLimits(time.Now().Add(-time.Second), time.Hour)
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	// No limit: the read waits for bytes.
	s.SetReadLimits(time.Time{}, 0)
	go func() {
		time.Sleep(100 * time.Millisecond)
		client.Write([]byte("late"))
	}()
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	client.Close()
	if _, err := s.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}

// TestDeadlineReachesWaitingRead checks that a deadline set while a read
// waits ends that read, as net.Conn's does.
func TestDeadlineReachesWaitingRead(t *testing.T) {
	s, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.SetReadDeadline(time.Now())
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting read did not get the deadline")
	}
	// The deadline applied stays until changed; cleared, reads work again.
	s.SetReadDeadline(time.Time{})
	go func() { time.Sleep(20 * time.Millisecond); s.SetReadDeadline(time.Now()) }()
	if _, err := s.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second read: %v", err)
	}
}

// pool counts the buffers it lends.
type pool struct{ out int }

func (p *pool) TakeBuffer() []byte { p.out++; return make([]byte, 16) }
func (p *pool) GiveBuffer([]byte)  { p.out-- }

func TestReadFreshHoldsNoBufferWhileWaiting(t *testing.T) {
	s, client := pair(t)
	p := &pool{}
	s.SetReadLimits(time.Time{}, 30*time.Millisecond)
	b, n, err := s.ReadFresh(p)
	if b != nil || n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || p.out != 0 {
		t.Fatalf("idle wait: buffer %v, n %d, err %v, %d buffers out", b != nil, n, err, p.out)
	}
	client.Write([]byte("hello"))
	s.SetReadLimits(time.Time{}, time.Second)
	b, n, err = s.ReadFresh(p)
	if err != nil || string(b[:n]) != "hello" || p.out != 1 {
		t.Fatalf("read %q, %v, %d buffers out", b[:n], err, p.out)
	}
}

func TestWrite(t *testing.T) {
	s, client := pair(t)
	s.SetWriteLimits(time.Time{}, 200*time.Millisecond)
	// A peer that does not read: the socket buffers fill, then the write
	// waits and gives up at the limit, having written part.
	big := make([]byte, 64<<20)
	n, err := s.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == len(big) {
		t.Fatalf("wrote %d, %v; want part and a timeout", n, err)
	}
	client.Close()
}

func TestWriteThenRead(t *testing.T) {
	s, client := pair(t)
	go func() {
		buf := make([]byte, 1<<20)
		total := 0
		for {
			n, err := client.Read(buf)
			if err != nil {
				return
			}
			total += n
			if total == 5 || total == 5+4<<20 {
				client.Write([]byte("reply"))
			}
		}
	}()
	s.SetReadLimits(time.Time{}, 5*time.Second)
	s.SetWriteLimits(time.Time{}, 5*time.Second)
	buf := make([]byte, 16)
	// A request the socket takes at once.
	w, n, err := s.WriteThenRead([]byte("hello"), buf)
	if err != nil || w != 5 || string(buf[:n]) != "reply" {
		t.Fatalf("wrote %d, read %q, %v", w, buf[:n], err)
	}
	// One larger than the socket's buffers: finished with Write.
	big := make([]byte, 4<<20)
	w, n, err = s.WriteThenRead(big, buf)
	if err != nil || w != len(big) || string(buf[:n]) != "reply" {
		t.Fatalf("wrote %d of %d, read %q, %v", w, len(big), buf[:n], err)
	}
}

// A deadline kept from an earlier wait (see arm) expires a little before
// the next wait's own; the wait goes on to its own deadline, no further.
func TestKeptDeadlineNeverCutsAWaitShort(t *testing.T) {
	s, client := pair(t)
	const limit = 400 * time.Millisecond
	s.SetReadLimits(time.Time{}, limit)
	buf := make([]byte, 8)
	// A read that waits arms limit from now.
	go func() { time.Sleep(10 * time.Millisecond); client.Write([]byte("a")) }()
	if _, err := s.Read(buf); err != nil {
		t.Fatal(err)
	}
	// The next wait starts 30 ms later, within an eighth of the limit: the
	// armed deadline is kept and expires ~30 ms before this wait's own.
	time.Sleep(30 * time.Millisecond)
	start := time.Now()
	go func() { time.Sleep(limit - 15*time.Millisecond); client.Write([]byte("b")) }()
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "b" {
		t.Fatalf("read %q, %v after %v: the kept deadline cut the wait short", buf[:n], err, time.Since(start))
	}
	// And a wait with nothing coming still ends at its own deadline.
	time.Sleep(30 * time.Millisecond)
	start = time.Now()
	_, err := s.Read(buf)
	waited := time.Since(start)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if waited < limit-10*time.Millisecond || waited > limit+200*time.Millisecond {
		t.Errorf("timed out after %v, want about %v", waited, limit)
	}
}

// A deadline left armed that expires while nobody reads fails neither the
// next read, nor a raw read through RawRead, nor a write.
func TestExpiredKeptDeadlineIsHarmless(t *testing.T) {
	s, client := pair(t)
	s.SetReadLimits(time.Time{}, 30*time.Millisecond)
	s.SetWriteLimits(time.Time{}, 30*time.Millisecond)
	buf := make([]byte, 8)
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	time.Sleep(60 * time.Millisecond)
	called := false
	if err := s.RawRead(func(uintptr) bool { called = true; return true }); err != nil || !called {
		t.Fatalf("RawRead after an expired deadline: %v (called %v)", err, called)
	}
	client.Write([]byte("x"))
	time.Sleep(10 * time.Millisecond)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if _, err := s.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	// A deadline that is really past still fails a read that must wait.
	s.SetReadLimits(time.Now().Add(-time.Millisecond), 0)
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a timeout", err)
	}
}
