package haproxycfg

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
)

// parseServer handles "server NAME ADDR[:PORT] [params]".
func (p *parser) parseServer(px *proxy, args []string) {
	name, addr := arg(args, 1), arg(args, 2)
	if name == "" {
		p.errorf("'server' expects <name> and <addr>[:<port>] as arguments.")
		return
	}
	if c, bad := invalidChar(name); bad {
		p.errorf("character '%c' is not permitted in server name '%s'.", c, name)
		return
	}
	if addr == "" {
		p.errorf("server '%s' has no address: expected 'server %s <addr>[:<port>] [params]'.", name, name)
		return
	}
	if isServerKeyword(addr) {
		p.errorf("server '%s' has no address ('%s' is a server keyword): expected 'server %s <addr>[:<port>] %s'.",
			name, addr, name, strings.Join(args[2:], " "))
		return
	}
	ctx := fmt.Sprintf("'server %s/%s'", px.name, name)
	if what, bad := unsupportedFamily(addr); bad {
		p.errorf("%s : %s addresses are not supported by Tether.", ctx, what)
		return
	}
	hp, err := splitHostPort(addr)
	if err != nil {
		p.errorf("%s : %v.", ctx, err)
		return
	}
	if hp.Host == "" || hp.Host == "0.0.0.0" || hp.Host == "::" {
		p.errorf("%s : address '%s' means the client's destination address, which Tether does not support.", ctx, addr)
		return
	}
	srv := cloneServer(px.defsrv)
	srv.Name = name
	srv.Address = hp.Host
	srv.Port, srv.PortSet = hp.Port, hp.PortSet
	if !p.parseServerParams(px, &srv, args, 3, ctx) || !p.checkServerTLS(&srv, ctx) {
		return
	}
	px.be.Servers = append(px.be.Servers, srv)
	px.serverLines = append(px.serverLines, p.line)
}

// parseTemplate handles "server-template PREFIX NUM|LOW-HIGH FQDN[:PORT] [params]".
func (p *parser) parseTemplate(px *proxy, args []string) {
	prefix, rng, fqdn := arg(args, 1), arg(args, 2), arg(args, 3)
	if prefix == "" || rng == "" || fqdn == "" {
		p.errorf("'server-template' expects <prefix> <nb | range> <addr>[:<port>] as arguments.")
		return
	}
	if c, bad := invalidPrefixChar(prefix); bad {
		p.errorf("character '%c' is not permitted in server-template prefix '%s'.", c, prefix)
		return
	}
	low, high, ok := templateRange(rng)
	if !ok {
		p.errorf("Wrong server-template number or range arg '%s'.", rng)
		return
	}
	if high-low+1 > maxTemplateServers {
		p.errorf("server-template range '%s' makes %d servers; Tether allows at most %d per line.", rng, high-low+1, maxTemplateServers)
		return
	}
	ctx := fmt.Sprintf("'server-template %s/%s'", px.name, prefix)
	if what, bad := unsupportedFamily(fqdn); bad {
		p.errorf("%s : %s addresses are not supported by Tether.", ctx, what)
		return
	}
	hp, err := splitHostPort(fqdn)
	if err != nil {
		p.errorf("%s : %v.", ctx, err)
		return
	}
	if hp.Host == "" {
		p.errorf("%s : '%s' has no host name.", ctx, fqdn)
		return
	}
	srv := cloneServer(px.defsrv)
	srv.Port, srv.PortSet = hp.Port, hp.PortSet
	if !p.parseServerParams(px, &srv, args, 4, ctx) || !p.checkServerTLS(&srv, ctx) {
		return
	}
	px.be.Templates = append(px.be.Templates, balancer.ServerTemplate{
		Prefix: prefix, Low: low, High: high, FQDN: hp.Host, Params: srv,
	})
	px.templateLines = append(px.templateLines, p.line)
}

// templateRange parses "N" (1..N) or "LOW-HIGH".
func templateRange(s string) (low, high int, ok bool) {
	if l, h, found := strings.Cut(s, "-"); found {
		low, ok1 := parseUint(l, 1<<31-1)
		high, ok2 := parseUint(h, 1<<31-1)
		if !ok1 || !ok2 || low > high {
			return 0, 0, false
		}
		return low, high, true
	}
	n, ok := parseUint(s, 1<<31-1)
	if !ok || n == 0 {
		return 0, 0, false
	}
	return 1, n, true
}

// parseServerParams applies the server keywords of args[start:] to s. It
// serves server, default-server and server-template lines.
func (p *parser) parseServerParams(px *proxy, s *balancer.Server, args []string, start int, ctx string) bool {
	if ctx == "default-server" {
		ctx = fmt.Sprintf("'default-server' of %s '%s'", px.kind, px.name)
	}
	for i := start; i < len(args) && args[i] != ""; i++ {
		kw := args[i]
		n, implemented, g, known := serverKeyword(kw)
		if !known {
			p.errorf("%s : unknown keyword '%s'.", ctx, kw)
			return false
		}
		v := arg(args, i+1)
		if n == 1 && v == "" {
			p.errorf("%s : '%s' expects an argument.", ctx, kw)
			return false
		}
		if !implemented {
			p.unsupported(g, ctx+" : server keyword '"+kw+"'")
			if g.verdict == refused {
				return false
			}
			i += n
			if kw == "source" {
				for k := i + 1; k+1 < len(args) && (args[k] == "usesrc" || args[k] == "interface"); k += 2 {
					i = k + 1
				}
			}
			continue
		}
		if !p.serverKeyword(s, ctx, kw, v) {
			return false
		}
		i += n
	}
	return true
}

// serverKeyword applies one implemented server keyword.
func (p *parser) serverKeyword(s *balancer.Server, ctx, kw, v string) bool {
	fail := func(format string, a ...any) bool {
		p.errorf("%s : %s", ctx, fmt.Sprintf(format, a...))
		return false
	}
	switch kw {
	case "cookie":
		s.Cookie = v
	case "check":
		s.Check = true
	case "no-check":
		s.Check = false
	case "backup":
		s.Backup = true
	case "no-backup":
		s.Backup = false
	case "disabled":
		s.Disabled = true
	case "enabled":
		s.Disabled = false
	case "inter", "fastinter", "downinter":
		d, rest, err := balancer.ParseHAProxyTime(v, time.Millisecond)
		if err != nil {
			p.timeErr(kw, v, err, time.Millisecond)
			return false
		}
		if d == 0 {
			return fail("invalid value 0 for argument '%s' of server %s.", kw, s.Name)
		}
		if rest != "" {
			p.trailingTimeWarn(v, rest)
		}
		switch kw {
		case "inter":
			s.Inter = d
		case "fastinter":
			s.FastInter = d
		default:
			s.DownInter = d
		}
	case "rise", "fall":
		n, ok := parseUint(v, 1<<31-1)
		if !ok || n == 0 {
			return fail("'%s' has to be > 0.", kw)
		}
		if kw == "rise" {
			s.Rise = n
		} else {
			s.Fall = n
		}
	case "weight":
		n, ok := parseUint(v, 256)
		if !ok {
			return fail("weight of server %s is not within 0 and 256 (%s).", s.Name, v)
		}
		s.Weight = n
	case "maxconn":
		n, ok := parseUint(v, 1<<31-1)
		if !ok {
			return fail("'maxconn' expects a non-negative integer (got '%s').", v)
		}
		s.MaxConn = n
	case "pool-max-conn":
		n, err := strconv.Atoi(v)
		if err != nil {
			return fail("'pool-max-conn' expects an integer (got '%s').", v)
		}
		if n < -1 {
			return fail("'pool-max-conn' must be >= -1.")
		}
		s.IdlePool.MaxIdle, s.IdlePool.MaxIdleSet = n, true
	case "pool-purge-delay":
		d, rest, err := balancer.ParseHAProxyTime(v, time.Millisecond)
		var te *balancer.TimeError
		switch {
		case errors.As(err, &te) && te.Kind == balancer.TimeOverflow:
			return fail("timer overflow in argument '%s' to 'pool-purge-delay' (maximum value is 2147483647 ms or ~24.8 days).", v)
		case errors.As(err, &te) && te.Kind == balancer.TimeBadChar:
			return fail("unexpected character '%c' in argument to <pool-purge-delay>.", te.Char)
		case err != nil:
			return fail("'pool-purge-delay' expects a time (got '%s').", v)
		case rest != "":
			return fail("unexpected character '%c' in argument to <pool-purge-delay>.", rest[0])
		}
		s.IdlePool.PurgeDelay, s.IdlePool.PurgeDelaySet = d, true
	case "port":
		n, ok := parsePort(v)
		if !ok {
			return fail("invalid check port '%s'.", v)
		}
		s.CheckPort = n
	case "resolvers":
		s.Resolvers = v
	case "resolve-prefer":
		if v != "ipv4" && v != "ipv6" {
			return fail("'resolve-prefer' expects either ipv4 or ipv6 as argument.")
		}
		s.ResolvePrefer = v
	case "resolve-opts":
		for _, o := range strings.Split(v, ",") {
			switch o {
			case "allow-dup-ip":
				s.AllowDupIP = true
			case "prevent-dup-ip":
				s.AllowDupIP = false
			case "ignore-weight":
				return fail("'resolve-opts ignore-weight' is not supported by Tether (DNS SRV weights would be ignored).")
			default:
				return fail("'resolve-opts' : unknown resolve-opts option '%s', supported methods are 'allow-dup-ip', 'ignore-weight', and 'prevent-dup-ip'.", o)
			}
		}
	case "ssl":
		s.SSL = true
	case "no-ssl":
		s.SSL = false
	case "check-ssl":
		s.CheckSSL = true
	case "no-check-ssl":
		s.CheckSSL = false
	case "verify":
		if v != "none" && v != "required" {
			return fail("'verify' : unknown verify method '%s', only 'none' and 'required' are supported.", v)
		}
		s.TLS.Verify = v
	case "ca-file":
		s.TLS.CAFile = p.cfg.Global.SSLDefaultBind.WithCABase(v)
	case "crt":
		s.TLS.Crt = p.cfg.Global.SSLDefaultBind.WithCrtBase(v)
	case "sni":
		if err := balancer.CheckSNI(v); err != nil {
			return fail("%v.", err)
		}
		s.TLS.SNI = v
	case "init-addr":
		methods, err := parseInitAddr(v)
		if err != nil {
			return fail("'init-addr' : %v.", err)
		}
		s.InitAddr = methods
	default:
		return fail("keyword '%s' is not handled.", kw)
	}
	return true
}

// parseInitAddr reads an init-addr method list.
func parseInitAddr(v string) ([]string, error) {
	var methods []string
	ipSeen := false
	for _, m := range strings.Split(v, ",") {
		switch m {
		case "":
			continue
		case "last", "libc", "none":
			methods = append(methods, m)
			continue
		}
		ip, err := netip.ParseAddr(m)
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("unknown init-addr method '%s', supported methods are 'libc', 'last', 'none'", m)
		}
		if ipSeen {
			return nil, fmt.Errorf("initial address already specified, cannot add '%s'", m)
		}
		ipSeen = true
		methods = append(methods, ip.String())
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("'%s' names no method", v)
	}
	return methods, nil
}

// defaultInitAddr is HAProxy's init-addr when none is given: last,libc, and
// none as well when the server uses resolvers.
func defaultInitAddr(s *balancer.Server) []string {
	if s.Resolvers != "" {
		return []string{"last", "libc", "none"}
	}
	return []string{"last", "libc"}
}

// fillServer sets the values HAProxy derives when a file leaves them unset.
func fillServer(s *balancer.Server) {
	if s.FastInter == 0 {
		s.FastInter = s.Inter
	}
	if s.DownInter == 0 {
		s.DownInter = s.Inter
	}
	if len(s.InitAddr) == 0 {
		s.InitAddr = defaultInitAddr(s)
	}
}

// checkServerTLS applies ssl-server-verify to a TLS server that sets no
// verify, refuses one HAProxy would refuse or whose global
// ssl-default-server-* settings Tether would ignore, and reads its CA and
// certificate files as HAProxy does when it loads the file.
func (p *parser) checkServerTLS(s *balancer.Server, ctx string) bool {
	if !s.SSL && !s.CheckSSL {
		return true
	}
	if s.TLS.Verify == "" && p.sslServerVerify != "" {
		s.TLS.Verify = p.sslServerVerify
	}
	for _, kw := range []string{"ssl-default-server-options", "ssl-default-server-ciphers", "ssl-default-server-ciphersuites"} {
		if line, ok := p.sslServerLines[kw]; ok {
			p.errorf("%s : uses TLS, and the global '%s' (line %d) is not supported by Tether (TLS settings of server connections).", ctx, kw, line)
			return false
		}
	}
	if s.TLS.VerifyRequired() && s.TLS.CAFile == "" {
		p.errorf("%s : verify is enabled by default but no CA file specified. If you're running on a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line, or use 'ssl-server-verify none' in the global section to disable server-side verifications by default.", ctx)
		return false
	}
	if err := balancer.CheckServerTLS(*s); err != nil {
		p.errorf("%s : %v.", ctx, err)
		return false
	}
	return true
}
