package balancer

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Apply applies one change; see ApplyBatch.
func (b *Balancer) Apply(c Change, o Origin) error { return b.ApplyBatch(o, c) }

// ApplyBatch validates changes, hands them to the committer as one commit,
// and makes them visible to traffic together, in that order: a batch in
// which one change fails validation, or that cannot be committed, changes
// nothing. Subscribers are then notified, one event per change.
func (b *Balancer) ApplyBatch(o Origin, changes ...Change) error {
	if len(changes) == 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	cur := b.tab.Load()
	next := cur
	var before []*backendRT // touched backends as they were, for collision warnings
	stamped := false
	for i, c := range changes {
		if sc, ok := next.stampGrace(c, now); ok {
			// What is committed says when its grace ends, so that
			// replaying it later ends it at the same time.
			if !stamped {
				changes, stamped = slices.Clone(changes), true
			}
			changes[i], c = sc, sc
		}
		n, prevBE, err := next.apply(c, now)
		if err != nil {
			return err
		}
		if prevBE != nil && !slices.ContainsFunc(before, func(be *backendRT) bool { return be.cfg.Name == prevBE.cfg.Name }) {
			before = append(before, prevBE)
		}
		next = n
	}
	if cp := b.committer.Load(); cp != nil {
		commit := Commit{Changes: changes, Origin: o, Time: now, Before: cur.touched(changes), After: next.touched(changes), State: next.state}
		if err := (*cp)(commit); err != nil {
			return fmt.Errorf("persist change to backend %q: %w", changes[0].BackendName(), err)
		}
	}
	next.version = cur.version + 1
	b.tab.Store(next)
	for _, prev := range before {
		if nb := next.lookupBackend(prev.cfg.Name); nb != nil {
			nb.publishRR()
		}
	}
	b.afterApply(changes, cur, next)

	evs := make([]Event, 0, len(changes))
	for _, c := range changes {
		evs = append(evs, Event{Kind: EventChange, Origin: o, Change: redactChange(c), Backend: c.BackendName(), Server: serverOf(c), Message: describeChange(c)})
	}
	if slices.ContainsFunc(changes, changesCookies) {
		for _, prev := range before {
			if nb := next.lookupBackend(prev.cfg.Name); nb != nil {
				evs = append(evs, b.warnCollisions(nb, prev)...)
			}
		}
	}
	b.stamp(evs, now, next.version)
	b.publish(evs)
	return nil
}

// changesCookies reports whether c can change the cookie of a server, so
// that two servers may come to share one.
func changesCookies(c Change) bool {
	switch c.(type) {
	case SetAddr, AddServer, SetDynamicCookies, SetDynamicCookieKey, SetCookie:
		return true
	}
	return false
}

// touched returns the part of t's durable state that changes touch: the
// settings of the backends they name and the servers they name.
func (t *table) touched(changes []Change) State {
	st := State{Servers: make(map[string]ServerRuntime, len(changes))}
	for _, c := range changes {
		if cc, ok := c.(CommitSSLCert); ok {
			if cert, found := t.cfg.SSLCert(cc.Cert.Path); found {
				st.Config.SSLCerts = withSSLCert(st.Config.SSLCerts, cert)
			}
			continue
		}
		be := t.lookupBackend(c.BackendName())
		if be == nil {
			continue
		}
		i := slices.IndexFunc(st.Config.Backends, func(b Backend) bool { return b.Name == be.cfg.Name })
		if i < 0 {
			bc := be.cfg
			bc.Cookie = be.cfg.Cookie.Clone()
			bc.Servers = nil
			st.Config.Backends = append(st.Config.Backends, bc)
			i = len(st.Config.Backends) - 1
		}
		s := be.lookupServer(serverOf(c))
		if s == nil {
			continue
		}
		k := key(be.cfg.Name, s.cfg.Name)
		if _, dup := st.Servers[k]; dup {
			continue
		}
		st.Servers[k] = s.runtime()
		if !slices.ContainsFunc(be.cfg.Templates, func(tp ServerTemplate) bool { return tp.Has(s.cfg.Name) }) {
			st.Config.Backends[i].Servers = append(st.Config.Backends[i].Servers, s.cfg)
		}
	}
	return st
}

// stamp numbers events; mu must be held.
func (b *Balancer) stamp(evs []Event, now time.Time, version uint64) {
	for i := range evs {
		b.seq++
		evs[i].Seq = b.seq
		evs[i].Time = now
		evs[i].Version = version
	}
}

// afterApply performs the side effects of applied changes that act on
// connections rather than on the table.
func (b *Balancer) afterApply(changes []Change, cur, next *table) {
	for _, c := range changes {
		b.afterChange(c, cur, next)
	}
	b.checks.reconcile(next)
}

func (b *Balancer) afterChange(c Change, cur, next *table) {
	switch c := c.(type) {
	case ShutdownSessions:
		if s := findServer(cur, c.ServerRef); s != nil {
			if p := s.live.pool.Swap(nil); p != nil {
				p.shutdown()
			}
		}
	case SetAddr:
		// poolFor replaces the pool on the next request; drop idle
		// connections to the old address now.
		if s := findServer(cur, c.ServerRef); s != nil {
			if p := s.live.pool.Load(); p != nil {
				p.closeIdle()
			}
		}
	case DelServer:
		if s := findServer(cur, c.ServerRef); s != nil {
			if p := s.live.pool.Swap(nil); p != nil {
				p.shutdown()
			}
		}
	case ClearCounters:
		for _, be := range next.backends {
			if c.Backend != "" && be.cfg.Name != c.Backend {
				continue
			}
			be.live.clear(c.All)
			for _, s := range be.servers.All() {
				s.live.clear(c.All)
			}
		}
		if c.Backend == "" {
			for _, fe := range next.frontends {
				fe.live.clear(c.All)
			}
		}
	}
}

func findServer(t *table, ref ServerRef) *serverRT {
	be := t.lookupBackend(ref.Backend)
	if be == nil {
		return nil
	}
	return be.lookupServer(ref.Server)
}

func serverOf(c Change) string {
	switch c := c.(type) {
	case AddServer:
		return c.Server.Name
	case interface{ Ref() ServerRef }:
		return c.Ref().Server
	}
	return ""
}

// Ref returns r; every change that names a server has it.
func (r ServerRef) Ref() ServerRef { return r }

// redactChange blanks secrets in a change before it is published.
func redactChange(c Change) Change {
	switch k := c.(type) {
	case SetDynamicCookieKey:
		k.Key = ""
		return k
	case CommitSSLCert:
		k.Cert.PEM = ""
		return k
	}
	return c
}

// describeChange returns a one-line description of a change, without secrets.
func describeChange(c Change) string {
	switch c := c.(type) {
	case SetAdminState:
		return fmt.Sprintf("server %s state set to %s", c.ServerRef, c.State)
	case SetMaintWhenIdle:
		if c.Intent.Asked {
			return fmt.Sprintf("server %s goes to maintenance once idle", c.ServerRef)
		}
		return fmt.Sprintf("server %s no longer goes to maintenance once idle", c.ServerRef)
	case SetWeight:
		return fmt.Sprintf("server %s weight set to %d", c.ServerRef, c.Weight)
	case SetAddr:
		if c.Address == "" {
			return fmt.Sprintf("server %s lost its address", c.ServerRef)
		}
		return fmt.Sprintf("server %s address set to %s port %d", c.ServerRef, c.Address, c.Port)
	case SetHealth:
		return fmt.Sprintf("server %s health forced to %s", c.ServerRef, [...]string{"up", "stopping", "down"}[c.Health])
	case SetCheckEnabled:
		if c.Enabled {
			return fmt.Sprintf("server %s health checks enabled", c.ServerRef)
		}
		return fmt.Sprintf("server %s health checks disabled", c.ServerRef)
	case SetCheckPort:
		return fmt.Sprintf("server %s check port set to %d", c.ServerRef, c.Port)
	case SetMaxConn:
		return fmt.Sprintf("server %s maxconn set to %d", c.ServerRef, c.MaxConn)
	case AddServer:
		return fmt.Sprintf("server %s/%s added", c.Backend, c.Server.Name)
	case DelServer:
		return fmt.Sprintf("server %s deleted", c.ServerRef)
	case SetDynamicCookies:
		if c.Enabled {
			return fmt.Sprintf("dynamic cookies enabled on backend %s", c.Backend)
		}
		return fmt.Sprintf("dynamic cookies disabled on backend %s", c.Backend)
	case SetDynamicCookieKey:
		msg := fmt.Sprintf("dynamic cookie key of backend %s set (fingerprint %s)", c.Backend, c.Key.String())
		if !c.GraceUntil.IsZero() {
			msg += describeGrace(c.GraceUntil)
		}
		return msg
	case SetDynamicCookieAddrGrace:
		return fmt.Sprintf("dynamic cookie address grace of backend %s set to %s", c.Backend, c.Grace)
	case SetCookie:
		return fmt.Sprintf("cookie settings of backend %s changed", c.Backend)
	case ShutdownSessions:
		return fmt.Sprintf("sessions of server %s shut down", c.ServerRef)
	case ClearCounters:
		return "counters cleared"
	case CommitSSLCert:
		return fmt.Sprintf("certificate %s committed (%s)", c.Cert.Path, c.Cert.Describe())
	}
	return fmt.Sprintf("%T", c)
}

// apply returns the table that results from c, and the affected backend as
// it was before, without publishing anything.
func (t *table) apply(c Change, now time.Time) (*table, *backendRT, error) {
	if cc, ok := c.(ClearCounters); ok {
		if cc.Backend != "" && t.lookupBackend(cc.Backend) == nil {
			return nil, nil, ErrNoSuchBackend
		}
		n := *t
		return &n, nil, nil
	}
	if cc, ok := c.(CommitSSLCert); ok {
		if cc.Cert.Path == "" || cc.Cert.PEM == "" {
			return nil, nil, fmt.Errorf("commit ssl cert: %w: a certificate needs a path and a PEM bundle", ErrInvalid)
		}
		n := *t
		n.cfg.SSLCerts = withSSLCert(t.cfg.SSLCerts, cc.Cert)
		return &n, nil, nil
	}
	old := t.lookupBackend(c.BackendName())
	if old == nil {
		return nil, nil, ErrNoSuchBackend
	}
	be := old.clone()
	be.forgetExpiredKeys(now)
	if err := be.apply(c, now); err != nil {
		return nil, nil, err
	}
	be.finish()
	return t.withBackend(be), old, nil
}

// apply changes the (cloned, unpublished) backend be.
func (be *backendRT) apply(c Change, now time.Time) error {
	switch c.(type) {
	case AddServer, DelServer, SetDynamicCookies, SetDynamicCookieKey, SetCookie:
		be.changedAll = true
	}
	switch c := c.(type) {
	case AddServer:
		return be.addServer(c.Server, now)
	case SetDynamicCookies:
		if be.cfg.Cookie != nil {
			be.cfg.Cookie.Dynamic = c.Enabled
		}
		be.graceDirty = true
		return nil
	case SetDynamicCookieKey:
		if c.Key == "" {
			return fmt.Errorf("%w: a key is required", ErrInvalid)
		}
		if strings.ContainsAny(c.Key.Reveal(), "\x00\r\n") {
			// A configuration line cannot hold them: the key could be
			// neither exported nor given to HAProxy.
			return ErrKeyBytes
		}
		be.cfg.RetiredKeys = be.retireKey(c.Key, c.GraceUntil, now)
		be.cfg.DynamicCookieKey = c.Key
		be.graceDirty = true
		return nil
	case SetDynamicCookieAddrGrace:
		if c.Grace < 0 {
			return fmt.Errorf("%w: a negative grace", ErrInvalid)
		}
		be.cfg.DynamicCookieAddrGrace = c.Grace
		return nil
	case SetCookie:
		if err := c.Cookie.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		be.cfg.Cookie = c.Cookie.Clone()
		be.graceDirty = true
		return nil
	}
	ref, ok := c.(interface{ Ref() ServerRef })
	if !ok {
		return fmt.Errorf("%w: unsupported change %T", ErrInvalid, c)
	}
	old := be.lookupServer(ref.Ref().Server)
	if old == nil {
		return ErrNoSuchServer
	}
	if _, ok := c.(DelServer); ok {
		return be.delServer(old)
	}
	if _, ok := c.(ShutdownSessions); ok {
		return nil
	}
	s := *old
	if err := s.apply(c, be, now); err != nil {
		return err
	}
	s.noteMaint(old.inMaint())
	if s.admin != old.admin || s.op != old.op {
		s.lastChange = now
	}
	be.replace(old, &s)
	return nil
}

// replace swaps a server in a cloned backend.
func (be *backendRT) replace(old, s *serverRT) {
	if i, ok := be.byName[old.cfg.Name]; ok && be.servers.At(i) == old {
		be.servers.Set(i, s)
		be.indexStale = be.indexStale || s.cookie != old.cookie || s.live != old.live
		be.usableCount += activeUsable(s) - activeUsable(old)
		if !slices.Contains(be.changed, i) {
			be.changed = append(be.changed, i)
		}
	}
}

// apply changes a copy of a server.
func (s *serverRT) apply(c Change, be *backendRT, now time.Time) error {
	switch c := c.(type) {
	case SetAdminState:
		s.setAdminMode(c.State)
		if c.State != Drain {
			// Ready withdraws a request for maintenance when idle;
			// maintenance fulfils it.
			s.whenIdle = IdleIntent{}
		}
	case SetMaintWhenIdle:
		s.whenIdle = c.Intent
	case SetWeight:
		if c.Weight < 0 || c.Weight > 256 {
			return ErrWeightRange
		}
		if !be.cfg.Balance.Dynamic() && c.Weight != 0 && c.Weight != s.cfg.Weight {
			return ErrStaticWeight
		}
		s.weight = c.Weight
	case SetAddr:
		if c.Resolved && c.Address == "" {
			// Like HAProxy: the address is gone, the port and cookie stay.
			s.admin |= AdminRMaint
			s.addr = netip.Addr{}
			return nil
		}
		ip, err := netip.ParseAddr(c.Address)
		if err != nil {
			return fmt.Errorf("%w '%s'", ErrInvalidAddress, c.Address)
		}
		if c.PortSet && (c.Port < 0 || c.Port > 65535) {
			return fmt.Errorf("%w: port %d", ErrInvalid, c.Port)
		}
		port := s.port
		if c.PortSet {
			port = c.Port
		}
		s.prevAddrs = livePrevAddrs(s.prevAddrs, now)
		s.notePrevAddr(ip.Unmap(), port, c.GraceUntil, now)
		// HAProxy 2.6 lets the address family change at run time.
		s.addr = ip.Unmap()
		if c.PortSet {
			s.port, s.portSet = c.Port, true
		}
		if c.Resolved {
			s.admin &^= AdminRMaint
		}
		if s.admin&AdminRMaint != 0 && !c.Resolved {
			// An operator-set address ends maintenance by resolution.
			s.admin &^= AdminRMaint
		}
	case SetHealth:
		switch c.Health {
		case HealthUp:
			s.op = OpRunning
			s.health = s.cfg.Rise + s.cfg.Fall - 1
		case HealthStopping:
			s.op = OpStopping
			s.health = s.cfg.Rise + s.cfg.Fall - 1
		case HealthDown:
			s.op = OpStopped
			s.health = 0
		}
		s.live.noteOp(s.op, now)
		if cr := s.live.check.Load(); cr != nil {
			// Like HAProxy, keep the last check's status and move its
			// health counter; a running checker continues from it.
			next := *cr
			next.Health = s.health
			s.live.check.Store(&next)
		}
	case SetCheckEnabled:
		if c.Enabled && !s.cfg.Check {
			return ErrCheckNotConfigured
		}
		// The server keeps its state: HAProxy 2.6 leaves a DOWN server
		// DOWN when its checks are disabled, until "set server health".
		s.checkEnabled = c.Enabled
	case SetCheckPort:
		if c.Port <= 0 || c.Port > 65535 {
			return fmt.Errorf("%w: port %d", ErrInvalid, c.Port)
		}
		s.cfg.CheckPort = c.Port
	case SetMaxConn:
		if c.MaxConn < 0 {
			return fmt.Errorf("%w: maxconn %d", ErrInvalid, c.MaxConn)
		}
		s.cfg.MaxConn = c.MaxConn
	default:
		return fmt.Errorf("%w: unsupported change %T", ErrInvalid, c)
	}
	return nil
}

// addServer adds a server the way HAProxy's "add server" does: in
// maintenance, with checks disabled.
func (be *backendRT) addServer(sc Server, now time.Time) error {
	if !be.cfg.Balance.Dynamic() {
		return ErrNotDynamicBackend
	}
	if sc.Name == "" {
		return fmt.Errorf("%w: a server name is required", ErrInvalid)
	}
	if _, ok := be.byName[sc.Name]; ok {
		return ErrServerExists
	}
	if sc.Weight == 0 && !sc.Disabled {
		sc.Weight = 1
	}
	nextID := 1
	for _, s := range be.servers.All() {
		if s.id >= nextID {
			nextID = s.id + 1
		}
	}
	s, err := newServerRT(nextID, sc, now)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if s.admin&AdminRMaint != 0 && sc.Address != "" {
		return fmt.Errorf("%w '%s'", ErrInvalidAddress, sc.Address)
	}
	s.admin |= AdminFMaint
	s.health = 0
	s.checkEnabled = false
	s.live = newServerLive()
	be.servers.Append(s)
	be.indexNames()
	be.indexStale = true
	return nil
}

// delServer removes a server in maintenance that has no connection in use.
func (be *backendRT) delServer(s *serverRT) error {
	if s.cfg.Resolvers != "" {
		return ErrServerReferenced
	}
	if s.admin&AdminFMaint == 0 {
		return ErrNotInMaintenance
	}
	if s.live.cur.Load() > 0 {
		return ErrServerHasConns
	}
	if p := s.live.pool.Load(); p != nil && p.activeCount() > 0 {
		return ErrServerHasConns
	}
	if i, ok := be.byName[s.cfg.Name]; ok && be.servers.At(i) == s {
		be.servers.Delete(i)
	}
	be.indexNames()
	be.indexStale = true
	// A deleted template slot is remembered as deleted by leaving the
	// template's other slots in place; static servers simply disappear.
	return nil
}

// noteOp records a transition to or from the stopped state for downtime.
func (l *serverLive) noteOp(op OpState, now time.Time) {
	if op == OpStopped {
		if l.downSince.CompareAndSwap(0, now.UnixNano()) {
			l.downs.Add(1)
		}
		return
	}
	if since := l.downSince.Swap(0); since != 0 {
		l.downtime.Add(now.UnixNano() - since)
	}
}
