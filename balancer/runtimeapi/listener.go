package runtimeapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"tether/balancer"
	"tether/balancer/connlimit"
)

// Defaults of HAProxy's stats socket settings.
const (
	DefaultStatsTimeout = 10 * time.Second
	DefaultStatsMaxConn = 10
	defaultSocketMode   = 0o600
)

// Listener serves the Runtime API on one stats socket. Close stops it and
// every connection it accepted.
type Listener struct {
	ln      net.Listener
	d       *Dispatcher
	sock    balancer.StatsSocket
	source  string
	timeout time.Duration
	slots   chan struct{}
	path    string      // UNIX socket path, "" for TCP
	file    fs.FileInfo // the socket file this listener created

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.Once
	err     error
}

// ParseAddress splits a stats socket address into a network ("unix" or
// "tcp") and an address: "ipv4@ADDR:PORT", "ipv6@[ADDR]:PORT", "unix@PATH"
// or a bare PATH.
func ParseAddress(addr string) (network, address string, err error) {
	switch {
	case strings.HasPrefix(addr, "ipv4@"):
		return "tcp4", strings.TrimPrefix(addr, "ipv4@"), nil
	case strings.HasPrefix(addr, "ipv6@"):
		return "tcp6", strings.TrimPrefix(addr, "ipv6@"), nil
	case strings.HasPrefix(addr, "unix@"):
		addr = strings.TrimPrefix(addr, "unix@")
	case strings.Contains(addr, "@"):
		return "", "", fmt.Errorf("parse stats socket address %q: unsupported address family", addr)
	}
	if addr == "" {
		return "", "", errors.New("parse stats socket address: empty path")
	}
	return "unix", addr, nil
}

// Listen starts serving d on sock with the global stats settings of g
// (stats timeout, stats maxconn). A UNIX socket is created with sock.Mode
// (0600 by default); an existing socket file is replaced only when nothing
// listens on it, and a file that is not a socket is never removed. The
// listener stops when ctx is done or Close is called.
func Listen(ctx context.Context, sock balancer.StatsSocket, d *Dispatcher, g balancer.Global) (*Listener, error) {
	return listen(ctx, sock, d, g, nil)
}

// listen is Listen with an optional wrapper around the socket's listener,
// through which tests inject accept errors.
func listen(ctx context.Context, sock balancer.StatsSocket, d *Dispatcher, g balancer.Global, wrap func(net.Listener) net.Listener) (*Listener, error) {
	network, address, err := ParseAddress(sock.Address)
	if err != nil {
		return nil, err
	}
	l := &Listener{
		d:       d,
		sock:    sock,
		source:  sock.Address,
		timeout: g.StatsTimeout,
		conns:   make(map[net.Conn]struct{}),
		done:    make(chan struct{}),
	}
	if l.timeout <= 0 {
		l.timeout = DefaultStatsTimeout
	}
	maxConn := g.StatsMaxConn
	if maxConn <= 0 {
		maxConn = DefaultStatsMaxConn
	}
	l.slots = make(chan struct{}, maxConn)
	if network == "unix" {
		l.ln, l.file, err = listenUnix(address, sock.Mode)
		l.path = address
	} else {
		var lc net.ListenConfig
		l.ln, err = lc.Listen(ctx, network, address)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on stats socket %s: %w", sock.Address, err)
	}
	if wrap != nil {
		l.ln = wrap(l.ln)
	}
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		select {
		case <-ctx.Done():
			l.shutdown()
		case <-l.done:
		}
	}()
	go func() {
		defer l.wg.Done()
		l.acceptLoop()
	}()
	return l, nil
}

// ListenAll starts a listener for every stats socket of g. On error the
// listeners already started are closed.
func ListenAll(ctx context.Context, g balancer.Global, d *Dispatcher) ([]*Listener, error) {
	var ls []*Listener
	for _, s := range g.StatsSockets {
		l, err := Listen(ctx, s, d, g)
		if err != nil {
			for _, o := range ls {
				_ = o.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// listenUnix creates a UNIX socket at path safely: it binds a temporary
// name next to it, sets the mode, then renames it over path, so the socket
// is never reachable with looser permissions. A stale socket at path is
// replaced only when connecting to it fails; any other file is an error.
func listenUnix(path string, mode uint32) (net.Listener, fs.FileInfo, error) {
	if mode == 0 {
		mode = defaultSocketMode
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, nil, fmt.Errorf("%s is in use by another process", path)
		}
	}
	tmp := path + "." + strconv.Itoa(os.Getpid()) + ".tmp"
	_ = removeSocket(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, fs.FileMode(mode)); err != nil {
		_ = ul.Close()
		_ = os.Remove(tmp)
		return nil, nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = ul.Close()
		_ = os.Remove(tmp)
		return nil, nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		_ = ul.Close()
		return nil, nil, err
	}
	return ul, fi, nil
}

// removeSocket removes path only if it is a socket.
func removeSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s is not a socket", path)
	}
	return os.Remove(path)
}

// Addr returns the address the listener accepts on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, closes every open connection, removes the socket
// file it created, and waits for its goroutines to end.
func (l *Listener) Close() error {
	l.shutdown()
	l.wg.Wait()
	return l.err
}

func (l *Listener) shutdown() {
	l.closeMu.Do(func() {
		l.mu.Lock()
		l.closed = true
		for c := range l.conns {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.err = l.ln.Close()
		if l.path != "" {
			if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
				if err := os.Remove(l.path); err != nil && l.err == nil {
					l.err = err
				}
			}
		}
		close(l.done)
	})
}

// acceptLoop accepts clients while a slot is free: like HAProxy's stats
// maxconn, extra clients wait in the kernel's backlog until one leaves.
// Only Close ends it: an accept error (descriptors exhausted, a client gone
// before it was accepted) is retried after a backoff of 5 ms doubling to
// 1 s, and logged once per burst, so that the admin socket outlives a
// flood that exhausts the process's descriptors.
func (l *Listener) acceptLoop() {
	var backoff connlimit.Backoff
	errs := connlimit.NewAcceptLog(l.d.log, "socket", l.source)
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return
		}
		conn, err := l.ln.Accept()
		if err != nil {
			<-l.slots
			select {
			case <-l.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				// Closed by shutdown, which may not have signalled done yet.
				return
			}
			errs.Failed(err)
			t := time.NewTimer(backoff.Next())
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		errs.Succeeded()
		backoff.Reset()
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = conn.Close()
			<-l.slots
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			var once sync.Once
			release := func() { once.Do(func() { <-l.slots }) }
			defer release()
			l.serve(conn, release)
		}()
	}
}

// serve runs one client session until it ends, times out, or the listener
// closes. release gives the connection slot back once the session is over.
func (l *Listener) serve(conn net.Conn, release func()) {
	defer func() {
		l.mu.Lock()
		delete(l.conns, conn)
		l.mu.Unlock()
		_ = conn.Close()
	}()
	sev := severityNone
	switch l.sock.SeverityOutput {
	case "number":
		sev = severityNumber
	case "string":
		sev = severityString
	}
	level := l.sock.Level
	if level == 0 {
		level = balancer.LevelOperator
	}
	s := l.d.newSession(level, sev, balancer.Origin{Channel: "socket", Source: l.source})
	s.timeout = l.timeout
	r := bufio.NewReaderSize(conn, maxCommandBytes+1)
	arm := func(s *session) {
		_ = conn.SetDeadline(time.Now().Add(s.timeout))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := l.d.serveStreamHook(ctx, s, r, conn, func() bool { return r.Buffered() > 0 }, arm)
	release()
	if !errors.Is(err, errStreamDone) {
		return // timeout, client gone, or listener closing
	}
	// Discard what the client still sends, so that closing does not reset
	// the connection before it has read the reply.
	if uc, ok := conn.(interface{ CloseWrite() error }); ok && uc.CloseWrite() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, conn)
	}
}
