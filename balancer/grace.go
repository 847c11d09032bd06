package balancer

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// RetiredKey is a previous dynamic-cookie key of a backend and when
// cookies computed with it stop reaching their servers.
type RetiredKey struct {
	Key   Secret
	Until time.Time
}

// PrevAddr is an address and port a server's dynamic cookie was computed
// from before, and when cookies computed from it stop reaching the server.
type PrevAddr struct {
	Address string
	Port    int
	Until   time.Time
}

// maxGraceEntries bounds the retired keys of a backend and the previous
// addresses of a server: the oldest windows are dropped first.
const maxGraceEntries = 8

// graceTime returns the time a grace window ends, as stored: in UTC,
// without a monotonic reading, so that it compares equal once read back.
func graceTime(t time.Time) time.Time { return t.UTC().Round(0) }

// graceKind says what made a cookie old: the key, the address, or both.
type graceKind uint8

const (
	graceOldKey graceKind = 1 << iota
	graceOldAddr
)

// graceEntry is where an old cookie value still leads.
type graceEntry struct {
	server int   // position in backendRT.servers
	until  int64 // Unix seconds; the cookie is refused from then on
	kind   graceKind
}

// prevAddr is a PrevAddr parsed.
type prevAddr struct {
	addr  netip.Addr
	port  int
	until time.Time
}

// stampGrace fills in when the grace a change asks for ends, from now and
// the backend's settings in t, so that what is committed replays the same
// later. It reports whether it changed c.
func (t *table) stampGrace(c Change, now time.Time) (Change, bool) {
	switch c := c.(type) {
	case SetDynamicCookieKey:
		if c.Grace > 0 && c.GraceUntil.IsZero() {
			c.GraceUntil = graceTime(now.Add(c.Grace))
			return c, true
		}
	case SetAddr:
		if be := t.lookupBackend(c.Backend); be != nil && be.cfg.DynamicCookieAddrGrace > 0 && c.GraceUntil.IsZero() {
			c.GraceUntil = graceTime(now.Add(be.cfg.DynamicCookieAddrGrace))
			return c, true
		}
	}
	return c, false
}

// retireKey returns the backend's retired keys once key replaces its
// current one: with a grace end in the future, the current key joins them;
// with no grace at all, as in HAProxy, none remains.
func (be *backendRT) retireKey(key Secret, until time.Time, now time.Time) []RetiredKey {
	if until.IsZero() {
		return nil
	}
	out := make([]RetiredKey, 0, len(be.cfg.RetiredKeys)+1)
	for _, rk := range be.cfg.RetiredKeys {
		if rk.Until.After(now) && rk.Key != key && rk.Key != be.cfg.DynamicCookieKey {
			out = append(out, rk)
		}
	}
	if old := be.cfg.DynamicCookieKey; old != "" && old != key && until.After(now) {
		out = append(out, RetiredKey{Key: old, Until: until})
	}
	if len(out) > maxGraceEntries {
		slices.SortStableFunc(out, func(a, b RetiredKey) int { return b.Until.Compare(a.Until) })
		out = out[:maxGraceEntries]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// notePrevAddr records, before s moves to addr:port, the address its
// dynamic cookie was computed from, with until as the end of its window.
func (s *serverRT) notePrevAddr(addr netip.Addr, port int, until, now time.Time) {
	if !s.cookieDynamic || !s.cookieFrom.addr.IsValid() || !until.After(now) {
		return
	}
	from := s.cookieFrom
	if from.addr == addr && from.port == port {
		return
	}
	out := make([]prevAddr, 0, len(s.prevAddrs)+1)
	for _, p := range s.prevAddrs {
		if p.until.After(now) && !(p.addr == addr && p.port == port) && !(p.addr == from.addr && p.port == from.port) {
			out = append(out, p)
		}
	}
	out = append(out, prevAddr{addr: from.addr, port: from.port, until: until})
	if len(out) > maxGraceEntries {
		out = out[len(out)-maxGraceEntries:]
	}
	s.prevAddrs = out
}

// livePrevAddrs returns the previous addresses whose window is open at now.
func livePrevAddrs(ps []prevAddr, now time.Time) []prevAddr {
	if !slices.ContainsFunc(ps, func(p prevAddr) bool { return !p.until.After(now) }) {
		return ps
	}
	var out []prevAddr
	for _, p := range ps {
		if p.until.After(now) {
			out = append(out, p)
		}
	}
	return out
}

func (p prevAddr) export() PrevAddr {
	return PrevAddr{Address: p.addr.String(), Port: p.port, Until: p.until}
}

func parsePrevAddrs(ps []PrevAddr) []prevAddr {
	var out []prevAddr
	for _, p := range ps {
		if ip, err := netip.ParseAddr(p.Address); err == nil && p.Port >= 0 && p.Port <= 65535 {
			out = append(out, prevAddr{addr: ip.Unmap(), port: p.Port, until: p.Until})
		}
	}
	return out
}

// hasGraceInputs reports whether any old cookie may still lead to a server.
func (be *backendRT) hasGraceInputs() bool {
	if be.cfg.Cookie == nil || !be.cfg.Cookie.Dynamic {
		return false
	}
	if len(be.cfg.RetiredKeys) > 0 {
		return true
	}
	for _, s := range be.servers.All() {
		if len(s.prevAddrs) > 0 {
			return true
		}
	}
	return false
}

// buildGrace computes, for every old dynamic cookie still in its window
// (a retired key, a previous address, or both), the server it leads to.
// A value that is some server's current cookie is left to byCookie.
func (be *backendRT) buildGrace() {
	if !be.hasGraceInputs() {
		be.grace = nil
		return
	}
	type keyWindow struct {
		key   string
		until int64
		old   bool
	}
	const open = int64(1<<63 - 1)
	keys := []keyWindow{{key: be.cfg.DynamicCookieKey.Reveal(), until: open}}
	for _, rk := range be.cfg.RetiredKeys {
		keys = append(keys, keyWindow{key: rk.Key.Reveal(), until: rk.Until.Unix(), old: true})
	}
	m := make(map[string]graceEntry)
	for i, s := range be.servers.All() {
		if !s.cookieDynamic || s.cfg.Cookie != "" || !s.cookieFrom.addr.IsValid() {
			continue
		}
		addrs := append([]prevAddr{{addr: s.cookieFrom.addr, port: s.cookieFrom.port}}, s.prevAddrs...)
		for ai, a := range addrs {
			aUntil := open
			if ai > 0 {
				aUntil = a.until.Unix()
			}
			for _, k := range keys {
				if ai == 0 && !k.old {
					continue // the current cookie
				}
				v := DynamicCookie(k.key, a.addr, int32(a.port))
				if v == "" || len(be.byCookie[v]) > 0 {
					continue
				}
				if _, dup := m[v]; dup {
					continue
				}
				var kind graceKind
				if k.old {
					kind |= graceOldKey
				}
				if ai > 0 {
					kind |= graceOldAddr
				}
				m[v] = graceEntry{server: i, until: min(k.until, aUntil), kind: kind}
			}
		}
	}
	be.grace = m
}

// graceLookup finds the server an old cookie value leads to at now and
// applies HAProxy's rule for a valid cookie: the server takes the request
// if it is running, or with option persist; otherwise the request is
// redispatched. It reports whether the value was an old cookie.
func (be *backendRT) graceLookup(val string, now int64, p *persistence) bool {
	g, ok := be.grace[val]
	if !ok || now >= g.until {
		return false
	}
	s := be.servers.At(g.server)
	p.grace = g.kind
	switch {
	case s.running():
		p.server, p.state = s, ckValid
	case be.cfg.Persist:
		p.server, p.state = s, ckDown
	default:
		p.state, p.downServer = ckDown, s
	}
	return true
}

// RetiredKeyStatus describes a retired dynamic-cookie key without
// revealing it.
type RetiredKeyStatus struct {
	Fingerprint string
	Until       time.Time
}

// retiredStatus lists the retired keys whose window is open at now.
func (be *backendRT) retiredStatus(now time.Time) []RetiredKeyStatus {
	var out []RetiredKeyStatus
	for _, rk := range be.cfg.RetiredKeys {
		if rk.Until.After(now) {
			out = append(out, RetiredKeyStatus{Fingerprint: rk.Key.String(), Until: rk.Until})
		}
	}
	return out
}

// keepGraceSettings returns cfg with the Tether-only dynamic-cookie state
// of the running table cur carried over for each backend cfg does not set
// it for: the address grace, and the retired keys while the key stays the
// same. A configuration file cannot hold them, so a reload keeps them.
func keepGraceSettings(cur *table, cfg Config) Config {
	var out []Backend
	for i, bc := range cfg.Backends {
		old := cur.byName[bc.Name]
		if old == nil || bc.DynamicCookieAddrGrace != 0 || len(bc.RetiredKeys) > 0 {
			continue
		}
		if old.cfg.DynamicCookieAddrGrace == 0 && len(old.cfg.RetiredKeys) == 0 {
			continue
		}
		if out == nil {
			out = slices.Clone(cfg.Backends)
		}
		out[i].DynamicCookieAddrGrace = old.cfg.DynamicCookieAddrGrace
		if bc.DynamicCookieKey == old.cfg.DynamicCookieKey {
			out[i].RetiredKeys = old.cfg.RetiredKeys
		}
	}
	if out != nil {
		cfg.Backends = out
	}
	return cfg
}

// describeGrace says what a change's grace does, for its event.
func describeGrace(until time.Time) string {
	return fmt.Sprintf("; cookies of the previous key are honoured until %s", until.UTC().Format(time.RFC3339))
}

// carryPrevAddrs keeps, across a reload, the previous addresses of the
// server old was, and adds the address old's cookie came from when the
// reload moves the server and the backend has an address grace.
func (s *serverRT) carryPrevAddrs(old *serverRT, bc Backend, now time.Time) {
	if len(s.prevAddrs) == 0 {
		s.prevAddrs = livePrevAddrs(old.prevAddrs, now)
	}
	if bc.DynamicCookieAddrGrace <= 0 || !s.addr.IsValid() {
		return
	}
	c := *old
	c.prevAddrs = s.prevAddrs
	c.notePrevAddr(s.addr, s.port, graceTime(now.Add(bc.DynamicCookieAddrGrace)), now)
	s.prevAddrs = c.prevAddrs
}

func exportPrevAddrs(ps []prevAddr) []PrevAddr {
	var out []PrevAddr
	for _, p := range ps {
		out = append(out, p.export())
	}
	return out
}

// countGrace counts a request from client that came with an old cookie at
// unix time now, on its backend and on the server the cookie leads to.
func countGrace(p persistence, bl *backendLive, client netip.Addr, now int64) {
	s := p.server
	if s == nil {
		s = p.downServer
	}
	bl.sticky.oldClients.add(client, now)
	if s != nil {
		s.live.sticky.oldClients.add(client, now)
	}
	if p.grace&graceOldKey != 0 {
		bl.sticky.oldKey.Add(1)
		if s != nil {
			s.live.sticky.oldKey.Add(1)
		}
	}
	if p.grace&graceOldAddr != 0 {
		bl.sticky.oldAddr.Add(1)
		if s != nil {
			s.live.sticky.oldAddr.Add(1)
		}
	}
}

// forgetExpiredKeys drops the retired keys whose window has ended, so that
// the durable state forgets them with the next change to the backend.
func (be *backendRT) forgetExpiredKeys(now time.Time) {
	if !slices.ContainsFunc(be.cfg.RetiredKeys, func(rk RetiredKey) bool { return !rk.Until.After(now) }) {
		return
	}
	var kept []RetiredKey
	for _, rk := range be.cfg.RetiredKeys {
		if rk.Until.After(now) {
			kept = append(kept, rk)
		}
	}
	be.cfg.RetiredKeys = kept
	be.graceDirty = true
}
