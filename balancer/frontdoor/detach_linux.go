package frontdoor

import (
	"net"
	"os"
	"syscall"
	"time"

	"tether/balancer/sockio"
)

// detachAfter is how long a clear-text connection stays parked before
// its socket is given up by Go's runtime (see detach). A client that
// comes back sooner resumes on the socket it had; one that sits idle
// longer costs less memory while it waits and a few system calls when
// it returns.
const detachAfter = time.Second

// detachBatch is the most connections a sweep of the parker detaches,
// which bounds how long it holds its lock (a detach is a few system
// calls): 5,000 connections parked at once are detached within a second.
const detachBatch = 256

// detachedSocket is what a detached connection keeps of its socket.
type detachedSocket struct {
	// fd is a duplicate of the socket, which the parker watches.
	fd int
	// slot is the connection as accepted, which holds the frontend's
	// connection slots, its own socket taken out of it (see swapper).
	slot swapper
}

// swapper is a connection as accepted by a connlimit.Listener: its
// socket can be taken out and put back while it keeps its slots.
type swapper interface {
	net.Conn
	Swap(net.Conn) net.Conn
}

// detach gives up what Go's runtime and the Sock hold for the socket of
// a parked clear-text connection (the poller's descriptor and timers,
// the net.Conn and its addresses, the Sock): the socket lives on as a
// duplicate descriptor in the parker's epoll set, and reattach makes it
// a net.Conn again when the client sends something. Connections not
// accepted through a connlimit.Listener are left alone. p.mu is held.
func (p *parker) detach(c *h1conn) {
	if c.tls != nil || c.detached != nil {
		return
	}
	slot, ok := c.sock.Conn().(swapper)
	if !ok {
		return
	}
	inner := slot.Swap(nil)
	tc, ok := inner.(*net.TCPConn)
	if !ok {
		slot.Swap(inner)
		return
	}
	// The parker watches a descriptor, not the socket: the watch moves
	// to a duplicate before the runtime closes the original. Bytes that
	// arrived meanwhile make the new watch fire at once.
	fd := c.sock.FD()
	dup, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 || !p.watch(int(dup)) {
		if errno == 0 {
			syscall.Close(int(dup))
		}
		slot.Swap(tc)
		return
	}
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	delete(p.parked, fd)
	p.parked[int(dup)] = c
	c.detached = &detachedSocket{fd: int(dup), slot: slot}
	c.sock, c.src = nil, nil
	tc.Close()
}

// reattach makes a detached connection's socket a net.Conn and a Sock
// again. The parker has just taken c (p.mu is held).
func (c *h1conn) reattach() error {
	d := c.detached
	c.detached = nil
	f := os.NewFile(uintptr(d.fd), "")
	nc, err := net.FileConn(f) // a duplicate of f's descriptor
	f.Close()
	if err != nil {
		d.slot.Close()
		return err
	}
	d.slot.Swap(nc)
	c.sock = sockio.New(d.slot)
	c.src = c.sock
	return nil
}

// closeDetached closes a detached connection's socket and gives its
// slots back.
func (c *h1conn) closeDetached() {
	d := c.detached
	c.detached = nil
	syscall.Close(d.fd)
	d.slot.Close()
}
