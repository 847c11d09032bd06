// Package sockio reads and writes TCP sockets with direct system calls,
// arming a deadline only when a call would block, so that a request whose
// bytes are already there costs no timer; and it can wait for bytes
// without holding a buffer. The proxy uses it on both sides.
package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Sock is a socket. It reads and writes with direct
// system calls and arms a deadline only when a call would block: a
// request whose bytes are already there costs no timer. The deadlines it
// arms come from readBy and writeBy (absolute) or readIdle and writeIdle
// (from the moment it starts waiting); the zero values mean no limit.
//
// A socket without system-call access (not a TCP or Unix socket) is read
// and written through net.Conn with the same deadlines set on every call.
//
// Sock implements net.Conn for crypto/tls, which reads and writes through
// it. One goroutine may read while another writes and a third sets
// deadlines.
type Sock struct {
	nc net.Conn
	rc syscall.RawConn
	// fd is the socket's file descriptor, -1 without system-call access.
	fd int

	// readBy and writeBy are absolute deadlines (unix nanoseconds),
	// readIdle and writeIdle limits counted from the start of a wait
	// (nanoseconds); 0 means none.
	readBy, writeBy     atomic.Int64
	readIdle, writeIdle atomic.Int64

	// mu guards the deadlines set on nc. readWaiting and writeWaiting
	// say a call waits (or is about to); readWant and writeWant are the
	// deadlines of those waits (unix nanoseconds, 0 for none);
	// readArmed and writeArmed the deadlines set on nc, which may be
	// left from an earlier wait: a deadline somewhat earlier than wanted
	// is kept (no timer is touched) and, when it expires, replaced with the
	// wanted one and the call resumed (see resume).
	mu                        sync.Mutex
	readWaiting, writeWaiting bool
	readWant, writeWant       int64
	readArmed, writeArmed     int64
	// readResumed and writeResumed say the call was resumed after an
	// early expiry: its next wait keeps the deadline it had.
	readResumed, writeResumed bool

	// The operation in progress, for the callbacks below, which are bound
	// once so that a call allocates nothing: one read and one write may
	// run at a time.
	rbuf    []byte
	rn      int
	rerr    error
	fresh   bool
	pool    BufferPool
	wbuf    []byte
	wn      int
	werr    error
	readFn  func(uintptr) bool
	writeFn func(uintptr) bool
	// replyWait is WriteThenRead's step: 1 to write, 2 to read.
	replyWait       int
	writeThenReadFn func(uintptr) bool
}

// New returns the Sock of nc.
func New(nc net.Conn) *Sock {
	s := &Sock{nc: nc, fd: -1}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
			rc.Control(func(fd uintptr) { s.fd = int(fd) })
		}
	}
	s.readFn, s.writeFn, s.writeThenReadFn = s.readOnce, s.writeAll, s.writeThenRead
	return s
}

// readDeadline returns the deadline of a read that starts waiting now.
func (s *Sock) readDeadline() time.Time { return deadline(&s.readBy, &s.readIdle) }

func (s *Sock) writeDeadline() time.Time { return deadline(&s.writeBy, &s.writeIdle) }

func deadline(by, idle *atomic.Int64) time.Time {
	if at := by.Load(); at != 0 {
		return time.Unix(0, at)
	}
	if d := idle.Load(); d > 0 {
		return time.Now().Add(time.Duration(d))
	}
	return time.Time{}
}

// SetReadLimits sets the read deadline: by, when not zero, else idle
// from the start of each wait.
func (s *Sock) SetReadLimits(by time.Time, idle time.Duration) {
	s.readBy.Store(unixNano(by))
	s.readIdle.Store(int64(idle))
}

// SetWriteLimits is SetReadLimits for writes.
func (s *Sock) SetWriteLimits(by time.Time, idle time.Duration) {
	s.writeBy.Store(unixNano(by))
	s.writeIdle.Store(int64(idle))
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// armRead makes sure a deadline no later than the read's is set on the
// socket before a wait.
func (s *Sock) armRead() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readWaiting = true
	if !s.readResumed {
		s.readWant = unixNano(s.readDeadline())
	}
	s.readResumed = false
	s.readArmed = arm(s.nc.SetReadDeadline, s.readArmed, s.readWant, s.readIdle.Load())
}

func (s *Sock) armWrite() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeWaiting = true
	if !s.writeResumed {
		s.writeWant = unixNano(s.writeDeadline())
	}
	s.writeResumed = false
	s.writeArmed = arm(s.nc.SetWriteDeadline, s.writeArmed, s.writeWant, s.writeIdle.Load())
}

// arm returns the deadline to have on the socket for a wait that wants
// want, given that armed is set, setting it when it changes. A limit
// counted from the start of each wait moves on with every wait; the
// deadline armed for an earlier one is kept while it is less than an
// eighth of the limit early, so that a busy connection touches a timer
// every few seconds rather than twice a request.
func arm(set func(time.Time) error, armed, want, idle int64) int64 {
	if armed == want || want != 0 && armed != 0 && armed < want && want-armed <= idle/8 {
		return armed
	}
	set(timeOf(want))
	return want
}

func timeOf(unixNano int64) time.Time {
	if unixNano == 0 {
		return time.Time{}
	}
	return time.Unix(0, unixNano)
}

// resume reports whether a call that failed with err should be made
// again: the deadline that expired was one kept from an earlier wait
// (see arm), or a read or write that did not wait found it expired,
// while the call's own deadline is still ahead. It then sets that
// deadline on the socket.
func (s *Sock) resume(err error, read bool) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	waiting, want, armed, resumed, set := s.writeWaiting, &s.writeWant, &s.writeArmed, &s.writeResumed, s.nc.SetWriteDeadline
	deadline := s.writeDeadline
	if read {
		waiting, want, armed, resumed, set = s.readWaiting, &s.readWant, &s.readArmed, &s.readResumed, s.nc.SetReadDeadline
		deadline = s.readDeadline
	}
	if !waiting {
		*want = unixNano(deadline())
	}
	if *want != 0 && time.Now().UnixNano() >= *want {
		return false
	}
	set(timeOf(*want))
	*armed = *want
	*resumed = waiting
	return true
}

// rawRead is the raw connection's Read, resumed after a deadline that
// expired early.
func (s *Sock) rawRead(f func(uintptr) bool) error {
	for {
		err := s.rc.Read(f)
		if err == nil || !s.resume(err, true) {
			return err
		}
	}
}

func (s *Sock) rawWrite(f func(uintptr) bool) error {
	for {
		err := s.rc.Write(f)
		if err == nil || !s.resume(err, false) {
			return err
		}
	}
}

// RawRead calls f as syscall.RawConn's Read does, on the socket's raw
// connection, which it must have (RawConn is not nil). Calls outside
// Sock go through it, so that a deadline Sock left armed does not fail
// them.
func (s *Sock) RawRead(f func(uintptr) bool) error { return s.rawRead(f) }

// endRead notes that a read's wait is over. The deadline stays armed
// for the next one.
func (s *Sock) endRead() {
	if !s.readWaiting {
		return
	}
	s.mu.Lock()
	s.readWaiting, s.readResumed = false, false
	s.mu.Unlock()
}

func (s *Sock) endWrite() {
	if !s.writeWaiting {
		return
	}
	s.mu.Lock()
	s.writeWaiting, s.writeResumed = false, false
	s.mu.Unlock()
}

// Read reads into p, waiting up to the read deadline.
func (s *Sock) Read(p []byte) (int, error) {
	if s.rc == nil {
		s.nc.SetReadDeadline(s.readDeadline())
		return s.nc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf, s.fresh = p, false
	err := s.rawRead(s.readFn)
	s.endRead()
	n, serr := s.rn, s.rerr
	s.rbuf, s.rerr = nil, nil
	return sockResult(n, err, serr)
}

// WriteThenRead writes all of w, then reads the reply into r. The wait for
// the reply starts without a read attempt: the socket's readiness was
// reset before the write, so only bytes that came after it wake the wait,
// which saves the read that would find nothing yet. It returns how much
// of w was written; a write the socket cannot take at once is finished
// with Write, then the reply read with Read.
func (s *Sock) WriteThenRead(w, r []byte) (written, n int, err error) {
	if s.rc == nil || len(w) == 0 || len(r) == 0 {
		if written, err = s.Write(w); err != nil {
			return written, 0, err
		}
		n, err = s.Read(r)
		return written, n, err
	}
	s.wbuf, s.wn, s.werr = w, 0, nil
	s.rbuf, s.fresh, s.replyWait = r, false, 1
	err = s.rawRead(s.writeThenReadFn)
	s.endRead()
	written, n, serr, werr := s.wn, s.rn, s.rerr, s.werr
	s.wbuf, s.werr, s.rbuf, s.rerr, s.replyWait = nil, nil, nil, nil, 0
	if err == nil && werr != nil {
		return written, 0, &net.OpError{Op: "write", Net: "tcp", Err: werr}
	}
	if err == nil && written < len(w) {
		// The socket's buffer filled: finish the usual way.
		m, err := s.Write(w[written:])
		if err != nil {
			return written + m, 0, err
		}
		n, err = s.Read(r)
		return len(w), n, err
	}
	n, err = sockResult(n, err, serr)
	return written, n, err
}

// writeThenRead is WriteThenRead's callback: the first call writes and
// asks to wait, the next ones read.
func (s *Sock) writeThenRead(fd uintptr) bool {
	if s.replyWait == 1 {
		s.replyWait = 2
		for s.wn < len(s.wbuf) {
			m, e := syscall.Write(int(fd), s.wbuf[s.wn:])
			switch {
			case e == syscall.EINTR:
				continue
			case e != nil:
				if e != syscall.EAGAIN {
					s.werr = e
				}
				return true
			}
			s.wn += m
		}
		s.armRead()
		return false
	}
	return s.readOnce(fd)
}

// BufferPool lends read buffers.
type BufferPool interface {
	TakeBuffer() []byte
	GiveBuffer([]byte)
}

// ReadFresh waits for bytes without holding a buffer: it takes one from
// the pool only when the socket has bytes, and gives it back when the
// socket turns out to have none, so that an idle connection holds no
// buffer while it waits. It returns the buffer read into (nil when
// nothing was read), the count and the error.
func (s *Sock) ReadFresh(pool BufferPool) ([]byte, int, error) {
	if s.rc == nil {
		b := pool.TakeBuffer()
		n, err := s.Read(b)
		return b, n, err
	}
	s.fresh, s.pool = true, pool
	err := s.rawRead(s.readFn)
	s.endRead()
	b, n, serr := s.rbuf, s.rn, s.rerr
	s.rbuf, s.rerr, s.pool = nil, nil, nil
	n, err = sockResult(n, err, serr)
	if n == 0 && b != nil {
		pool.GiveBuffer(b)
		b = nil
	}
	return b, n, err
}

// readOnce is the read callback: it reads once into rbuf (taken from get
// for a fresh read) and asks to wait when the socket has nothing.
func (s *Sock) readOnce(fd uintptr) bool {
	if s.fresh {
		s.rbuf = s.pool.TakeBuffer()
	}
	s.rn, s.rerr = readFD(fd, s.rbuf)
	if s.rerr == syscall.EAGAIN {
		if s.fresh {
			s.pool.GiveBuffer(s.rbuf)
			s.rbuf = nil
		}
		s.armRead()
		return false
	}
	return true
}

// readFD reads from fd into p, retrying on EINTR.
func readFD(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			if n < 0 {
				n = 0
			}
			return n, err
		}
	}
}

// sockResult turns a read's outcome into io.Reader's terms.
func sockResult(n int, err, serr error) (int, error) {
	switch {
	case err != nil:
		return 0, err
	case serr != nil:
		return n, &net.OpError{Op: "read", Net: "tcp", Err: serr}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting up to the write deadline whenever the
// socket's buffer is full.
func (s *Sock) Write(p []byte) (int, error) {
	if s.rc == nil {
		s.nc.SetWriteDeadline(s.writeDeadline())
		return s.nc.Write(p)
	}
	s.wbuf, s.wn, s.werr = p, 0, nil
	err := s.rawWrite(s.writeFn)
	s.endWrite()
	n, serr := s.wn, s.werr
	s.wbuf, s.werr = nil, nil
	if err == nil && serr != nil {
		err = &net.OpError{Op: "write", Net: "tcp", Err: serr}
	}
	return n, err
}

// writeAll is the write callback: it writes what is left of wbuf and asks
// to wait when the socket's buffer is full.
func (s *Sock) writeAll(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		m, e := syscall.Write(int(fd), s.wbuf[s.wn:])
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			s.armWrite()
			return false
		case e != nil:
			s.werr = e
			return true
		}
		s.wn += m
	}
	return true
}

// Conn returns the connection the Sock was made from.
func (s *Sock) Conn() net.Conn { return s.nc }

// FD returns the socket's file descriptor, or -1 when it has none.
func (s *Sock) FD() int { return s.fd }

// RawConn returns the socket's syscall.RawConn, nil when it has none.
func (s *Sock) RawConn() syscall.RawConn { return s.rc }

// Close closes the socket.
func (s *Sock) Close() error { return s.nc.Close() }

// CloseWrite half-closes the socket when it can.
func (s *Sock) CloseWrite() error {
	if cw, ok := s.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (s *Sock) LocalAddr() net.Addr  { return s.nc.LocalAddr() }
func (s *Sock) RemoteAddr() net.Addr { return s.nc.RemoteAddr() }

// SetDeadline sets t as the deadline of reads and writes.
func (s *Sock) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets t as the deadline of reads; a read waiting now
// gets it at once.
func (s *Sock) SetReadDeadline(t time.Time) error {
	s.readBy.Store(unixNano(t))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readWaiting {
		s.readWant = unixNano(s.readDeadline())
		s.nc.SetReadDeadline(timeOf(s.readWant))
		s.readArmed = s.readWant
	}
	return nil
}

// SetWriteDeadline sets t as the deadline of writes; a write waiting now
// gets it at once.
func (s *Sock) SetWriteDeadline(t time.Time) error {
	s.writeBy.Store(unixNano(t))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writeWaiting {
		s.writeWant = unixNano(s.writeDeadline())
		s.nc.SetWriteDeadline(timeOf(s.writeWant))
		s.writeArmed = s.writeWant
	}
	return nil
}
