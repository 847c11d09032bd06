package haproxycfg

import (
	"sort"
	"strconv"
	"strings"

	"tether/balancer"
)

// finish builds the Config from the parsed sections, fills HAProxy's
// defaults and checks the references between sections.
func (p *parser) finish() {
	g := &p.cfg.Global
	g.StatsSockets = p.sockets
	p.checkTLSBinds()
	if !p.global.timeout {
		g.StatsTimeout = defaultStatsTimeout
	}
	if !p.global.maxconn {
		g.StatsMaxConn = defaultStatsMaxConn
	}
	// HAProxy keeps at most half of a buffer for rewrites.
	size, rewrite := g.BufSize, g.MaxRewrite
	if size == 0 {
		size = balancer.DefaultBufSize
	}
	if rewrite == 0 {
		rewrite = balancer.DefaultMaxRewrite
	}
	if rewrite >= size/2 {
		g.MaxRewrite = size / 2
	}

	ids := make([]int, 0, len(p.proxies)+1)
	for i, px := range p.proxies {
		if i == p.apiProxyAt {
			ids = append(ids, balancer.RuntimeAPIProxy)
		}
		ids = append(ids, px.id)
	}
	if p.apiProxyAt >= 0 && p.apiProxyAt == len(p.proxies) {
		ids = append(ids, balancer.RuntimeAPIProxy)
	}
	// HAProxy numbers proxies once every explicit ID is known.
	var assigned []int
	for i, id := range balancer.AssignProxyIDs(ids) {
		if ids[i] != balancer.RuntimeAPIProxy {
			assigned = append(assigned, id)
		}
	}

	backends := map[string]bool{}
	for _, px := range p.proxies {
		if px.hasBE() {
			backends[px.name] = true
		}
	}
	for i, px := range p.proxies {
		if px.hasFE() && len(px.fe.Binds) == 0 {
			p.warnAt(px.line, "%s '%s' has no 'bind' directive. Please declare it as a backend if this was intended.", px.kind, px.name)
		}
		if px.mode == "" {
			p.warnAt(px.line, "%s '%s' has no 'mode http': HAProxy would run it in tcp mode, where cookies are ignored; Tether runs it in HTTP mode.", px.kind, px.name)
		}
		if px.hasFE() && len(px.fe.Logs) > 0 && !px.fe.HTTPLog && px.fe.LogFormat == "" {
			p.warnAt(px.line, "%s '%s' has log targets but neither 'option httplog' nor 'log-format': Tether writes only HTTP log lines, so it logs nothing for it.", px.kind, px.name)
		}
		if px.hasFE() {
			fe := px.fe
			fe.Name, fe.ID = px.name, assigned[i]
			if fe.DefaultBackend == "" && px.kind == secListen {
				fe.DefaultBackend = px.name
			}
			if fe.DefaultBackend != "" && !backends[fe.DefaultBackend] {
				line := px.defaultBackendLine
				if line == 0 {
					line = px.line
				}
				p.errorAt(line, "%s '%s': unable to find required default_backend: '%s'.", px.kind, px.name, fe.DefaultBackend)
			}
			for j, ub := range fe.UseBackends {
				if !backends[ub.Backend] {
					p.errorAt(px.useBackendLines[j], "%s '%s': unable to find required use_backend: '%s'.", px.kind, px.name, ub.Backend)
				}
			}
			p.cfg.Frontends = append(p.cfg.Frontends, fe)
		}
		if px.hasBE() {
			be := p.finishBackend(px)
			be.ID = assigned[i]
			p.cfg.Backends = append(p.cfg.Backends, be)
		}
	}
}

// finishBackend completes one backend and checks its servers.
func (p *parser) finishBackend(px *proxy) balancer.Backend {
	be := px.be
	be.Name = px.name
	if be.HTTPCheck != nil {
		hc := *be.HTTPCheck
		hc.Method = or(px.checkSend.Method, hc.Method)
		hc.URI = or(px.checkSend.URI, hc.URI)
		hc.Version = or(px.checkSend.Version, hc.Version)
		hc.ExpectStatus = px.expectStatus
		be.HTTPCheck = &hc
	} else {
		for _, l := range []int{px.checkSendLine, px.expectLine} {
			if l != 0 {
				p.warnAt(l, "'http-check' has no effect in %s '%s' without 'option httpchk'.", px.kind, px.name)
			}
		}
	}
	if be.Cookie != nil {
		be.Cookie = be.Cookie.Clone()
	}

	// Server names must be unique, templates included, in line order.
	type entry struct {
		line  int
		names []string
		res   string
		label string
	}
	var entries []entry
	for i := range be.Servers {
		fillServer(&be.Servers[i])
		s := be.Servers[i]
		if s.Check && !s.PortSet && s.CheckPort == 0 {
			p.errorAt(px.serverLines[i], "backend '%s': server '%s' has neither service port nor check port.", px.name, s.Name)
		}
		entries = append(entries, entry{px.serverLines[i], []string{s.Name}, s.Resolvers, "'server " + px.name + "/" + s.Name + "'"})
	}
	for i := range be.Templates {
		t := &be.Templates[i]
		fillServer(&t.Params)
		if t.Params.Check && !t.Params.PortSet && t.Params.CheckPort == 0 && !strings.HasPrefix(t.FQDN, "_") {
			p.errorAt(px.templateLines[i], "backend '%s': server-template '%s' has neither service port nor check port.", px.name, t.Prefix)
		}
		entries = append(entries, entry{px.templateLines[i], t.Names(), t.Params.Resolvers, "'server-template " + px.name + "/" + t.Prefix + "'"})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].line < entries[j].line })
	seen := map[string]int{}
	for _, e := range entries {
		for _, n := range e.names {
			if l, dup := seen[n]; dup {
				p.errorAt(e.line, "%s '%s', another server named '%s' was already defined at line %d, please use distinct names.", px.kind, px.name, n, l)
				break
			}
			seen[n] = e.line
		}
		if e.res != "" {
			p.checkResolvers(e.line, e.label, e.res)
		}
	}
	return be
}

// checkResolvers checks that a server's resolvers section exists. Like
// HAProxy, a missing section named "default" is created, reading
// /etc/resolv.conf.
func (p *parser) checkResolvers(line int, label, name string) {
	if _, ok := p.resLines[name]; ok {
		return
	}
	if name == "default" {
		r := newResolvers(name)
		r.ParseResolvConf = true
		p.cfg.Resolvers = append(p.cfg.Resolvers, r)
		p.resLines[name] = line
		return
	}
	p.errorAt(line, "%s : unable to find required resolvers '%s'.", label, name)
}

// itoa is strconv.Itoa, named for brevity in the writer.
func itoa(n int) string { return strconv.Itoa(n) }
