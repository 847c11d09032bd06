package balancer

import (
	"errors"
	"syscall"
)

// idleClean reports whether an idle connection can carry a new request:
// the server neither sent anything nor closed it while it sat in the pool.
// It costs one non-blocking recv with MSG_PEEK.
func (c *upConn) idleClean() bool {
	if c.rc == nil {
		return true
	}
	if err := c.sk.RawRead(c.peekFn); err != nil {
		return false
	}
	switch {
	case c.peekErr == nil:
		// Data waiting (n > 0) or end of stream (n == 0).
		return false
	case errors.Is(c.peekErr, syscall.EAGAIN), errors.Is(c.peekErr, syscall.EINTR):
		return true
	}
	return false
}

// peek is the raw-connection callback of idleClean. It never waits.
func (c *upConn) peek(fd uintptr) bool {
	c.peekN, _, c.peekErr = syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true
}
