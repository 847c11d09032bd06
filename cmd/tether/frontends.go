package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"tether/balancer"
	"tether/balancer/connlimit"
	"tether/balancer/frontdoor"
	"tether/balancer/tlsbind"
	"tether/web"
)

// frontendBinds runs the HTTP servers of every frontend's bind addresses.
// A bind keeps its listening socket across reloads: its accept loop hands
// each connection to the server built from the frontend's current
// settings, so a reload drops no connection and a changed setting applies
// to new connections at once, while the previous server finishes its own.
// It is safe for concurrent use.
type frontendBinds struct {
	log *slog.Logger
	bal *balancer.Balancer
	// global caps the connections of every frontend together.
	global *connlimit.Limit
	// errc receives the error of an accept loop that cannot go on.
	errc chan error

	mu    sync.Mutex
	binds map[bindKey]*bind
	// limits caps each frontend's connections (nil without maxconn).
	limits map[string]*connlimit.Limit
	// draining are servers replaced or removed, finishing their requests.
	draining sync.WaitGroup
	// local replaces configured bind addresses on this node (-bind).
	local bindFlag
	// certs holds the certificates of the running TLS binds.
	certs atomic.Pointer[tlsbind.Store]
}

// certificates returns the certificates of the running TLS binds, for the
// Runtime API.
func (fb *frontendBinds) certificates() *tlsbind.Store { return fb.certs.Load() }

type bindKey struct{ frontend, addr string }

// bind is one listening address of one frontend.
type bind struct {
	key    bindKey
	ln     net.Listener
	fe     balancer.Frontend // the settings srv was built from
	target atomic.Pointer[handoff]
	srv    *frontdoor.Server
	loop   sync.WaitGroup
}

func newFrontendBinds(log *slog.Logger, bal *balancer.Balancer, global *connlimit.Limit) *frontendBinds {
	return &frontendBinds{log: log, bal: bal, global: global, errc: make(chan error, 1),
		binds: make(map[bindKey]*bind), limits: make(map[string]*connlimit.Limit)}
}

// listenPlan is what binding a configuration's frontends opened: the
// sockets a commit will start serving, or a failure will close.
type listenPlan struct {
	cfg balancer.Config
	// opened are the new sockets, by bind.
	opened map[bindKey]net.Listener
	// limits are the caps of frontends that had no bind yet.
	limits map[string]*connlimit.Limit
	// tls are the TLS configurations of the TLS binds, certificates read
	// afresh into certs, as HAProxy reads them on every start or reload.
	tls   map[bindKey]*tls.Config
	certs *tlsbind.Store
}

// listen opens the sockets of cfg's binds that are not open yet, with
// this node's -bind addresses in place of the configured ones. On error
// it closes what it opened: nothing changes.
func (fb *frontendBinds) listen(cfg balancer.Config) (*listenPlan, error) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	cfg = fb.local.apply(cfg)
	p := &listenPlan{cfg: cfg, opened: make(map[bindKey]net.Listener), limits: make(map[string]*connlimit.Limit),
		tls: make(map[bindKey]*tls.Config), certs: tlsbind.NewStore()}
	for _, fe := range cfg.Frontends {
		for _, bd := range fe.Binds {
			addr := bd.Addr
			k := bindKey{fe.Name, addr}
			if bd.TLS != nil {
				tb, err := p.certs.Build(*bd.TLS, cfg.Global.SSLDefaultBind)
				if err != nil {
					p.abort()
					return nil, fmt.Errorf("frontend %q: bind %s: %w", fe.Name, addr, err)
				}
				p.tls[k] = tb.Config()
			}
			if _, open := fb.binds[k]; open {
				continue
			}
			if _, dup := p.opened[k]; dup {
				continue
			}
			tcpLn, err := net.Listen("tcp", bindAddr(addr))
			if err != nil {
				p.abort()
				return nil, fmt.Errorf("frontend %q: listen on %s: %w", fe.Name, addr, err)
			}
			// Capped by the frontend's maxconn and the global one.
			limit, ok := fb.limits[fe.Name]
			if !ok {
				limit = connlimit.NewLimit(fe.MaxConn)
				p.limits[fe.Name] = limit
			}
			p.opened[k] = connlimit.NewListener(tcpLn, fb.log.With("frontend", fe.Name), limit, fb.global)
		}
	}
	// Certificates committed at run time take the place of the files
	// they were committed over.
	restored, err := p.certs.Restore(cfg.SSLCerts)
	if err != nil {
		fb.log.Warn("certificate committed at run time not restored", "error", err)
	}
	for _, path := range restored {
		fb.log.Info("serving the certificate committed at run time", "path", path)
	}
	return p, nil
}

// followCertificates serves the certificates committed at run time on
// any node (balancer.CommitSSLCert) as soon as the balancer applies them,
// until ctx ends. The Runtime API serves those committed on this node
// itself; this is for the ones another node of a fleet committed.
func (fb *frontendBinds) followCertificates(ctx context.Context) error {
	events, stop := fb.bal.Subscribe(64)
	defer stop()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-events:
			_, committed := ev.Change.(balancer.CommitSSLCert)
			lost := seq != 0 && ev.Seq != seq+1
			seq = ev.Seq
			if !committed && !lost {
				continue
			}
			st := fb.certs.Load()
			if st == nil {
				continue
			}
			for _, dc := range fb.bal.State().Config.SSLCerts {
				if err := st.Install(dc); err != nil {
					fb.log.Warn("certificate committed at run time not served", "error", err)
				}
			}
		}
	}
}

// abort closes the sockets a plan opened.
func (p *listenPlan) abort() {
	for _, ln := range p.opened {
		ln.Close()
	}
}

// apply makes the binds those of the plan's configuration: new ones serve,
// changed frontends get a server with their new settings, removed binds
// stop listening. Replaced and removed servers finish their requests in
// the background (see wait).
func (fb *frontendBinds) apply(p *listenPlan) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	for name, l := range p.limits {
		fb.limits[name] = l
	}
	fb.certs.Store(p.certs)
	want := make(map[bindKey]bool)
	for _, fe := range p.cfg.Frontends {
		for _, bd := range fe.Binds {
			k := bindKey{fe.Name, bd.Addr}
			want[k] = true
			b := fb.binds[k]
			if b == nil {
				ln := p.opened[k]
				if ln == nil {
					continue
				}
				b = &bind{key: k, ln: ln}
				fb.binds[k] = b
				fb.serve(b, fe, p.cfg.Global, p.tls[k])
				b.loop.Add(1)
				go fb.acceptLoop(b)
				fb.log.Info("frontend listening", "frontend", fe.Name, "addr", ln.Addr().String(), "maxconn", connlimit.FrontendMaxConn(fe.MaxConn, fb.global.Max()))
				continue
			}
			if !reflect.DeepEqual(b.fe.WithoutPositions(), fe.WithoutPositions()) || p.tls[k] != nil {
				fb.serve(b, fe, p.cfg.Global, p.tls[k])
			}
		}
	}
	for name := range fb.limits {
		if !slices.ContainsFunc(p.cfg.Frontends, func(fe balancer.Frontend) bool { return fe.Name == name }) {
			delete(fb.limits, name)
		}
	}
	for k, b := range fb.binds {
		if want[k] {
			continue
		}
		delete(fb.binds, k)
		b.ln.Close()
		b.loop.Wait()
		fb.retire(b.srv, b.target.Load())
		fb.log.Info("frontend bind removed", "frontend", k.frontend, "addr", k.addr)
	}
}

// serve starts a server with fe's settings on b, terminating TLS with tlsConf
// when not nil, and retires the previous one. fb.mu is held.
func (fb *frontendBinds) serve(b *bind, fe balancer.Frontend, g balancer.Global, tlsConf *tls.Config) {
	h, err := fb.bal.Handler(fe.Name)
	if err != nil {
		// The balancer was built from the same configuration.
		fb.log.Error("frontend has no handler", "frontend", fe.Name, "error", err)
		return
	}
	srv := newFrontendServer(fe, g, h, fb.log)
	srv.TLS = tlsConf
	if ev, err := fb.bal.FrontendEvents(fe.Name); err == nil {
		srv.Counters = ev
	}
	q := newHandoff(b.ln.Addr())
	oldSrv, oldQ := b.srv, b.target.Load()
	b.srv, b.fe = srv, fe
	b.target.Store(q)
	go srv.Serve(q)
	if oldSrv != nil {
		fb.retire(oldSrv, oldQ)
	}
}

// privateCookies are Tether's own cookies, which no origin may see.
var privateCookies = []string{web.SessionCookie}

// newFrontendServer returns the HTTP server of one frontend bind, with
// HAProxy's rules for clients (limits, timeouts, request checks), that
// strips Tether's own cookies from requests.
func newFrontendServer(fe balancer.Frontend, g balancer.Global, h http.Handler, log *slog.Logger) *frontdoor.Server {
	return frontdoor.New(fe, g, frontdoor.StripCookies(privateCookies, h), log.With("component", "frontend", "frontend", fe.Name))
}

// retire lets a server finish the requests it has and closes its idle
// connections; fb.mu is held or the server is already unreachable.
func (fb *frontendBinds) retire(srv *frontdoor.Server, q *handoff) {
	if q != nil {
		q.Close()
	}
	if srv == nil {
		return
	}
	fb.draining.Add(1)
	go func() {
		defer fb.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}()
}

// drainTimeout bounds how long a replaced or stopping server may take to
// finish its requests.
const drainTimeout = 10 * time.Second

// acceptLoop accepts connections on b's socket and hands each to the
// current server, until the socket is closed. The socket is a
// connlimit.Listener, which waits out maxconn and retries temporary accept
// errors itself: any error it returns ends the loop.
func (fb *frontendBinds) acceptLoop(b *bind) {
	defer b.loop.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				select {
				case fb.errc <- fmt.Errorf("frontend %q: accept on %s: %w", b.key.frontend, b.key.addr, err):
				default:
				}
			}
			return
		}
		for {
			q := b.target.Load()
			if q.offer(c) {
				break
			}
			if b.target.Load() == q {
				// Retired and not replaced: the bind is closing.
				c.Close()
				break
			}
		}
	}
}

// close stops every bind and waits up to ctx for their requests to finish.
func (fb *frontendBinds) close(ctx context.Context) {
	fb.mu.Lock()
	binds := fb.binds
	fb.binds = make(map[bindKey]*bind)
	fb.mu.Unlock()
	for _, b := range binds {
		b.ln.Close()
		b.loop.Wait()
		if q := b.target.Load(); q != nil {
			q.Close()
		}
	}
	for _, b := range binds {
		if b.srv != nil {
			if err := b.srv.Shutdown(ctx); err != nil {
				b.srv.Close()
			}
		}
	}
	done := make(chan struct{})
	go func() { fb.draining.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// handoff is a net.Listener whose connections another accept loop hands
// over, so several servers can take turns on one socket.
type handoff struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{conns: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

// Accept waits for the next connection handed over.
func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close stops handing connections; it does not close the socket.
func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

// Addr returns the socket's address.
func (h *handoff) Addr() net.Addr { return h.addr }

// offer hands c to the server; it returns false once h is closed.
func (h *handoff) offer(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}
