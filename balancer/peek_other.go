//go:build !linux

package balancer

import (
	"errors"
	"net"
	"time"
)

// idleClean reports whether an idle connection can carry a new request:
// the server neither sent anything nor closed it while it sat in the pool.
// Without a non-blocking peek it reads with a deadline already passed; a
// byte read that way is lost, but the connection is then closed anyway.
func (c *upConn) idleClean() bool {
	c.nc.SetReadDeadline(time.Now())
	_, err := c.nc.Read(c.peekBuf[:])
	c.nc.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// peek is unused where idleClean does not peek at the socket.
func (c *upConn) peek(uintptr) bool { return true }
