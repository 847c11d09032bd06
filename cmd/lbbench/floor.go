package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Floor proxies answer one question: of a proxy's CPU time per request on
// this machine, how much does any Go program pay (the runtime, the
// poller, the system calls) and how much is the proxy's own work? Each
// does the least an HTTP/1.1 proxy with cookie persistence must: read a
// request head, route it on a cookie (or round robin, then insert a
// Set-Cookie into the response), forward the head over a pooled server
// connection and the response, framed by its Content-Length, back.
// Nothing else: no request bodies, chunked responses, timeouts, logs,
// header rules or checks of hostile input, so they are fit only for
// lbbench's plain-HTTP workloads against its own origins.
//
// Two designs are measured: a goroutine per client connection on Go's
// poller (Tether's design), and an epoll loop per processor of its own
// (HAProxy's design, in Go).
const (
	floorGoroutines = "floor-goroutines"
	floorEpoll      = "floor-epoll"
)

// floorCookie names the persistence cookie the floors insert.
const floorCookie = "FLOOR"

// floorRouter picks a request's server.
type floorRouter struct {
	origins []string
	next    atomic.Uint32
	// work is CPU time spent on each request, standing for a proxy's own
	// logic (see -floor-work).
	work time.Duration
}

// route returns the server for a request head and whether the response
// must set the cookie: the server a valid cookie names, else the next in
// turn.
func (r *floorRouter) route(head []byte) (srv int, setCookie bool) {
	if r.work > 0 {
		for start := time.Now(); time.Since(start) < r.work; {
		}
	}
	if _, v, ok := bytes.Cut(head, []byte("\r\nCookie: "+floorCookie+"=")); ok {
		if n := bytes.IndexAny(v, ";\r"); n > 0 {
			if i, err := strconv.Atoi(string(v[:n])); err == nil && i >= 0 && i < len(r.origins) {
				return i, false
			}
		}
	}
	return int(r.next.Add(1)) % len(r.origins), true
}

var (
	errFloorResponse = errors.New("floor: response without Content-Length or too large")
	headEnd          = []byte("\r\n\r\n")
	contentLength    = []byte("\r\nContent-Length: ")
)

// responseLen returns the length of the response at the start of buf, or
// 0 while its head is incomplete.
func responseLen(buf []byte) (int, error) {
	end := bytes.Index(buf, headEnd)
	if end < 0 {
		if len(buf) == cap(buf) {
			return 0, errFloorResponse
		}
		return 0, nil
	}
	_, v, ok := bytes.Cut(buf[:end+2], contentLength)
	if !ok {
		return 0, errFloorResponse
	}
	n, err := strconv.Atoi(string(v[:bytes.IndexByte(v, '\r')]))
	if err != nil || end+4+n > cap(buf) {
		return 0, errFloorResponse
	}
	return end + 4 + n, nil
}

// withCookie appends resp to dst, with a Set-Cookie for srv after the
// status line when set.
func withCookie(dst, resp []byte, srv int, set bool) []byte {
	if !set {
		return append(dst, resp...)
	}
	line := bytes.Index(resp, []byte("\r\n")) + 2
	dst = append(dst, resp[:line]...)
	dst = append(dst, "Set-Cookie: "+floorCookie+"="...)
	dst = strconv.AppendInt(dst, int64(srv), 10)
	dst = append(dst, "; path=/\r\n"...)
	return append(dst, resp[line:]...)
}

// serveFloor runs the floor proxy of the spec "KIND[+WORK],LISTEN,ORIGIN,...",
// where WORK is the CPU time to spend on each request (a duration).
func serveFloor(ctx context.Context, spec string) error {
	f := strings.Split(spec, ",")
	if len(f) < 3 {
		return fmt.Errorf("floor spec %q: want KIND[+WORK],LISTEN,ORIGIN,...", spec)
	}
	r := &floorRouter{origins: f[2:]}
	kind, work, withWork := strings.Cut(f[0], "+")
	if withWork {
		var err error
		if r.work, err = time.ParseDuration(work); err != nil || r.work <= 0 {
			return fmt.Errorf("floor spec %q: work %q is not a positive duration", spec, work)
		}
	}
	switch kind {
	case floorGoroutines:
		return serveFloorGoroutines(ctx, f[1], r)
	case floorEpoll:
		return serveFloorEpoll(ctx, f[1], r)
	}
	return fmt.Errorf("unknown floor %q", kind)
}

const floorBufSize = 16 << 10

// serveFloorGoroutines serves each client connection on a goroutine,
// reading and writing through net.Conn.
func serveFloorGoroutines(ctx context.Context, listen string, r *floorRouter) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { l.Close() })
	pool := &floorPool{idle: make([][]*floorUpstream, len(r.origins))}
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		go serveFloorConn(c, r, pool)
	}
}

type floorUpstream struct {
	conn net.Conn
	buf  []byte
}

// floorPool keeps idle server connections, per server.
type floorPool struct {
	mu   sync.Mutex
	idle [][]*floorUpstream
}

func (p *floorPool) get(r *floorRouter, srv int) (*floorUpstream, error) {
	p.mu.Lock()
	if n := len(p.idle[srv]); n > 0 {
		u := p.idle[srv][n-1]
		p.idle[srv] = p.idle[srv][:n-1]
		p.mu.Unlock()
		return u, nil
	}
	p.mu.Unlock()
	c, err := net.Dial("tcp", r.origins[srv])
	if err != nil {
		return nil, err
	}
	return &floorUpstream{conn: c, buf: make([]byte, floorBufSize)}, nil
}

func (p *floorPool) put(srv int, u *floorUpstream) {
	p.mu.Lock()
	p.idle[srv] = append(p.idle[srv], u)
	p.mu.Unlock()
}

func serveFloorConn(c net.Conn, r *floorRouter, pool *floorPool) {
	defer c.Close()
	buf := make([]byte, floorBufSize)
	var out []byte
	n := 0
	for {
		end := bytes.Index(buf[:n], headEnd)
		if end < 0 {
			if n == len(buf) {
				return
			}
			m, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
			continue
		}
		srv, set := r.route(buf[:end+4])
		u, err := pool.get(r, srv)
		if err != nil {
			return
		}
		if _, err := u.conn.Write(buf[:end+4]); err != nil {
			u.conn.Close()
			return
		}
		n = copy(buf, buf[end+4:n])
		got, size := 0, 0
		for size == 0 || got < size {
			m, err := u.conn.Read(u.buf[got:])
			if err != nil {
				u.conn.Close()
				return
			}
			got += m
			if size, err = responseLen(u.buf[:got]); err != nil {
				u.conn.Close()
				return
			}
		}
		out = withCookie(out[:0], u.buf[:size], srv, set)
		pool.put(srv, u)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
