package balancer

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"tether/balancer/rules"
)

// table is an immutable routing table. A new one is built copy-on-write for
// every change and published with an atomic pointer swap; request handling
// loads it once and never sees it change.
type table struct {
	version   uint64
	cfg       Config // Global, Frontends, Resolvers; Backends are in backends
	backends  []*backendRT
	byName    map[string]*backendRT
	frontends map[string]*frontendRT
	// refs are the ACLs' pattern references, which the Runtime API's acl
	// commands change; a reload builds new ones, so that, as in HAProxy,
	// runtime changes last until the next reload or restart.
	refs *rules.Refs
}

type frontendRT struct {
	id      int
	cfg     Frontend
	backend string // default_backend
	// routes are the use_backend rules, compiled; reqRules the
	// http-request rules followed by the redirect rules; resRules the
	// http-response rules.
	routes   []route
	reqRules []httpRule
	resRules []httpRule
	live     *frontendLive
	// log is how the frontend writes its access log, nil when it does not.
	log *frontendLog
	// xff is its option forwardfor.
	xff forwardForRule
}

// route is one compiled use_backend rule; cond is nil when unconditional.
type route struct {
	backend string
	cond    *rules.Cond
	line    string        // as configured
	hits    *atomic.Int64 // requests it sent to its backend
}

// compiledRules are a frontend's rules, compiled.
type compiledRules struct {
	routes             []route
	reqRules, resRules []httpRule
}

// ruleCounter returns the hit counter of the rule written line, kept in
// live so that it survives reloads that keep the rule. It runs under the
// Balancer's writer lock.
func (l *frontendLive) ruleCounter(line string) *atomic.Int64 {
	if l.ruleHits == nil {
		l.ruleHits = make(map[string]*atomic.Int64)
	}
	c := l.ruleHits[line]
	if c == nil {
		c = new(atomic.Int64)
		l.ruleHits[line] = c
	}
	return c
}

// ruleLine writes a rule as its configuration line.
func ruleLine(words ...[]string) string {
	return strings.Join(slices.Concat(words...), " ")
}

// compileRules compiles a frontend's ACLs and rules, checking that every
// backend they name exists in t; live keeps their hit counters.
func compileRules(fc Frontend, t *table, live *frontendLive) (compiledRules, error) {
	var out compiledRules
	if len(fc.ACLs)+len(fc.UseBackends)+len(fc.RequestRules)+len(fc.Redirects)+len(fc.ResponseRules) == 0 {
		return out, nil
	}
	files := make(map[string]string)
	for _, a := range fc.ACLs {
		maps.Copy(files, a.Files)
	}
	for _, ub := range fc.UseBackends {
		maps.Copy(files, ub.Files)
	}
	for _, rs := range [][]HTTPRule{fc.RequestRules, fc.Redirects, fc.ResponseRules} {
		for _, r := range rs {
			maps.Copy(files, r.Files)
		}
	}
	set := rules.NewSet(func(name string) ([]byte, error) {
		f, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("pattern file %s was not loaded with the configuration", name)
		}
		return []byte(f), nil
	})
	set.UseRefs(t.refs)
	for _, a := range fc.ACLs {
		if err := set.DefineAt(append([]string{a.Name}, a.Words...), rules.Source(a.At)); err != nil {
			return out, fmt.Errorf("acl %s: %w", a.Name, err)
		}
	}
	for _, ub := range fc.UseBackends {
		if _, ok := t.byName[ub.Backend]; !ok {
			return out, fmt.Errorf("use_backend %q does not exist", ub.Backend)
		}
		line := ruleLine([]string{"use_backend", ub.Backend}, ub.Cond)
		r := route{backend: ub.Backend, line: line, hits: live.ruleCounter(line)}
		if len(ub.Cond) > 0 {
			c, err := set.CondAt(ub.Cond, rules.Source(ub.At))
			if err != nil {
				return out, fmt.Errorf("use_backend %s: %w", ub.Backend, err)
			}
			r.cond = c
		}
		out.routes = append(out.routes, r)
	}
	var err error
	if out.reqRules, err = compileHTTPRules(RequestPhase, append(slices.Clip(fc.RequestRules), fc.Redirects...), set, live); err != nil {
		return out, err
	}
	if out.resRules, err = compileHTTPRules(ResponsePhase, fc.ResponseRules, set, live); err != nil {
		return out, err
	}
	return out, nil
}

// backendRT is one backend inside a table. It is never modified once the
// table is published.
type backendRT struct {
	id      int
	cfg     Backend // Servers is nil: servers holds them
	servers serverList
	// byName, byCookie and byLive index servers by position, so that a
	// change to one server's settings shares them with the table before.
	byName map[string]int
	ck     *cookieRT
	// usableCount is the number of usable active servers.
	usableCount int
	// backup is the first usable backup server, used when no active one is.
	backup *serverRT
	// usable lists usable active servers in ID order, and cumWeight the
	// running sum of their weights, for the algorithms that pick from a
	// list (leastconn, first, random); the others leave both nil.
	usable    []*serverRT
	cumWeight []int
	// byCookie lists the positions of the servers having each cookie
	// value, in ID order.
	byCookie map[string][]int
	// byLive finds a server of this table from its long-lived state, for
	// the round-robin states that outlive tables.
	byLive map[*serverLive]int
	// indexStale marks byCookie and byLive as no longer describing servers
	// (a server was added, removed or got another cookie); finish rebuilds
	// them.
	indexStale bool
	// changed lists the positions of the servers replaced since the
	// backend was last published, and changedAll says that anything else
	// changed (a server added or removed, backend settings, a new
	// backend): finish, the schedule and publishRR then redo every server
	// instead of only those.
	changed    []int
	changedAll bool
	// xff is its option forwardfor.
	xff  forwardForRule
	live *backendLive
	// grace maps the old dynamic cookies still in their window (retired
	// keys, previous addresses) to the server each leads to; nil when
	// there are none. graceDirty asks finish to rebuild it.
	grace      map[string]graceEntry
	graceDirty bool
}

// changedServers calls f for each position finish must recompute.
func (be *backendRT) changedServers(f func(i int, s *serverRT)) {
	if be.changedAll {
		for i, s := range be.servers.All() {
			f(i, s)
		}
		return
	}
	for _, i := range be.changed {
		f(i, be.servers.At(i))
	}
}

// serverNamed returns the server with that name, or nil.
func (be *backendRT) serverNamed(name string) *serverRT {
	if i, ok := be.byName[name]; ok {
		return be.servers.At(i)
	}
	return nil
}

// serverOfLive returns this table's server with the long-lived state l,
// or nil.
func (be *backendRT) serverOfLive(l *serverLive) *serverRT {
	if i, ok := be.byLive[l]; ok {
		return be.servers.At(i)
	}
	return nil
}

// indexNames rebuilds byName from servers.
func (be *backendRT) indexNames() {
	be.byName = make(map[string]int, be.servers.Len())
	for i, s := range be.servers.All() {
		be.byName[s.cfg.Name] = i
	}
}

// serverRT is one server inside a table, immutable once published. Its
// counters and connection pool live in live, shared by every table.
type serverRT struct {
	id  int
	cfg Server // as configured; Address may be a host name
	// addr is the current IP ("" invalid when the server has none) and port.
	addr          netip.Addr
	port          int
	portSet       bool
	cookie        string
	cookieDynamic bool
	// cookieFrom is what a dynamic cookie was computed from, so that it
	// is computed again only when the key, address or port changes.
	cookieFrom   cookieInput
	admin        uint8
	op           OpState
	weight       int
	checkEnabled bool
	// health is HAProxy's check health as the configuration and the
	// operator set it: rise at start, 0 in maintenance, rise+fall-1 after
	// "set server health up" or "stopping". A checked server reports its
	// last check's health instead once a check has run.
	health     int
	whenIdle   IdleIntent
	lastChange time.Time
	live       *serverLive
	// tls is the TLS side of its connections or checks, nil without.
	tls *upstreamTLS
	// dial caches dialAddr for the address dialFor.
	dial    string
	dialFor netip.AddrPort
	// prevAddrs are addresses the dynamic cookie was computed from
	// before, in their grace window (Backend.DynamicCookieAddrGrace).
	prevAddrs []prevAddr
}

// cookieInput is what a dynamic cookie is computed from.
type cookieInput struct {
	key  Secret
	addr netip.Addr
	port int
}

// key returns "backend/server".
func key(backend, server string) string { return backend + "/" + server }

// dialAddr returns the host:port to connect to, or "" with no address.
func (s *serverRT) dialAddr() string {
	if !s.addr.IsValid() {
		return ""
	}
	if s.dial == "" || s.dialFor != netip.AddrPortFrom(s.addr, uint16(s.port)) {
		// Not yet computed for this address (servers are copied, then
		// finished, so this happens once per table change).
		return netip.AddrPortFrom(s.addr, uint16(s.port)).String()
	}
	return s.dial
}

// inMaint reports whether the server is in maintenance, forced or because
// its name does not resolve.
func (s *serverRT) inMaint() bool {
	return s.admin&(AdminFMaint|AdminRMaint) != 0
}

// noteMaint updates the health like HAProxy when the server enters or
// leaves maintenance (was tells whether it was in maintenance): entering
// sets it to 0; leaving sets it back to rise for a checked server, while an
// unchecked one keeps 0.
func (s *serverRT) noteMaint(was bool) {
	switch in := s.inMaint(); {
	case in && !was:
		s.health = 0
	case !in && was && s.cfg.Check:
		s.health = s.cfg.Rise
	}
}

// running reports whether the server counts as running for persistence:
// not in maintenance and not stopped. Drain still counts as running.
func (s *serverRT) running() bool {
	return s.admin&(AdminFMaint|AdminRMaint) == 0 && s.op != OpStopped
}

// usable reports whether the server may take new load-balanced traffic.
func (s *serverRT) usable() bool {
	return s.running() && s.admin&AdminFDrain == 0 && s.op != OpStopping && s.weight > 0
}

// build creates a table from a configuration and restored runtime state.
func build(cfg Config, runtime map[string]ServerRuntime, prev *table, now time.Time) (*table, error) {
	cfg, err := NumberProxies(cfg)
	if err != nil {
		return nil, err
	}
	t := &table{
		cfg:       cfg,
		byName:    make(map[string]*backendRT, len(cfg.Backends)),
		frontends: make(map[string]*frontendRT, len(cfg.Frontends)),
		refs:      rules.NewRefs(),
	}
	t.cfg.Backends = nil
	for i, bc := range cfg.Backends {
		if bc.Name == "" {
			return nil, fmt.Errorf("backend #%d has no name", i+1)
		}
		if _, dup := t.byName[bc.Name]; dup {
			return nil, fmt.Errorf("backend %q is defined twice", bc.Name)
		}
		be, err := buildBackend(bc.ID, bc, runtime, prev, now)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", bc.Name, err)
		}
		t.backends = append(t.backends, be)
		t.byName[bc.Name] = be
	}
	for _, fc := range cfg.Frontends {
		if _, dup := t.frontends[fc.Name]; dup {
			return nil, fmt.Errorf("frontend %q is defined twice", fc.Name)
		}
		if fc.DefaultBackend != "" {
			if _, ok := t.byName[fc.DefaultBackend]; !ok {
				return nil, fmt.Errorf("frontend %q: default_backend %q does not exist", fc.Name, fc.DefaultBackend)
			}
		}
		live := &frontendLive{}
		if prev != nil {
			if old, ok := prev.frontends[fc.Name]; ok {
				live = old.live
			}
		}
		cr, err := compileRules(fc, t, live)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
		}
		fl, err := buildFrontendLog(&fc, &cfg.Global)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
		}
		xff, err := newForwardForRule(fc.ForwardFor, fc.ForwardForOptions)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: option forwardfor: %w", fc.Name, err)
		}
		t.frontends[fc.Name] = &frontendRT{id: fc.ID, cfg: fc, backend: fc.DefaultBackend,
			routes: cr.routes, reqRules: cr.reqRules, resRules: cr.resRules, live: live, log: fl, xff: xff}
	}
	t.refs.Number()
	return t, nil
}

func buildBackend(id int, bc Backend, runtime map[string]ServerRuntime, prev *table, now time.Time) (*backendRT, error) {
	if bc.Balance == "" {
		bc.Balance = RoundRobin
	}
	switch bc.Balance {
	case RoundRobin, StaticRR, LeastConn, First, Source, Random:
	default:
		return nil, fmt.Errorf("unsupported balance algorithm %q", bc.Balance)
	}
	if err := bc.Cookie.Validate(); err != nil {
		return nil, fmt.Errorf("cookie: %w", err)
	}
	xff, err := newForwardForRule(bc.ForwardFor, bc.ForwardForOptions)
	if err != nil {
		return nil, fmt.Errorf("option forwardfor: %w", err)
	}
	be := &backendRT{id: id, byName: make(map[string]int), changedAll: true, xff: xff}
	var prevBE *backendRT
	if prev != nil {
		prevBE = prev.byName[bc.Name]
	}
	if prevBE != nil {
		be.live = prevBE.live
	} else {
		be.live = newBackendLive(now)
	}
	servers := bc.Servers
	bc.Servers = nil
	be.cfg = bc
	be.forgetExpiredKeys(now)
	be.cfg.Cookie = bc.Cookie.Clone()
	add := func(sc Server) error {
		if sc.Name == "" {
			return fmt.Errorf("a server has no name")
		}
		if _, dup := be.byName[sc.Name]; dup {
			return fmt.Errorf("server %q is defined twice", sc.Name)
		}
		s, err := newServerRT(be.servers.Len()+1, sc, now)
		if err != nil {
			return fmt.Errorf("server %q: %w", sc.Name, err)
		}
		if rt, ok := runtime[key(bc.Name, sc.Name)]; ok {
			s.restore(rt)
		}
		s.prevAddrs = livePrevAddrs(s.prevAddrs, now)
		if prevBE != nil {
			if old := prevBE.serverNamed(sc.Name); old != nil {
				s.carryPrevAddrs(old, bc, now)
				s.live = old.live
				if sameServer(old.cfg, sc) && old.admin == s.admin {
					// A reload keeps what checks found.
					s.op, s.health, s.lastChange = old.op, old.health, old.lastChange
				}
			}
		}
		if s.live == nil {
			s.live = newServerLive()
		}
		be.byName[sc.Name] = be.servers.Len()
		be.servers.Append(s)
		return nil
	}
	for _, sc := range servers {
		if err := add(sc); err != nil {
			return nil, err
		}
	}
	for _, tpl := range bc.Templates {
		if tpl.Low < 0 || tpl.High < tpl.Low {
			return nil, fmt.Errorf("server-template %q: bad range %d-%d", tpl.Prefix, tpl.Low, tpl.High)
		}
		for _, name := range tpl.Names() {
			sc := tpl.Params
			sc.Name = name
			sc.Address = tpl.FQDN
			if err := add(sc); err != nil {
				return nil, err
			}
		}
	}
	be.finish()
	return be, nil
}

func newServerRT(id int, sc Server, now time.Time) (*serverRT, error) {
	if sc.Weight < 0 || sc.Weight > 256 {
		return nil, fmt.Errorf("weight %d out of range 0..256", sc.Weight)
	}
	if sc.Port < 0 || sc.Port > 65535 {
		return nil, fmt.Errorf("port %d out of range", sc.Port)
	}
	if sc.Rise <= 0 {
		sc.Rise = 2
	}
	if sc.Fall <= 0 {
		sc.Fall = 3
	}
	if sc.Inter <= 0 {
		sc.Inter = 2 * time.Second
	}
	s := &serverRT{
		id:           id,
		cfg:          sc,
		port:         sc.Port,
		portSet:      sc.PortSet,
		weight:       sc.Weight,
		checkEnabled: sc.Check,
		op:           OpRunning,
		lastChange:   now,
	}
	if ip, err := netip.ParseAddr(sc.Address); err == nil {
		s.addr = ip.Unmap()
	} else {
		// No address or a host name: the server waits in maintenance
		// until resolution gives it an address.
		s.admin |= AdminRMaint
	}
	if sc.Disabled {
		s.admin |= AdminFMaint | AdminCMaint
	}
	s.health = sc.Rise
	s.noteMaint(false)
	tlsConf, err := newUpstreamTLS(sc)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", sc.Name, err)
	}
	s.tls = tlsConf
	return s, nil
}

// trafficTLS returns the TLS side of the server's connections, nil when
// they are clear text.
func (s *serverRT) trafficTLS() *upstreamTLS {
	if !s.cfg.SSL {
		return nil
	}
	return s.tls
}

// checkTLS returns the TLS side of the server's health checks: those of
// an SSL server on its own port, and every check with check-ssl.
func (s *serverRT) checkTLS() *upstreamTLS {
	if s.cfg.CheckSSL || (s.cfg.SSL && s.cfg.CheckPort == 0) {
		return s.tls
	}
	return nil
}

// setAdminMode sets the operator's forced state: ready clears forced
// maintenance and drain, drain and maint set one and clear the other.
func (s *serverRT) setAdminMode(m AdminMode) {
	s.admin &^= AdminFMaint | AdminFDrain
	switch m {
	case Maint:
		s.admin |= AdminFMaint
	case Drain:
		s.admin |= AdminFDrain
	}
}

// restore applies persisted runtime settings to a freshly built server.
func (s *serverRT) restore(rt ServerRuntime) {
	defer s.noteMaint(s.inMaint())
	s.setAdminMode(rt.Admin)
	s.whenIdle = rt.WhenIdle
	s.prevAddrs = parsePrevAddrs(rt.PrevAddrs)
	if rt.Weight >= 0 && rt.Weight <= 256 {
		s.weight = rt.Weight
	}
	s.checkEnabled = rt.CheckEnabled && s.cfg.Check
	if rt.Address != "" {
		if ip, err := netip.ParseAddr(rt.Address); err == nil {
			s.addr = ip.Unmap()
			s.admin &^= AdminRMaint
		}
	}
	if rt.PortSet {
		s.port, s.portSet = rt.Port, true
	}
}

// runtime returns the server's durable runtime settings.
func (s *serverRT) runtime() ServerRuntime {
	rt := ServerRuntime{Weight: s.weight, CheckEnabled: s.checkEnabled, Port: s.port, PortSet: s.portSet, WhenIdle: s.whenIdle}
	switch {
	case s.admin&AdminFMaint != 0:
		rt.Admin = Maint
	case s.admin&AdminFDrain != 0:
		rt.Admin = Drain
	}
	if s.addr.IsValid() {
		rt.Address = s.addr.String()
	}
	for _, p := range s.prevAddrs {
		rt.PrevAddrs = append(rt.PrevAddrs, p.export())
	}
	return rt
}

// finish computes dynamic cookies, collision warnings and the selection
// schedule. It is called on a backend that is not yet published.
func (be *backendRT) finish() {
	be.ck = newCookieRT(be.cfg.Cookie)
	dynamic := be.cfg.Cookie != nil && be.cfg.Cookie.Dynamic
	graceStale := be.graceDirty
	be.changedServers(func(i int, s *serverRT) {
		cookie, isDynamic, from := s.cookie, s.cookieDynamic, s.cookieFrom
		switch {
		case s.cfg.Cookie != "":
			cookie, isDynamic = s.cfg.Cookie, false
		case dynamic && s.addr.IsValid():
			from = cookieInput{key: be.cfg.DynamicCookieKey, addr: s.addr, port: s.port}
			if !s.cookieDynamic || s.cookieFrom != from {
				cookie = DynamicCookie(be.cfg.DynamicCookieKey.Reveal(), s.addr, int32(s.port))
				isDynamic = cookie != ""
			}
		case dynamic:
			// HAProxy keeps the old value when the address is lost.
		default:
			cookie, isDynamic = "", false
		}
		ap := netip.AddrPortFrom(s.addr, uint16(s.port))
		if cookie != s.cookie || isDynamic != s.cookieDynamic || from != s.cookieFrom || (s.addr.IsValid() && s.dialFor != ap) {
			// Servers may be shared with the published table: copy.
			c := *s
			c.cookie, c.cookieDynamic, c.cookieFrom = cookie, isDynamic, from
			if s.addr.IsValid() {
				c.dial, c.dialFor = ap.String(), ap
			}
			be.servers.Set(i, &c)
			be.indexStale = be.indexStale || cookie != s.cookie
			graceStale = true
		}
	})
	if be.byLive == nil || be.indexStale {
		be.indexStale = false
		graceStale = true
		be.byCookie = make(map[string][]int, be.servers.Len())
		be.byLive = make(map[*serverLive]int, be.servers.Len())
		for i, s := range be.servers.All() {
			be.byLive[s.live] = i
			if s.cookie != "" {
				be.byCookie[s.cookie] = append(be.byCookie[s.cookie], i)
			}
		}
	}
	if graceStale || be.grace != nil && !be.hasGraceInputs() {
		be.buildGrace()
	}
	be.graceDirty = false
	be.buildSchedule()
}

// publishRR brings the backend's round-robin and queueing state in line
// with this table. It is called once the table is published, under the writer lock,
// so a refused change never moves the round-robin position.
func (be *backendRT) publishRR() {
	be.publishQueue()
	defer func() { be.changed, be.changedAll = nil, false }()
	var st interface {
		update([]rrMember)
		updateAt([]int, []rrMember) bool
	}
	switch be.cfg.Balance {
	case RoundRobin:
		st = be.live.fwrr
	case StaticRR, Source:
		st = be.live.smap
	default:
		return
	}
	// The member list is scratch space kept with the backend: publishRR
	// runs under the Balancer's writer lock, and the states copy what they
	// keep.
	members := be.live.rrMembers[:0]
	if !be.changedAll {
		for _, i := range be.changed {
			members = append(members, be.servers.At(i).rrMember())
		}
		be.live.rrMembers = members
		if st.updateAt(be.changed, members) {
			return
		}
		members = members[:0]
	}
	for _, s := range be.servers.All() {
		members = append(members, s.rrMember())
	}
	be.live.rrMembers = members
	st.update(members)
}

// rrMember describes s to the round-robin states.
func (s *serverRT) rrMember() rrMember {
	return rrMember{key: s.live, weight: s.weight, usable: s.usable(), backup: s.cfg.Backup, maxConn: s.cfg.MaxConn}
}

// collisions returns, for each server whose cookie another non-maintenance
// server of the backend shares, the other server's name.
func (be *backendRT) collisions() map[string]string {
	var out map[string]string
	seen := make(map[string]string, be.servers.Len())
	for _, s := range be.servers.All() {
		if s.cookie == "" || s.admin&AdminFMaint != 0 {
			continue
		}
		if other, ok := seen[s.cookie]; ok {
			if out == nil {
				out = make(map[string]string)
			}
			out[s.cfg.Name] = other
			if _, ok := out[other]; !ok {
				out[other] = s.cfg.Name
			}
			continue
		}
		seen[s.cookie] = s.cfg.Name
	}
	return out
}

// clone returns a shallow copy of be with its own server slice and map, to
// be modified and finished before publication.
func (be *backendRT) clone() *backendRT {
	n := *be
	n.cfg.Cookie = be.cfg.Cookie.Clone()
	n.servers = be.servers.clone()
	n.changed = append([]int(nil), be.changed...)
	// byName, byCookie and byLive are shared until a change alters what
	// they index (addServer, delServer, finish).
	return &n
}

// withBackend returns a copy of t in which be replaces the backend of the
// same name.
func (t *table) withBackend(be *backendRT) *table {
	n := *t
	n.backends = append([]*backendRT(nil), t.backends...)
	n.byName = make(map[string]*backendRT, len(t.byName))
	for i, b := range n.backends {
		if b.cfg.Name == be.cfg.Name {
			n.backends[i] = be
		}
		n.byName[n.backends[i].cfg.Name] = n.backends[i]
	}
	return &n
}

// state returns the table's durable state.
func (t *table) state() State {
	st := State{Config: t.cfg, Servers: make(map[string]ServerRuntime)}
	st.Config.Backends = make([]Backend, 0, len(t.backends))
	for _, be := range t.backends {
		bc := be.cfg
		bc.Cookie = be.cfg.Cookie.Clone()
		bc.Servers = make([]Server, 0, be.servers.Len())
		fromTemplates := templateNames(bc.Templates)
		for _, s := range be.servers.All() {
			st.Servers[key(bc.Name, s.cfg.Name)] = s.runtime()
			if !fromTemplates[s.cfg.Name] {
				bc.Servers = append(bc.Servers, s.cfg)
			}
		}
		st.Config.Backends = append(st.Config.Backends, bc)
	}
	return st
}

func templateNames(tpls []ServerTemplate) map[string]bool {
	if len(tpls) == 0 {
		return nil
	}
	m := make(map[string]bool)
	for _, t := range tpls {
		for _, n := range t.Names() {
			m[n] = true
		}
	}
	return m
}

// lookupBackend finds a backend by name or "#id".
func (t *table) lookupBackend(name string) *backendRT {
	if be, ok := t.byName[name]; ok {
		return be
	}
	if id, ok := parseID(name); ok {
		for _, be := range t.backends {
			if be.id == id {
				return be
			}
		}
	}
	return nil
}

// lookupServer finds a server by name or "#id".
func (be *backendRT) lookupServer(name string) *serverRT {
	if s := be.serverNamed(name); s != nil {
		return s
	}
	if id, ok := parseID(name); ok {
		for _, s := range be.servers.All() {
			if s.id == id {
				return s
			}
		}
	}
	return nil
}

func parseID(name string) (int, bool) {
	if !strings.HasPrefix(name, "#") {
		return 0, false
	}
	id, err := strconv.Atoi(name[1:])
	return id, err == nil
}

// frontendLive holds a frontend's counters; it outlives table swaps.
type frontendLive struct {
	cur, max, sessions, requests, bytesIn, bytesOut, reqErrors atomic.Int64
	responses                                                  [6]atomic.Int64
	// connCounted records that the frontend's server counts sessions per
	// connection (FrontendEvents); otherwise each request counts one.
	connCounted atomic.Bool
	// ruleHits counts the requests each rule matched, by configuration
	// line; the map changes only under the Balancer's writer lock, and
	// compiled rules hold the counters.
	ruleHits map[string]*atomic.Int64
}

// backendLive holds a backend's counters and round-robin position.
type backendLive struct {
	// fwrr and smap hold HAProxy's round-robin state for roundrobin and
	// static-rr backends; they are updated when a table is published.
	fwrr *fwrr
	smap *staticMap
	// rrMembers is publishRR's scratch list, used under the Balancer's
	// writer lock only.
	rrMembers                                       []rrMember
	rr                                              atomic.Uint64
	cur, max, sessions, requests, bytesIn, bytesOut atomic.Int64
	connErrors, respErrors, retries, redispatches   atomic.Int64
	cliAborts, srvAborts                            atomic.Int64
	noServer, lbTotal                               atomic.Int64
	downs                                           atomic.Int64 // went without a usable server (chkdown)
	responses                                       [6]atomic.Int64
	sticky                                          stickyLive
	lastChange                                      atomic.Int64 // unix nanoseconds
	// queue holds requests waiting for a server slot (maxconn).
	queue slotQueue
}

func newBackendLive(now time.Time) *backendLive {
	l := &backendLive{fwrr: newFWRR(), smap: newStaticMap()}
	l.lastChange.Store(now.UnixNano())
	return l
}

// stickyLive holds sticky counters as atomics.
type stickyLive struct {
	pinned, newSessions, invalid, expired, redispatched atomic.Int64
	oldKey, oldAddr, reissued                           atomic.Int64
	// oldClients estimates the clients that came with an old cookie in
	// the last few minutes.
	oldClients recentClients
}

func (s *stickyLive) read(now time.Time) StickyCounters {
	return StickyCounters{
		Pinned:       s.pinned.Load(),
		NewSessions:  s.newSessions.Load(),
		Invalid:      s.invalid.Load(),
		Expired:      s.expired.Load(),
		Redispatched: s.redispatched.Load(),
		OldKey:       s.oldKey.Load(),
		OldAddr:      s.oldAddr.Load(),
		Reissued:     s.reissued.Load(),
		OldClients:   s.oldClients.estimate(now.Unix()),
	}
}

func (s *stickyLive) reset() {
	s.pinned.Store(0)
	s.newSessions.Store(0)
	s.invalid.Store(0)
	s.expired.Store(0)
	s.redispatched.Store(0)
	s.oldKey.Store(0)
	s.oldAddr.Store(0)
	s.reissued.Store(0)
	s.oldClients.reset()
}

// storeMax raises m to v if v is larger.
func storeMax(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}
