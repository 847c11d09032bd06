package main

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// serveFloorEpoll serves with one event loop per processor, each with its
// own listening socket (SO_REUSEPORT), epoll set and server connection
// pools, reading and writing with system calls on non-blocking sockets.
// A loop looks for events without waiting a few times, yielding the
// processor in between, before it blocks in epoll_wait: a blocked loop
// costs the wake-up that HAProxy's busy loop also avoids.
func serveFloorEpoll(ctx context.Context, listen string, r *floorRouter) error {
	la, err := sockaddr(listen)
	if err != nil {
		return err
	}
	var origins []unix.Sockaddr
	for _, o := range r.origins {
		sa, err := sockaddr(o)
		if err != nil {
			return err
		}
		origins = append(origins, sa)
	}
	errc := make(chan error, runtime.GOMAXPROCS(0))
	for range runtime.GOMAXPROCS(0) {
		l, err := newEpollLoop(la, r, origins)
		if err != nil {
			return err
		}
		go func() { errc <- l.run() }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

func sockaddr(hostport string) (*unix.SockaddrInet4, error) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil || !ap.Addr().Is4() {
		return nil, errors.New("floor: want an IPv4 address:port, not " + hostport)
	}
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, nil
}

// epollConn is a client connection or a server connection of a loop.
type epollConn struct {
	fd   int
	buf  []byte
	n    int
	peer *epollConn // the other side of the exchange in progress
	srv  int        // a server connection's server
	// set says the response must set the persistence cookie (client side).
	set    bool
	client bool
}

type epollLoop struct {
	ep, listener int
	router       *floorRouter
	origins      []unix.Sockaddr
	conns        map[int]*epollConn
	idle         [][]*epollConn
	out          []byte
}

func newEpollLoop(la unix.Sockaddr, r *floorRouter, origins []unix.Sockaddr) (*epollLoop, error) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	if err := unix.Bind(lfd, la); err != nil {
		return nil, err
	}
	if err := unix.Listen(lfd, 1024); err != nil {
		return nil, err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	l := &epollLoop{ep: ep, listener: lfd, router: r, origins: origins, conns: map[int]*epollConn{}, idle: make([][]*epollConn, len(origins))}
	return l, unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)})
}

// spins is how many times a loop looks for events without waiting
// before it blocks.
const spins = 3

func (l *epollLoop) run() error {
	events := make([]unix.EpollEvent, 256)
	for {
		n := 0
		for range spins {
			r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
			if n = int(r); e == 0 && n > 0 {
				break
			}
			n = 0
			runtime.Gosched()
		}
		if n == 0 {
			var err error
			if n, err = unix.EpollWait(l.ep, events, -1); err != nil && err != unix.EINTR {
				return err
			}
		}
		for _, ev := range events[:max(n, 0)] {
			fd := int(ev.Fd)
			if fd == l.listener {
				l.accept()
				continue
			}
			if c := l.conns[fd]; c != nil && c.client {
				l.readRequest(c)
			} else if c != nil {
				l.readResponse(c)
			}
		}
	}
}

func (l *epollLoop) watch(c *epollConn) error {
	l.conns[c.fd] = c
	return unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)})
}

// close closes c and the exchange it is part of; a server connection
// that was idle leaves its pool.
func (l *epollLoop) close(c *epollConn) {
	if !c.client && c.peer == nil {
		l.idle[c.srv] = slices.DeleteFunc(l.idle[c.srv], func(u *epollConn) bool { return u == c })
	}
	delete(l.conns, c.fd)
	unix.Close(c.fd)
	if p := c.peer; p != nil {
		c.peer, p.peer = nil, nil
		l.close(p)
	}
}

func (l *epollLoop) accept() {
	for {
		fd, _, err := unix.Accept4(l.listener, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if l.watch(&epollConn{fd: fd, client: true, buf: make([]byte, floorBufSize)}) != nil {
			unix.Close(fd)
		}
	}
}

// readRequest reads what a client sent and forwards a complete request
// head unless one is already in progress.
func (l *epollLoop) readRequest(c *epollConn) {
	for c.peer == nil {
		if end := indexHeadEnd(c.buf[:c.n]); end > 0 {
			l.forward(c, end)
			return
		}
		if c.n == len(c.buf) {
			l.close(c)
			return
		}
		m, err := unix.Read(c.fd, c.buf[c.n:])
		if err == unix.EAGAIN {
			return
		}
		if m <= 0 {
			l.close(c)
			return
		}
		c.n += m
	}
}

func indexHeadEnd(b []byte) int {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == '\r' && b[i+1] == '\n' && b[i+2] == '\r' && b[i+3] == '\n' {
			return i + 4
		}
	}
	return -1
}

// forward writes the request head of c ending at end to a server.
func (l *epollLoop) forward(c *epollConn, end int) {
	srv, set := l.router.route(c.buf[:end])
	u, err := l.upstream(srv)
	if err != nil {
		l.close(c)
		return
	}
	c.peer, u.peer, c.set = u, c, set
	// A request head of a few hundred bytes fits a loopback socket's
	// buffer; a partial write ends the exchange.
	if m, err := unix.Write(u.fd, c.buf[:end]); err != nil || m < end {
		l.close(c)
		return
	}
	c.n = copy(c.buf, c.buf[end:c.n])
}

// upstream returns an idle connection to srv or opens one, waiting for
// the connect (instant on loopback) with poll.
func (l *epollLoop) upstream(srv int) (*epollConn, error) {
	if n := len(l.idle[srv]); n > 0 {
		u := l.idle[srv][n-1]
		l.idle[srv] = l.idle[srv][:n-1]
		return u, nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.Connect(fd, l.origins[srv]); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, err
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	if n, err := unix.Poll(pfd, 1000); n != 1 || err != nil || pfd[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
		unix.Close(fd)
		return nil, &net.OpError{Op: "connect", Net: "tcp", Err: errors.New("floor: connect failed")}
	}
	u := &epollConn{fd: fd, srv: srv, buf: make([]byte, floorBufSize)}
	if err := l.watch(u); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return u, nil
}

// readResponse reads a server's response and, once whole, writes it to
// the client, pools the server connection and goes on with the client's
// next request if it already sent one.
func (l *epollLoop) readResponse(u *epollConn) {
	for {
		m, err := unix.Read(u.fd, u.buf[u.n:])
		if err == unix.EAGAIN {
			return
		}
		if m <= 0 {
			l.close(u)
			return
		}
		u.n += m
		size, err := responseLen(u.buf[:u.n])
		if err != nil || u.peer == nil {
			l.close(u)
			return
		}
		if size == 0 || u.n < size {
			continue
		}
		c := u.peer
		c.peer, u.peer = nil, nil
		l.out = withCookie(l.out[:0], u.buf[:size], u.srv, c.set)
		u.n = 0
		l.idle[u.srv] = append(l.idle[u.srv], u)
		if m, err := unix.Write(c.fd, l.out); err != nil || m < len(l.out) {
			l.close(c)
			return
		}
		l.readRequest(c)
		return
	}
}
