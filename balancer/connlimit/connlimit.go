// Package connlimit caps how many connections a listener keeps open at once,
// the way HAProxy's maxconn does, and keeps accept loops alive through
// temporary errors such as running out of file descriptors.
//
// When a cap is reached, a Listener stops calling Accept on the socket it
// wraps: new connections wait in the kernel's backlog and are accepted as
// soon as an open one closes. Nothing is added to the per-request path; the
// only costs are an atomic operation or two per accepted connection and
// per close.
package connlimit

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limit is a cap on open connections, shared by every Listener given it
// (a frontend's maxconn across its binds, or the global maxconn across all
// frontends). It is safe for concurrent use. A nil *Limit caps nothing.
//
// A listener waiting for a client holds no part of a limit: it checks for
// room before it accepts and claims a slot once it has a connection, so
// an idle bind never takes capacity from a busy one.
type Limit struct {
	max  int64
	open atomic.Int64 // connections accepted and not yet closed

	// waiting is set while a listener waits for room, so that closing a
	// connection takes mu only when someone is to be woken.
	waiting atomic.Bool
	mu      sync.Mutex
	room    chan struct{} // closed when a connection closes
}

// NewLimit returns a cap of max open connections; max < 1 returns nil,
// which caps nothing.
func NewLimit(max int) *Limit {
	if max < 1 {
		return nil
	}
	return &Limit{max: int64(max)}
}

// Max returns the cap, 0 for a nil Limit.
func (l *Limit) Max() int {
	if l == nil {
		return 0
	}
	return int(l.max)
}

// Current returns how many connections accepted under l are open.
func (l *Limit) Current() int {
	if l == nil {
		return 0
	}
	return int(l.open.Load())
}

// waitRoom returns once fewer than max connections are open, or false
// when stop is closed first.
func (l *Limit) waitRoom(stop <-chan struct{}) bool {
	for l.open.Load() >= l.max {
		l.mu.Lock()
		l.waiting.Store(true)
		if l.open.Load() < l.max {
			l.mu.Unlock()
			return true
		}
		if l.room == nil {
			l.room = make(chan struct{})
		}
		room := l.room
		l.mu.Unlock()
		select {
		case <-room:
		case <-stop:
			return false
		}
	}
	return true
}

// tryTake claims a slot if one is free.
func (l *Limit) tryTake() bool {
	for {
		n := l.open.Load()
		if n >= l.max {
			return false
		}
		if l.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives a slot back and wakes the listeners waiting for room.
func (l *Limit) release() {
	l.open.Add(-1)
	if !l.waiting.Load() {
		return
	}
	l.mu.Lock()
	if l.room != nil {
		close(l.room)
		l.room = nil
	}
	l.waiting.Store(false)
	l.mu.Unlock()
}

// Listener wraps a net.Listener: Accept waits while any of its limits is
// reached, and retries temporary accept errors with a backoff instead of
// returning them. Each accepted connection gives its slots back when it is
// first closed. Accept and Close are safe for concurrent use.
type Listener struct {
	net.Listener
	limits []*Limit

	closed    chan struct{}
	closeOnce sync.Once
	errs      *AcceptLog
}

// NewListener wraps ln with the given limits (nil ones are skipped); log
// receives accept errors through an AcceptLog. A Listener with no limits
// only keeps the accept loop alive.
func NewListener(ln net.Listener, log *slog.Logger, limits ...*Limit) *Listener {
	l := &Listener{Listener: ln, closed: make(chan struct{}), errs: NewAcceptLog(log, "addr", ln.Addr().String())}
	for _, lim := range limits {
		if lim != nil {
			l.limits = append(l.limits, lim)
		}
	}
	return l
}

// Accept waits until every limit has room, then returns the next
// connection. Temporary errors (EMFILE, ENFILE, ECONNABORTED, ENOBUFS…)
// are retried after 5 ms, doubling up to 1 s; once the listener is closed,
// Accept returns an error matching net.ErrClosed.
//
// When other listeners sharing a limit fill it while this one waits for a
// client, the connection it then accepts waits, unserved, for a slot: at
// most one such connection per listener, and only at the cap.
func (l *Listener) Accept() (net.Conn, error) {
	if !l.waitRoom() {
		return nil, l.closedErr()
	}
	var backoff Backoff
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.isClosed() {
				// Closed while the wrapped listener failed: report
				// the close, as a closed listener does.
				return nil, l.closedErr()
			}
			if !Temporary(err) {
				return nil, err
			}
			l.errs.Failed(err)
			if !sleep(backoff.Next(), l.closed) {
				return nil, l.closedErr()
			}
			continue
		}
		l.errs.Succeeded()
		if len(l.limits) == 0 {
			return c, nil
		}
		for !l.take() {
			if !l.waitRoom() {
				c.Close()
				return nil, l.closedErr()
			}
		}
		return &conn{Conn: c, limits: l.limits}, nil
	}
}

// waitRoom waits until every limit has room, or returns false once the
// listener is closed.
func (l *Listener) waitRoom() bool {
	for _, lim := range l.limits {
		if !lim.waitRoom(l.closed) {
			return false
		}
	}
	return true
}

// take claims a slot in every limit, or none.
func (l *Listener) take() bool {
	for i, lim := range l.limits {
		if !lim.tryTake() {
			for _, taken := range l.limits[:i] {
				taken.release()
			}
			return false
		}
	}
	return true
}

func (l *Listener) closedErr() error {
	return &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
}

// Close closes the wrapped listener and wakes an Accept that is waiting
// for a slot or backing off.
func (l *Listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
	})
	return err
}

func (l *Listener) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// sleep waits for d, or returns false as soon as stop is closed.
func sleep(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Backoff paces the retries of a failing accept loop as net/http's server
// does: 5 ms, doubling each time, at most 1 s. The zero value is ready.
type Backoff struct {
	delay time.Duration
}

// Backoff bounds.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// Next returns how long to wait before the next retry.
func (b *Backoff) Next() time.Duration {
	if b.delay == 0 {
		b.delay = MinBackoff
	} else {
		b.delay = min(2*b.delay, MaxBackoff)
	}
	return b.delay
}

// Reset starts the sequence again, after a success.
func (b *Backoff) Reset() { b.delay = 0 }

// Temporary reports whether an accept error says nothing about the
// listening socket itself, so that accepting again later can succeed:
// descriptors or buffers exhausted, or a client that left before it was
// accepted.
func Temporary(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
			syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM,
			syscall.EINTR, syscall.EAGAIN, syscall.ETIMEDOUT,
			syscall.ENETDOWN, syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.EHOSTDOWN,
			syscall.ENOPROTOOPT, syscall.EOPNOTSUPP:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// conn gives its listener's slots back when it is first closed.
type conn struct {
	net.Conn
	limits   []*Limit
	released atomic.Bool
}

// Close closes the connection; its slots are released once, however many
// times Close is called.
func (c *conn) Close() error {
	var err error
	if c.Conn != nil {
		err = c.Conn.Close()
	}
	if c.released.CompareAndSwap(false, true) {
		for _, lim := range c.limits {
			lim.release()
		}
	}
	return err
}

// Swap puts nc in the place of the connection the slots are held for
// and returns the one that was there, for a server that closes a
// socket's net.Conn while keeping the socket open elsewhere: nil says
// the socket is held elsewhere, and Close then only gives the slots
// back. The caller owns the connection; nothing else may use it during
// the swap.
func (c *conn) Swap(nc net.Conn) net.Conn {
	old := c.Conn
	c.Conn = nc
	return old
}

// NetConn returns the connection that was accepted, as tls.Conn does.
func (c *conn) NetConn() net.Conn { return c.Conn }

// CloseWrite half-closes the connection when the underlying one can (TCP
// and UNIX connections can), which net/http relies on to close gracefully.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// ReadFrom lets io.Copy into the connection use sendfile/splice as it
// would on the underlying connection.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// SyscallConn gives access to the underlying descriptor when there is one.
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
