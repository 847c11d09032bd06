package frontdoor

import (
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// parker holds HTTP/1.1 connections, clear-text or TLS, that have been
// idle for idleHandoff without a goroutine: each waits as an entry in an epoll set
// of the parker's own, and a goroutine is started for it again when its
// client sends bytes or closes. One goroutine, blocked in epoll_wait on
// its own thread, serves every parked connection of a Server; it also
// ends those whose timeout http-keep-alive expires. A parked connection
// costs its socket and its h1conn, no stack and no buffer; after
// detachAfter, a clear-text one no longer costs its net.Conn either (see
// detach).
type parker struct {
	log  *slog.Logger
	epfd int

	mu     sync.Mutex
	parked map[int]*h1conn // by file descriptor
	closed bool
	done   chan struct{}
}

// pollTick bounds how late a parked connection's keep-alive timeout is
// noticed.
const pollTick = 50 * time.Millisecond

// newParker starts a parker; it returns nil when epoll is not available.
func newParker(log *slog.Logger) *parker {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		log.Warn("idle connections keep a goroutine each: no epoll", "error", err)
		return nil
	}
	p := &parker{log: log, epfd: epfd, parked: make(map[int]*h1conn), done: make(chan struct{})}
	go p.run()
	return p
}

// park hands c over until the client sends bytes or closes, or for
// c.idleLeft at most: it reports false when c cannot be parked (no file
// descriptor, or the parker stopped), and the caller keeps it.
func (p *parker) park(c *h1conn) bool {
	fd := c.sock.FD()
	if fd < 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if !p.watch(fd) {
		return false
	}
	c.parkedAt = parkClock()
	c.parked = true
	p.parked[fd] = c
	return true
}

// parkedFD is the descriptor the parker watches for c.
func (c *h1conn) parkedFD() int {
	if c.detached != nil {
		return c.detached.fd
	}
	return c.sock.FD()
}

// watch adds fd to the epoll set, for one event: bytes or the client's
// close.
func (p *parker) watch(fd int) bool {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) == nil
}

// take removes c from the parked set if it is there, and reports whether
// it was: the caller then owns it.
func (p *parker) take(c *h1conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takeLocked(c)
}

func (p *parker) takeLocked(c *h1conn) bool {
	if !c.parked {
		return false
	}
	c.parked = false
	fd := c.parkedFD()
	delete(p.parked, fd)
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	return true
}

// run waits for parked connections to become readable and resumes them,
// and ends those whose keep-alive expired, until stop.
func (p *parker) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	var due, detach []*h1conn
	lastSweep := parkClock()
	for {
		n, err := syscall.EpollWait(p.epfd, events, int(pollTick/time.Millisecond))
		if err != nil && err != syscall.EINTR {
			p.log.Error("idle connections: epoll_wait failed", "error", err)
			n = 0
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		for _, ev := range events[:max(n, 0)] {
			c := p.parked[int(ev.Fd)]
			if c == nil || !p.takeLocked(c) {
				continue
			}
			if c.detached != nil && c.reattach() != nil {
				due = append(due, c)
				continue
			}
			go c.resume()
		}
		if now := parkClock(); now-lastSweep >= pollTick {
			lastSweep = now
			for _, c := range p.parked {
				switch parked := now - c.parkedAt; {
				case parked > c.idleLeft:
					due = append(due, c)
				case c.detached == nil && parked > detachAfter && len(detach) < detachBatch:
					detach = append(detach, c)
				}
			}
			for _, c := range due {
				p.takeLocked(c)
			}
			for i, c := range detach {
				p.detach(c)
				detach[i] = nil
			}
			detach = detach[:0]
		}
		p.mu.Unlock()
		for i, c := range due {
			// timeout http-keep-alive: a silent close.
			c.close()
			due[i] = nil
		}
		due = due[:0]
	}
}

// stop ends the parker; the connections still parked are closed.
func (p *parker) stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var left []*h1conn
	for _, c := range p.parked {
		left = append(left, c)
	}
	for _, c := range left {
		p.takeLocked(c)
	}
	p.mu.Unlock()
	<-p.done
	syscall.Close(p.epfd)
	for _, c := range left {
		c.close()
	}
}
