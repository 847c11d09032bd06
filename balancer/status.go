package balancer

import (
	"net/netip"
	"sync/atomic"
	"time"
)

type atomic64 = atomic.Int64

// ruleStatus lists the frontend's rules in the order they run.
func (fe *frontendRT) ruleStatus() []RuleStatus {
	n := len(fe.reqRules) + len(fe.routes) + len(fe.resRules)
	if n == 0 {
		return nil
	}
	out := make([]RuleStatus, 0, n)
	for i := range fe.reqRules {
		out = append(out, RuleStatus{Line: fe.reqRules[i].line, Hits: fe.reqRules[i].hits.Load()})
	}
	for i := range fe.routes {
		out = append(out, RuleStatus{Line: fe.routes[i].line, Hits: fe.routes[i].hits.Load()})
	}
	for i := range fe.resRules {
		out = append(out, RuleStatus{Line: fe.resRules[i].line, Hits: fe.resRules[i].hits.Load()})
	}
	return out
}

// snapshot builds a Snapshot of t, reading counters from the live atomics.
func (t *table) snapshot(started, now time.Time) *Snapshot {
	s := &Snapshot{Version: t.version, Started: started, Taken: now}
	for _, fc := range t.cfg.Frontends {
		fe := t.frontends[fc.Name]
		if fe == nil {
			continue
		}
		l := fe.live
		s.Frontends = append(s.Frontends, FrontendStatus{
			ID:     fe.id,
			Config: fe.cfg,
			Stats: FrontendCounters{
				CurSessions:   l.cur.Load(),
				MaxSessions:   l.max.Load(),
				TotalSessions: l.sessions.Load(),
				TotalRequests: l.requests.Load(),
				BytesIn:       l.bytesIn.Load(),
				BytesOut:      l.bytesOut.Load(),
				Responses:     readClasses(&l.responses),
				RequestErrors: l.reqErrors.Load(),
			},
			Rules: fe.ruleStatus(),
		})
	}
	for _, be := range t.backends {
		s.Backends = append(s.Backends, be.status(now))
	}
	return s
}

func (be *backendRT) status(now time.Time) BackendStatus {
	l := be.live
	cfg := be.cfg
	cfg.DynamicCookieKey = "" // a snapshot shows the key by its fingerprint only
	cfg.RetiredKeys = nil
	bs := BackendStatus{
		ID:             be.id,
		Config:         cfg,
		KeyFingerprint: be.cfg.DynamicCookieKey.String(),
		RetiredKeys:    be.retiredStatus(now),
		Stats: BackendCounters{
			CurSessions:   l.cur.Load(),
			MaxSessions:   l.max.Load(),
			TotalSessions: l.sessions.Load(),
			TotalRequests: l.requests.Load(),
			BytesIn:       l.bytesIn.Load(),
			BytesOut:      l.bytesOut.Load(),
			Responses:     readClasses(&l.responses),
			ConnErrors:    l.connErrors.Load(),
			RespErrors:    l.respErrors.Load(),
			CliAborts:     l.cliAborts.Load(),
			SrvAborts:     l.srvAborts.Load(),
			Retries:       l.retries.Load(),
			Redispatches:  l.redispatches.Load(),
			NoServer:      l.noServer.Load(),
			LBTotal:       l.lbTotal.Load(),
			Downs:         l.downs.Load(),
			Sticky:        l.sticky.read(now),
			LastChange:    time.Unix(0, l.lastChange.Load()),
			QueueCur:      l.queue.total.Load(),
			QueueMax:      l.queue.max.Load(),
		},
	}
	bs.Config.Cookie = be.cfg.Cookie.Clone()
	bs.Config.Servers = make([]Server, be.servers.Len())
	coll := be.collisions()
	bs.Servers = make([]ServerStatus, be.servers.Len())
	for i, s := range be.servers.All() {
		bs.Config.Servers[i] = s.cfg
		bs.Servers[i] = s.status(now, coll[s.cfg.Name])
	}
	return bs
}

func (s *serverRT) status(now time.Time, collision string) ServerStatus {
	l := s.live
	cfg := s.cfg
	fqdn := ""
	if _, err := netip.ParseAddr(s.cfg.Address); err != nil {
		fqdn = s.cfg.Address
	}
	cfg.Address = ""
	if s.addr.IsValid() {
		cfg.Address = s.addr.String()
	}
	cfg.Port, cfg.PortSet = s.port, s.portSet
	st := ServerStatus{
		ID:              s.id,
		Config:          cfg,
		FQDN:            fqdn,
		Cookie:          s.cookie,
		CookieDynamic:   s.cookieDynamic,
		CookieCollision: collision,
		Admin:           s.admin,
		Op:              s.op,
		Weight:          s.weight,
		CheckEnabled:    s.checkEnabled,
		WhenIdle:        s.whenIdle,
		LastChange:      s.lastChange,
		PrevAddrs:       exportPrevAddrs(livePrevAddrs(s.prevAddrs, now)),
		Stats:           l.read(now),
	}
	if cr := l.check.Load(); cr != nil && s.cfg.Check {
		st.Check = *cr
	} else {
		st.Check.Health = s.health
		if s.checkEnabled {
			st.Check.Status = "INI"
		}
	}
	if s.inMaint() {
		// HAProxy stops a server in maintenance and zeroes its health.
		st.Op, st.Check.Health = OpStopped, 0
	}
	return st
}

func (l *serverLive) read(now time.Time) ServerCounters {
	c := ServerCounters{
		CurSessions:   l.cur.Load(),
		MaxSessions:   l.max.Load(),
		TotalSessions: l.sessions.Load(),
		TotalRequests: l.requests.Load(),
		BytesIn:       l.bytesIn.Load(),
		BytesOut:      l.bytesOut.Load(),
		Responses:     readClasses(&l.responses),
		ConnErrors:    l.connErrors.Load(),
		RespErrors:    l.respErrors.Load(),
		CliAborts:     l.cliAborts.Load(),
		SrvAborts:     l.srvAborts.Load(),
		Retries:       l.retries.Load(),
		Redispatches:  l.redispatches.Load(),
		LBTotal:       l.lbTotal.Load(),
		ChecksFailed:  l.checksFailed.Load(),
		Downs:         l.downs.Load(),
		Downtime:      time.Duration(l.downtime.Load()),
		Sticky:        l.sticky.read(now),
		QueueCur:      l.slots.qlen.Load(),
		QueueMax:      l.slots.qmax.Load(),
	}
	if since := l.downSince.Load(); since != 0 {
		c.Downtime += time.Duration(now.UnixNano() - since)
	}
	if ls := l.lastSession.Load(); ls != 0 {
		c.LastSession = time.Unix(0, ls)
	}
	return c
}

func readClasses(a *[6]atomic64) ResponseClasses {
	var r ResponseClasses
	for i := range a {
		r[i] = a[i].Load()
	}
	return r
}

// clearCounters zeroes max, and when all is set the counters and
// response classes too.
func clearCounters(all bool, max *atomic64, classes *[6]atomic64, counters ...*atomic64) {
	max.Store(0)
	if !all {
		return
	}
	for _, c := range counters {
		c.Store(0)
	}
	for i := range classes {
		classes[i].Store(0)
	}
}

// clear resets max counters, or every counter when all is set.
func (l *serverLive) clear(all bool) {
	clearCounters(all, &l.max, &l.responses, &l.sessions, &l.bytesIn, &l.bytesOut, &l.connErrors, &l.respErrors, &l.cliAborts, &l.srvAborts, &l.retries, &l.redispatches, &l.lbTotal, &l.checksFailed, &l.downs, &l.downtime, &l.requests)
	l.slots.qmax.Store(0)
	if all {
		l.sticky.reset()
	}
}

func (l *backendLive) clear(all bool) {
	clearCounters(all, &l.max, &l.responses, &l.sessions, &l.requests, &l.bytesIn, &l.bytesOut, &l.connErrors, &l.respErrors, &l.cliAborts, &l.srvAborts, &l.retries, &l.redispatches, &l.noServer, &l.lbTotal, &l.downs)
	l.queue.max.Store(0)
	if all {
		l.sticky.reset()
	}
}

func (l *frontendLive) clear(all bool) {
	clearCounters(all, &l.max, &l.responses, &l.sessions, &l.requests, &l.bytesIn, &l.bytesOut, &l.reqErrors)
}
