// Package discovery resolves the host names of servers and server
// templates at run time, the way HAProxy's resolvers sections do, and
// applies the addresses it finds to a balancer.
//
// It covers HAProxy's resolvers section (nameservers over UDP and TCP,
// accepted_payload_size, resolve_retries, timeout resolve and retry, hold
// periods, parse-resolv-conf), the server options resolvers,
// resolve-prefer and resolve-opts allow-dup-ip, server-template slot
// assignment with HAProxy's scoring, SRV records, init-addr (InitAddrs)
// and the Runtime API's show resolvers (WriteShowResolvers).
//
// Resolution runs in its own goroutine, off the request path; a dead or
// lying nameserver only ever delays or withholds address changes.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"tether/balancer"
)

// Applier is the part of a balancer the resolver drives.
// *balancer.Balancer satisfies it.
type Applier interface {
	// ApplyBatch applies changes as one: all of them or, on error, none.
	ApplyBatch(balancer.Origin, ...balancer.Change) error
	Snapshot() *balancer.Snapshot
}

// Option changes how New builds a Resolver.
type Option func(*options)

type options struct {
	resolvConf string
	now        func() time.Time
}

// WithResolvConf reads nameservers for parse-resolv-conf and for the
// implicit "default" section from path instead of /etc/resolv.conf.
func WithResolvConf(path string) Option {
	return func(o *options) { o.resolvConf = path }
}

// ErrNoSuchResolvers is returned by WriteShowResolvers for an unknown
// section; HAProxy replies "Can't find that resolvers section".
var ErrNoSuchResolvers = errors.New("can't find that resolvers section")

// Resolver resolves the names of the servers of a configuration and
// applies the results to a balancer. WriteShowResolvers is safe for
// concurrent use; Run must be called once.
type Resolver struct {
	applier  Applier
	log      *slog.Logger
	now      func() time.Time
	sections []*section
	servers  []*serverState

	packets chan packet
	wg      sync.WaitGroup
	// view is the balancer's state of the managed servers during one
	// event; nil between events.
	view    map[balancer.ServerRef]*balancer.ServerStatus
	started atomic.Bool
}

// nameserver is one DNS server of a section.
type nameserver struct {
	sec  *section
	name string
	addr string
	tcp  bool
	conn net.Conn // UDP, owned by Run
	c    counters
}

// packet is one response read from a nameserver.
type packet struct {
	ns  *nameserver
	buf []byte
}

// New builds a resolver for cfg, the configuration as written (server
// addresses still host names, templates not expanded), driving b. Servers
// whose resolvers section does not exist are logged and left alone. A nil
// log discards messages.
func New(cfg balancer.Config, b Applier, log *slog.Logger, opts ...Option) *Resolver {
	o := options{resolvConf: "/etc/resolv.conf", now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{
		applier: b,
		log:     log.With("component", "discovery"),
		now:     o.now,
		packets: make(chan packet, 256),
	}
	start := r.now()
	byName := map[string]*section{}
	for _, rc := range cfg.Resolvers {
		sec := newSection(rc, o.resolvConf, r.log)
		r.sections = append(r.sections, sec)
		byName[sec.name] = sec
	}
	if byName["default"] == nil {
		// HAProxy creates a "default" section from resolv.conf when the
		// configuration has none.
		if ns := readResolvConf(o.resolvConf); len(ns) > 0 {
			sec := newSection(balancer.Resolvers{Name: "default", Nameservers: ns}, "", r.log)
			r.sections = append(r.sections, sec)
			byName["default"] = sec
		}
	}

	srvrqs := map[string]*srvRequest{}
	for _, be := range cfg.Backends {
		for _, s := range be.Servers {
			if s.Resolvers == "" || s.Address == "" || isIP(s.Address) {
				continue
			}
			sec := byName[s.Resolvers]
			if sec == nil {
				r.log.Error("unable to find required resolvers", "backend", be.Name, "server", s.Name, "resolvers", s.Resolvers)
				continue
			}
			st := r.newServer(sec, be.Name, s)
			st.host = hostName(s.Address)
			r.link(st, start)
		}
		for _, t := range be.Templates {
			if t.Params.Resolvers == "" || t.FQDN == "" || isIP(t.FQDN) {
				continue
			}
			sec := byName[t.Params.Resolvers]
			if sec == nil {
				r.log.Error("unable to find required resolvers", "backend", be.Name, "server-template", t.Prefix, "resolvers", t.Params.Resolvers)
				continue
			}
			fqdn := hostName(t.FQDN)
			for _, name := range t.Names() {
				p := t.Params
				p.Name = name
				st := r.newServer(sec, be.Name, p)
				if !strings.HasPrefix(fqdn, "_") {
					st.host = fqdn
					r.link(st, start)
					continue
				}
				key := be.Name + "\x00" + fqdn
				rq := srvrqs[key]
				if rq == nil {
					rq = &srvRequest{backend: be.Name, name: fqdn}
					rq.res = sec.resolutionFor(fqdn, dns.TypeSRV, start)
					rq.res.srvrqs = append(rq.res.srvrqs, rq)
					srvrqs[key] = rq
				}
				st.srvrq = rq
				st.noResolution = true
				rq.free = append(rq.free, st)
			}
		}
	}
	return r
}

func (r *Resolver) newServer(sec *section, backend string, s balancer.Server) *serverState {
	st := &serverState{
		ref:      balancer.ServerRef{Backend: backend, Server: s.Name},
		sec:      sec,
		prefer:   dns.TypeAAAA,
		allowDup: s.AllowDupIP,
		weight:   -1,
	}
	if s.ResolvePrefer == "ipv4" {
		st.prefer = dns.TypeA
	}
	r.servers = append(r.servers, st)
	return st
}

func newSection(rc balancer.Resolvers, resolvConf string, log *slog.Logger) *section {
	sec := &section{
		name:           rc.Name,
		payload:        512,
		retries:        3,
		timeoutResolve: time.Second,
		timeoutRetry:   time.Second,
		hold: holds{
			nx: 30 * time.Second, refused: 30 * time.Second, timeout: 30 * time.Second,
			other: 30 * time.Second, valid: 10 * time.Second,
		},
		queryIDs: map[uint16]*resolution{},
		idSeed:   uint64(time.Now().UnixNano()) | 1,
	}
	if rc.AcceptedPayloadSize > 0 {
		sec.payload = min(max(rc.AcceptedPayloadSize, dnsHeaderSize), dnsMaxMessage)
	}
	if rc.ResolveRetries > 0 {
		sec.retries = rc.ResolveRetries
	}
	if rc.TimeoutResolve > 0 {
		sec.timeoutResolve = rc.TimeoutResolve
	}
	if rc.TimeoutRetry > 0 {
		sec.timeoutRetry = rc.TimeoutRetry
	}
	for k, v := range rc.Hold {
		switch k {
		case "nx":
			sec.hold.nx = v
		case "refused":
			sec.hold.refused = v
		case "timeout":
			sec.hold.timeout = v
		case "other":
			sec.hold.other = v
		case "valid":
			sec.hold.valid = v
		case "obsolete":
			sec.hold.obsolete = v
		}
	}
	seen := map[string]bool{}
	add := func(n balancer.Nameserver) {
		if seen[n.Name] {
			log.Warn("duplicate nameserver name, excluded", "resolvers", rc.Name, "nameserver", n.Name)
			return
		}
		seen[n.Name] = true
		sec.nameservers = append(sec.nameservers, &nameserver{sec: sec, name: n.Name, addr: n.Address, tcp: n.TCP})
	}
	for _, n := range rc.Nameservers {
		add(n)
	}
	if rc.ParseResolvConf {
		for _, n := range readResolvConf(resolvConf) {
			add(n)
		}
	}
	return sec
}

// resolutionFor returns the section's resolution of host for qtype,
// creating it when needed.
func (sec *section) resolutionFor(host string, qtype uint16, now time.Time) *resolution {
	for _, res := range sec.resolutions {
		if res.host == host && res.prefType == qtype {
			return res
		}
	}
	res := &resolution{sec: sec, host: host, prefType: qtype, qtype: qtype, lastValid: now}
	sec.resolutions = append(sec.resolutions, res)
	return res
}

// link attaches s to the A/AAAA resolution of its host name.
func (r *Resolver) link(s *serverState, now time.Time) {
	s.res = s.sec.resolutionFor(s.host, s.prefer, now)
	s.res.servers = append(s.res.servers, s)
}

// unlink detaches s from its A/AAAA resolution, dropping the resolution
// when nobody needs it any more.
func (r *Resolver) unlink(s *serverState) {
	res := s.res
	if res == nil {
		return
	}
	s.detachIP()
	res.servers = detach(res.servers, s)
	s.res = nil
	if len(res.servers) == 0 && len(res.srvrqs) == 0 {
		if res.running {
			delete(res.sec.queryIDs, res.id)
		}
		for i, x := range res.sec.resolutions {
			if x == res {
				res.sec.resolutions = append(res.sec.resolutions[:i], res.sec.resolutions[i+1:]...)
				break
			}
		}
	}
}

// Run resolves names until ctx is done, then closes its sockets and
// returns nil. It returns an error only when called twice.
func (r *Resolver) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("discovery: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		for _, sec := range r.sections {
			for _, ns := range sec.nameservers {
				if ns.conn != nil {
					ns.conn.Close()
				}
			}
		}
		r.wg.Wait()
	}()
	for _, sec := range r.sections {
		if len(sec.resolutions) == 0 {
			continue
		}
		for _, ns := range sec.nameservers {
			if ns.tcp {
				continue
			}
			conn, err := net.Dial("udp", ns.addr)
			if err != nil {
				r.log.Warn("can't connect socket for nameserver", "resolvers", sec.name, "nameserver", ns.name, "err", err)
				continue
			}
			ns.conn = conn
			r.wg.Add(1)
			go r.readUDP(ctx, ns)
		}
	}

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			r.process(ctx, r.now())
		case p := <-r.packets:
			r.handlePacket(ctx, p.ns, p.buf, r.now())
		}
		r.commit()
		timer.Reset(max(r.nextWake(r.now()), time.Millisecond))
	}
}

// readUDP delivers the datagrams of a nameserver to the loop.
func (r *Resolver) readUDP(ctx context.Context, ns *nameserver) {
	defer r.wg.Done()
	buf := make([]byte, dnsMaxMessage+1)
	for {
		n, err := ns.conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A connected UDP socket reports an ICMP unreachable from an
			// earlier query here: that query could not be delivered.
			ns.c.sndError.Add(1)
			continue
		}
		p := packet{ns: ns, buf: append([]byte(nil), buf[:n]...)}
		select {
		case r.packets <- p:
		case <-ctx.Done():
			return
		}
	}
}

// queryTCP sends one query to a stream nameserver and delivers its answer.
func (r *Resolver) queryTCP(ctx context.Context, ns *nameserver, q []byte, timeout time.Duration) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ns.addr)
	if err != nil {
		ns.c.sndError.Add(1)
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	co := &dns.Conn{Conn: conn}
	if _, err := co.Write(q); err != nil {
		ns.c.sndError.Add(1)
		return
	}
	buf, err := readTCPMessage(conn)
	if err != nil {
		return
	}
	select {
	case r.packets <- packet{ns: ns, buf: buf}:
	case <-ctx.Done():
	}
}

// readTCPMessage reads one length-prefixed DNS message.
func readTCPMessage(c net.Conn) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, int(l[0])<<8|int(l[1]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// nextWake returns how long the loop may sleep.
func (r *Resolver) nextWake(now time.Time) time.Duration {
	next := time.Hour
	for _, sec := range r.sections {
		for _, res := range sec.resolutions {
			var at time.Time
			if res.running {
				at = res.lastQuery.Add(sec.timeoutRetry)
			} else if res.lastResolution.IsZero() {
				return 0
			} else {
				at = res.lastResolution.Add(sec.timeoutResolve)
			}
			next = min(next, at.Sub(now))
		}
	}
	return next
}

// process retries or fails the resolutions whose answers are late and
// starts the ones that are due (HAProxy's process_resolvers).
func (r *Resolver) process(ctx context.Context, now time.Time) {
	for _, sec := range r.sections {
		for _, res := range append([]*resolution(nil), sec.resolutions...) {
			if !res.running || now.Before(res.lastQuery.Add(sec.timeoutRetry)) {
				continue
			}
			if res.try <= 0 {
				if res.nbResponses == 0 {
					res.status = statusTimeout
				}
				r.reportError(res, now)
				continue
			}
			switch {
			case res.nbResponses == 0 || res.qtype != res.prefType:
				res.qtype = res.prefType
				res.try--
			case res.prefType == dns.TypeA:
				res.qtype = dns.TypeAAAA
			case res.prefType == dns.TypeAAAA:
				res.qtype = dns.TypeA
			default:
				res.try--
			}
			r.send(ctx, res, now)
		}
		for _, res := range append([]*resolution(nil), sec.resolutions...) {
			if res.running {
				continue
			}
			if !res.lastResolution.IsZero() && now.Before(res.lastResolution.Add(sec.timeoutResolve)) {
				continue
			}
			r.start(ctx, res, now)
		}
	}
}

// start begins a new resolution with a fresh query ID.
func (r *Resolver) start(ctx context.Context, res *resolution, now time.Time) {
	sec := res.sec
	id, ok := uint16(0), false
	for range 100 {
		sec.idSeed ^= sec.idSeed << 13
		sec.idSeed ^= sec.idSeed >> 7
		sec.idSeed ^= sec.idSeed << 17
		id = uint16(sec.idSeed)
		if sec.queryIDs[id] == nil {
			ok = true
			break
		}
	}
	if !ok {
		r.log.Warn("could not generate a query id", "resolvers", sec.name, "name", res.host)
		res.lastResolution = now
		return
	}
	res.id = id
	sec.queryIDs[id] = res
	res.running = true
	res.qtype = res.prefType
	res.try = sec.retries - 1
	r.send(ctx, res, now)
}

// send queries every nameserver of the section.
func (r *Resolver) send(ctx context.Context, res *resolution, now time.Time) {
	sec := res.sec
	res.nbQueries, res.nbResponses = 0, 0
	res.lastQuery = now
	q, err := buildQuery(res.id, res.host, res.qtype, sec.payload)
	if err != nil {
		r.log.Warn("can not build the query message", "resolvers", sec.name, "name", res.host, "err", err)
		return
	}
	for _, ns := range sec.nameservers {
		if ns.tcp {
			ns.c.sent.Add(1)
			res.nbQueries++
			r.wg.Add(1)
			go r.queryTCP(ctx, ns, q, sec.timeoutRetry)
			continue
		}
		if ns.conn == nil {
			ns.c.sndError.Add(1)
			continue
		}
		if _, err := ns.conn.Write(q); err != nil {
			ns.c.sndError.Add(1)
			continue
		}
		ns.c.sent.Add(1)
		res.nbQueries++
	}
}

// handlePacket processes one response (HAProxy's resolv_process_responses).
func (r *Resolver) handlePacket(ctx context.Context, ns *nameserver, buf []byte, now time.Time) {
	sec := ns.sec
	if len(buf) > sec.payload {
		ns.c.tooBig.Add(1)
		return
	}
	if len(buf) < 2 {
		ns.c.invalid.Add(1)
		return
	}
	res := sec.queryIDs[uint16(buf[0])<<8|uint16(buf[1])]
	if res == nil {
		ns.c.outdated.Add(1)
		return
	}
	res.nbResponses++
	msg, cause := parseResponse(buf, (sec.payload-dnsHeaderSize)/dnsMinRecordSize)
	if cause == respValid {
		r.merge(res, msg, now)
	}
	switch cause {
	case respInvalid, respQueryCount:
		res.status = statusInvalid
		ns.c.invalid.Add(1)
	case respNX:
		res.status = statusNX
		ns.c.nx.Add(1)
	case respRefused:
		res.status = statusRefused
		ns.c.refused.Add(1)
	case respAncountZero:
		res.status = statusOther
		ns.c.anyErr.Add(1)
	case respCNAMEError:
		res.status = statusOther
		ns.c.cnameError.Add(1)
	case respTruncated:
		res.status = statusOther
		ns.c.truncated.Add(1)
	case respError:
		res.status = statusOther
		ns.c.other.Add(1)
	}
	if cause != respValid {
		if res.nbResponses < res.nbQueries {
			return // wait for every nameserver before acting on errors
		}
		if res.prefType != res.qtype {
			if res.try <= 0 {
				r.reportError(res, now)
			}
			return
		}
		switch res.prefType {
		case dns.TypeA:
			res.qtype = dns.TypeAAAA
			r.send(ctx, res, now)
		case dns.TypeAAAA:
			res.qtype = dns.TypeA
			r.send(ctx, res, now)
		}
		return
	}
	if msg.qname != res.host {
		ns.c.other.Add(1)
		r.reportError(res, now)
		return
	}
	res.status = statusValid
	res.lastValid = now
	ns.c.valid.Add(1)
	r.reportSuccess(res, ns, now)
}

// reset ends the current attempt of a resolution.
func (res *resolution) reset(now time.Time) {
	if res.running {
		delete(res.sec.queryIDs, res.id)
	}
	res.running = false
	res.try = 0
	res.lastResolution = now
	res.nbQueries, res.nbResponses = 0, 0
	res.qtype = res.prefType
	res.id = 0
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "(none)"
	}
	return a.String()
}

func (s *serverState) String() string { return fmt.Sprintf("%s/%s", s.ref.Backend, s.ref.Server) }
