package haproxycfg

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
	"tether/balancer/rules"
)

// HAProxy's defaults for values a file leaves unset.
const (
	defaultStatsTimeout   = 10 * time.Second
	defaultStatsMaxConn   = 10
	defaultRetries        = 3
	defaultRedispatch     = -1
	defaultWeight         = 1
	defaultInter          = 2 * time.Second
	defaultRise           = 2
	defaultFall           = 3
	defaultPayloadSize    = 512
	defaultResolveRetries = 3
	defaultTimeoutResolve = time.Second
	defaultTimeoutRetry   = time.Second
	defaultCheckMethod    = "OPTIONS"
	defaultCheckURI       = "/"
	defaultCheckVersion   = "HTTP/1.0"
	// maxTemplateServers bounds the servers one server-template line makes.
	maxTemplateServers = 10000
)

// defaultHold returns the hold periods of a resolvers section HAProxy uses
// when the file sets none.
func defaultHold() map[string]time.Duration {
	return map[string]time.Duration{
		"nx": 30 * time.Second, "refused": 30 * time.Second, "timeout": 30 * time.Second,
		"other": 30 * time.Second, "valid": 10 * time.Second, "obsolete": 0,
	}
}

// holdEvents lists the hold events in HAProxy's documentation order.
const holdEvents = "nx refused timeout other valid obsolete"

type sectionKind int

const (
	secNone sectionKind = iota
	secGlobal
	secDefaults
	secFrontend
	secBackend
	secListen
	secResolvers
	secIgnored
)

func (k sectionKind) String() string {
	switch k {
	case secGlobal:
		return "global"
	case secDefaults:
		return "defaults"
	case secFrontend:
		return "frontend"
	case secBackend:
		return "backend"
	case secListen:
		return "listen"
	case secResolvers:
		return "resolvers"
	}
	return "unknown"
}

// proxy is a defaults, frontend, backend or listen section being parsed.
type proxy struct {
	kind sectionKind
	name string
	line int
	mode string // "http" once "mode http" is seen (or inherited)
	id   int    // the "id" keyword's value, 0 when none

	fe                 balancer.Frontend
	defaultBackendLine int
	// acls checks the acl lines and conditions of the frontend part as
	// they are read; useBackendLines are the lines of its use_backend
	// rules, for errors found once every backend is known.
	acls            *rules.Set
	readFiles       map[string]string
	useBackendLines []int
	be              balancer.Backend
	defsrv          balancer.Server
	serverLines     []int
	templateLines   []int

	// explicitUse and implicitUse record how a named defaults section is used.
	explicitUse, implicitUse bool

	// http-check send and expect status, applied when the proxy is
	// complete (they need option httpchk).
	checkSend     balancer.HTTPCheck
	checkSendLine int
	expectStatus  int
	expectLine    int
}

func (p *proxy) hasFE() bool { return p.kind != secBackend }
func (p *proxy) hasBE() bool { return p.kind != secFrontend }

// newProxy returns a proxy holding HAProxy's built-in defaults.
func newProxy(kind sectionKind, name string, line int) *proxy {
	return &proxy{
		kind: kind, name: name, line: line,
		be: balancer.Backend{
			Balance:            balancer.RoundRobin,
			Retries:            defaultRetries,
			RedispatchInterval: defaultRedispatch,
		},
		defsrv: balancer.Server{
			Weight: defaultWeight, Inter: defaultInter, Rise: defaultRise, Fall: defaultFall,
		},
	}
}

// inherit copies the settings of the defaults section d into p.
func (p *proxy) inherit(d *proxy) {
	p.mode = d.mode
	p.fe = balancer.Frontend{
		DefaultBackend:       d.fe.DefaultBackend,
		ForwardFor:           d.fe.ForwardFor,
		ForwardForOptions:    d.fe.ForwardForOptions,
		MaxConn:              d.fe.MaxConn,
		TimeoutClient:        d.fe.TimeoutClient,
		TimeoutHTTPRequest:   d.fe.TimeoutHTTPRequest,
		TimeoutHTTPKeepAlive: d.fe.TimeoutHTTPKeepAlive,
		TimeoutClientFin:     d.fe.TimeoutClientFin,
		Logs:                 cloneLogs(d.fe.Logs),
		HTTPLog:              d.fe.HTTPLog,
		DontLogNull:          d.fe.DontLogNull,
		LogFormat:            d.fe.LogFormat,
		LogTag:               d.fe.LogTag,
	}
	p.defaultBackendLine = d.defaultBackendLine
	p.be = d.be
	p.be.Name = ""
	p.be.Cookie = d.be.Cookie.Clone()
	if d.be.HTTPCheck != nil {
		hc := *d.be.HTTPCheck
		p.be.HTTPCheck = &hc
	}
	p.be.Servers, p.be.Templates = nil, nil
	p.defsrv = cloneServer(d.defsrv)
	p.checkSend, p.checkSendLine = d.checkSend, d.checkSendLine
	p.expectStatus, p.expectLine = d.expectStatus, d.expectLine
}

func cloneServer(s balancer.Server) balancer.Server {
	s.InitAddr = append([]string(nil), s.InitAddr...)
	if len(s.InitAddr) == 0 {
		s.InitAddr = nil
	}
	return s
}

// parser holds the state of one Parse call.
type parser struct {
	file  string
	env   lookupEnv
	line  int
	errs  []*Error
	warns []Warning

	cfg      balancer.Config
	section  sectionKind
	cur      *proxy              // current defaults/frontend/backend/listen
	defaults *proxy              // the defaults applying to the next proxy
	named    map[string]*proxy   // named defaults sections
	proxies  []*proxy            // frontends, backends and listens in order
	res      *balancer.Resolvers // current resolvers section
	resLines map[string]int      // resolvers name -> line
	nsLines  map[string]int      // nameserver name -> line, per section
	sockets  []balancer.StatsSocket
	global   struct {
		timeout, maxconn bool
		zeroWarningLine  int // the line of "zero-warning", 0 when absent
	}
	// vars are the variables set or unset by setenv and its siblings;
	// envCleared tells that resetenv dropped the others.
	vars       map[string]envVar
	envCleared bool
	// apiProxyAt is how many proxies were declared before the first
	// "stats" line of the global section, where HAProxy creates its Runtime
	// API proxy; -1 when there is none.
	apiProxyAt int
	// tlsBinds are the TLS bind lines, whose certificates are loaded once
	// the global ssl-default-bind-* lines are all known.
	tlsBinds []tlsBindLine
	// sslLines are the lines of the global TLS keywords, by keyword.
	sslLines map[string]int
	// sslServerVerify is ssl-server-verify ("" when absent), the verify
	// default of TLS servers; sslServerLines are the lines of the
	// ssl-default-server-* keywords, which Tether refuses for TLS servers.
	sslServerVerify string
	sslServerLines  map[string]int
}

func newParser(file string, env lookupEnv) *parser {
	return &parser{
		file:       file,
		env:        env,
		named:      map[string]*proxy{},
		resLines:   map[string]int{},
		vars:       map[string]envVar{},
		apiProxyAt: -1,
	}
}

func (p *parser) errorf(format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) errorAt(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(format string, args ...any) {
	p.warns = append(p.warns, Warning{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warnAt(line int, format string, args ...any) {
	p.warns = append(p.warns, Warning{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// run parses every line of src, then checks references and fills defaults.
func (p *parser) run(src []byte) {
	for len(src) > 0 {
		p.line++
		var line []byte
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			line, src = src, nil
		}
		args, err := splitLine(string(line), p.lookupVar)
		if err != nil {
			p.errorf("%v", err)
			continue
		}
		if len(args) == 0 {
			continue
		}
		p.parseLine(args)
	}
	p.finish()
}

// parseLine handles one tokenised line.
func (p *parser) parseLine(args []string) {
	kw := args[0]
	if strings.HasPrefix(kw, ".") {
		p.parseDirective(args)
		return
	}
	// "no option x" / "default option x".
	neg := ""
	if (kw == "no" || kw == "default") && len(args) > 1 {
		neg, args = kw, args[1:]
		if args[0] != "option" && !(p.section == secGlobal && hasWord("log busy-polling set-dumpable strict-limits insecure-fork-wanted", args[0])) {
			p.errorf("negation/default currently supported only for options, log, busy-polling, set-dumpable, strict-limits, and insecure-fork-wanted.")
			return
		}
		kw = args[0]
		if neg == "default" && p.section != secGlobal {
			p.errorf("'default %s' is not supported by Tether; set the value explicitly.", strings.Join(wordsUpTo(args, 2), " "))
			return
		}
	}
	if neg == "" && p.startSection(args) {
		return
	}
	switch p.section {
	case secNone:
		p.errorf("unknown keyword '%s' out of section.", kw)
	case secGlobal:
		p.parseGlobal(args, neg)
	case secDefaults, secFrontend, secBackend, secListen:
		p.parseProxy(args, neg)
	case secResolvers:
		p.parseResolvers(args)
	case secIgnored:
		// The section header was warned about once.
	}
}

// parseDirective handles HAProxy's ".if"-style directives.
func (p *parser) parseDirective(args []string) {
	switch args[0] {
	case ".if", ".elif", ".else", ".endif":
		p.errorf("conditional block directive '%s' is not supported by Tether", args[0])
	case ".notice", ".warning", ".diag":
		p.warnf("'%s' message ignored: %s", args[0], strings.Join(args[1:], " "))
	case ".alert":
		p.errorf("%s", strings.Join(args[1:], " "))
	default:
		p.errorf("unknown directive '%s'", args[0])
	}
}

// startSection opens a new section when args is a section header.
func (p *parser) startSection(args []string) bool {
	kw := args[0]
	switch kw {
	case "global":
		p.endSection()
		p.section = secGlobal
		if len(args) > 1 {
			p.warnf("'global' section takes no argument; '%s' ignored", args[1])
		}
	case "defaults", "frontend", "backend", "listen":
		p.endSection()
		p.openProxy(args)
	case "resolvers":
		p.endSection()
		p.openResolvers(args)
	default:
		g, known := otherSections.lookup(kw)
		if !known {
			return false
		}
		p.endSection()
		p.section = secIgnored
		p.warnf("'%s' sections are not supported by Tether (%s); section ignored.", kw, g.why)
	}
	return true
}

// endSection closes the current section.
func (p *parser) endSection() {
	p.cur = nil
	p.res = nil
	p.section = secNone
}

// openProxy starts a defaults, frontend, backend or listen section.
func (p *parser) openProxy(args []string) {
	kinds := map[string]sectionKind{"defaults": secDefaults, "frontend": secFrontend, "backend": secBackend, "listen": secListen}
	kind := kinds[args[0]]
	name, from := "", ""
	rest := args[1:]
	if len(rest) > 0 && rest[0] != "from" {
		name, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 && rest[0] != "from" && kind != secDefaults {
		p.errorf("please use the 'bind' keyword for listening addresses.")
		rest = rest[1:]
	}
	if len(rest) >= 2 && rest[0] == "from" {
		from, rest = rest[1], rest[2:]
	} else if len(rest) == 1 && rest[0] == "from" {
		p.errorf("'from' expects a defaults section name as argument.")
		rest = nil
	}
	if len(rest) > 0 {
		p.errorf("'%s' : unexpected argument '%s'.", args[0], rest[0])
	}
	if kind != secDefaults && name == "" {
		p.errorf("'%s' expects <name> as an argument.", args[0])
		name = fmt.Sprintf("<unnamed-%d>", p.line)
	}
	if name != "" {
		if c, bad := invalidChar(name); bad {
			p.errorf("character '%c' is not permitted in '%s' name '%s'.", c, args[0], name)
		}
	}
	px := newProxy(kind, name, p.line)
	// A defaults section starts afresh; other sections take the last
	// defaults section, or the one named by "from". HAProxy refuses a named
	// defaults section used both ways.
	var base *proxy
	if kind != secDefaults {
		base = p.defaults
	}
	if from != "" {
		base = nil
		d, ok := p.named[from]
		switch {
		case !ok:
			p.errorf("%s '%s' : unable to find defaults section '%s'.", args[0], name, from)
		default:
			base = d
			d.explicitUse = true
		}
	} else if base != nil {
		base.implicitUse = true
	}
	if base != nil && base.explicitUse && base.implicitUse {
		p.warnf("defaults section '%s' (declared at %s:%d) is explicitly referenced by another proxy and implicitly used here. To avoid any ambiguity don't mix both usage. Add a last defaults section not explicitly used or always use explicit references.", base.name, p.file, base.line)
	}
	if base != nil {
		px.inherit(base)
	}
	p.section = kind
	p.cur = px
	if kind == secDefaults {
		p.defaults = px
		if name != "" {
			p.named[name] = px
		}
		return
	}
	// Name clashes, HAProxy's way: frontends with frontends and listens,
	// backends with backends and listens.
	for _, o := range p.proxies {
		if o.name != name {
			continue
		}
		if (px.hasFE() && o.hasFE()) || (px.hasBE() && o.hasBE()) {
			p.errorf("%s '%s' has the same name as %s '%s' declared at %s:%d.", kind, name, o.kind, o.name, p.file, o.line)
			break
		}
	}
	p.proxies = append(p.proxies, px)
}

// openResolvers starts a resolvers section.
func (p *parser) openResolvers(args []string) {
	p.section = secResolvers
	if len(args) < 2 {
		p.errorf("missing name for resolvers section.")
		p.section = secIgnored
		return
	}
	name := args[1]
	if c, bad := invalidChar(name); bad {
		p.errorf("character '%c' is not permitted in 'resolvers' name '%s'.", c, name)
	}
	if len(args) > 2 {
		p.errorf("'resolvers' : unexpected argument '%s'.", args[2])
	}
	if l, dup := p.resLines[name]; dup {
		p.errorf("resolvers '%s' has same name as another resolvers (declared at %s:%d).", name, p.file, l)
	}
	p.resLines[name] = p.line
	p.cfg.Resolvers = append(p.cfg.Resolvers, newResolvers(name))
	p.res = &p.cfg.Resolvers[len(p.cfg.Resolvers)-1]
	p.nsLines = map[string]int{}
}

func newResolvers(name string) balancer.Resolvers {
	return balancer.Resolvers{
		Name:                name,
		AcceptedPayloadSize: defaultPayloadSize,
		ResolveRetries:      defaultResolveRetries,
		TimeoutResolve:      defaultTimeoutResolve,
		TimeoutRetry:        defaultTimeoutRetry,
		Hold:                defaultHold(),
	}
}

// parseGlobal handles a line of the global section.
func (p *parser) parseGlobal(args []string, neg string) {
	kw := args[0]
	if kw == "stats" && len(args) > 1 && neg == "" {
		if p.apiProxyAt < 0 && hasWord("socket timeout maxconn", args[1]) {
			p.apiProxyAt = len(p.proxies)
		}
		switch args[1] {
		case "socket":
			p.parseStatsSocket(args)
			return
		case "timeout":
			if len(args) < 3 {
				p.errorf("'stats timeout' expects a timeout value.")
				return
			}
			d, rest, err := balancer.ParseHAProxyTime(args[2], time.Millisecond)
			switch {
			case err != nil:
				p.timeErr("stats timeout", args[2], err, time.Millisecond)
			case d == 0:
				p.errorf("'stats timeout' expects a positive value")
			default:
				if rest != "" {
					p.trailingTimeWarn(args[2], rest)
				}
				p.cfg.Global.StatsTimeout = d
				p.global.timeout = true
			}
			return
		case "maxconn":
			n, ok := parseUint(arg(args, 2), 1<<31-1)
			if !ok || n == 0 {
				p.errorf("'stats maxconn' expects a positive value")
				return
			}
			p.cfg.Global.StatsMaxConn = n
			p.global.maxconn = true
			return
		}
	}
	if neg != "" {
		// "no log", "no busy-polling" …: HAProxy's defaults, Tether's behaviour.
		return
	}
	if kw == "stats" && arg(args, 1) == "bind-process" {
		p.warnf("'stats bind-process' is not supported by Tether (process management); ignored.")
		return
	}
	switch kw {
	case "log":
		p.parseLog(args, &p.cfg.Global.Logs, nil)
		return
	case "log-tag":
		if arg(args, 1) == "" {
			p.errorf("'log-tag' expects a tag for use in syslog.")
			return
		}
		p.cfg.Global.LogTag = args[1]
		return
	case "log-send-hostname":
		p.cfg.Global.LogSendHostname, p.cfg.Global.LogHostname = true, arg(args, 1)
		return
	case "ssl-server-verify":
		switch v := arg(args, 1); v {
		case "none", "required":
			p.sslServerVerify = v
		default:
			p.errorf("'ssl-server-verify' expects 'none' or 'required'.")
		}
		return
	case "ssl-default-server-options", "ssl-default-server-ciphers", "ssl-default-server-ciphersuites":
		// Refused in checkServerTLS once a server uses TLS; a warning
		// otherwise, as they change nothing.
		if p.sslServerLines == nil {
			p.sslServerLines = make(map[string]int)
		}
		p.sslServerLines[kw] = p.line
		p.warnf("'%s' is not supported by Tether (TLS tuning of server connections); ignored while no server uses TLS.", kw)
		return
	case "ssl-default-bind-options", "ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites", "crt-base", "ca-base":
		p.parseSSLDefaultBind(args)
		return
	case "maxconn":
		if n, ok := p.globalInt(args, 0); ok {
			p.cfg.Global.MaxConn = n
		}
		return
	case "tune.bufsize":
		if n, ok := p.globalInt(args, 1); ok {
			// HAProxy rounds the size up to two pointers (16 bytes), in an
			// int that must stay positive.
			if n = (n + 15) &^ 15; n > 1<<31-1 {
				p.errorf("'tune.bufsize' expects a positive integer argument.")
				return
			}
			p.cfg.Global.BufSize = n
		}
		return
	case "tune.maxrewrite":
		n, ok := p.globalInt(args, 0)
		switch {
		case !ok:
		case n == 0:
			p.errorf("'tune.maxrewrite 0' is not supported by Tether (0 stands for the default, 1024); use 1 or more.")
		default:
			p.cfg.Global.MaxRewrite = n
		}
		return
	case "setenv", "presetenv", "unsetenv", "resetenv":
		p.parseEnvKeyword(args)
		return
	case "zero-warning":
		if len(args) > 1 {
			p.errorf("'zero-warning' cannot handle unexpected argument '%s'.", args[1])
			return
		}
		p.global.zeroWarningLine = p.line
		return
	}
	g, known := globalKeywords.lookup(kw)
	if !known {
		p.errorf("unknown keyword '%s' in 'global' section", kw)
		return
	}
	p.unsupported(g, "'"+strings.Join(wordsUpTo(args, 2), " ")+"'")
}

// globalInt parses the integer argument of a global keyword, at least min,
// reporting an error otherwise.
func (p *parser) globalInt(args []string, min int) (int, bool) {
	if len(args) > 2 {
		p.errorf("'%s' cannot handle unexpected argument '%s'.", args[0], args[2])
		return 0, false
	}
	n, ok := parseUint(arg(args, 1), 1<<31-1)
	if !ok || n < min {
		if min > 0 {
			p.errorf("'%s' expects a positive integer argument.", args[0])
		} else {
			p.errorf("'%s' expects a non-negative integer argument.", args[0])
		}
		return 0, false
	}
	return n, true
}

// parseEnvKeyword handles setenv, presetenv, unsetenv and resetenv, which
// change the variables that later lines of the file expand, as in HAProxy.
func (p *parser) parseEnvKeyword(args []string) {
	kw := args[0]
	switch kw {
	case "setenv", "presetenv":
		if len(args) != 3 {
			p.errorf("'%s' expects exactly 2 arguments.", kw)
			return
		}
		if _, set := p.lookupVar(args[1]); kw == "presetenv" && set {
			return
		}
		p.vars[args[1]] = envVar{value: args[2], set: true}
	case "unsetenv":
		if len(args) < 2 {
			p.errorf("'%s' expects at least 1 argument.", kw)
			return
		}
		for _, name := range args[1:] {
			p.vars[name] = envVar{}
		}
	case "resetenv":
		keep := map[string]envVar{}
		for _, name := range args[1:] {
			if v, set := p.lookupVar(name); set {
				keep[name] = envVar{value: v, set: true}
			}
		}
		p.vars, p.envCleared = keep, true
	}
}

// envVar is a variable set or unset by the file itself.
type envVar struct {
	value string
	set   bool
}

// lookupVar reads a variable as the file's lines see it: the process
// environment changed by setenv, presetenv, unsetenv and resetenv.
func (p *parser) lookupVar(name string) (string, bool) {
	if v, ok := p.vars[name]; ok {
		return v.value, v.set
	}
	if p.envCleared || p.env == nil {
		return "", false
	}
	return p.env(name)
}

// unsupported reports a keyword Tether does not implement, as its group
// says: an error for a refused keyword, a warning for a warned one.
func (p *parser) unsupported(g keywordGroup, what string) {
	switch g.verdict {
	case refused:
		p.errorf("%s is not supported by Tether (%s).", what, g.why)
	case warned:
		p.warnf("%s is not supported by Tether (%s); ignored.", what, g.why)
	}
}

// parseStatsSocket handles "stats socket ADDR [params]".
func (p *parser) parseStatsSocket(args []string) {
	addr := arg(args, 2)
	if addr == "" {
		p.errorf("'stats socket' expects an address or a path.")
		return
	}
	sock := balancer.StatsSocket{Level: balancer.LevelOperator}
	norm, err := statsSocketAddr(addr)
	if err != nil {
		p.errorf("'stats socket' : %v", err)
		return
	}
	sock.Address = norm
	for i := 3; i < len(args) && args[i] != ""; i++ {
		kw := args[i]
		g, known := statsParams.lookup(kw)
		if !known {
			g, known = bindParams.lookup(kw)
		}
		if !known {
			p.errorf("'stats socket' : unknown keyword '%s'.", kw)
			return
		}
		n := g.args
		if n == 1 && arg(args, i+1) == "" {
			p.errorf("'stats socket' : '%s' : missing value.", kw)
			return
		}
		switch kw {
		case "level":
			v := args[i+1]
			switch v {
			case "user":
				sock.Level = balancer.LevelUser
			case "operator":
				sock.Level = balancer.LevelOperator
			case "admin":
				sock.Level = balancer.LevelAdmin
			default:
				p.errorf("'stats socket' : 'level' only supports 'user', 'operator', and 'admin' (got '%s')", v)
				return
			}
		case "severity-output":
			switch v := args[i+1]; v {
			case "none":
				sock.SeverityOutput = ""
			case "number", "string":
				sock.SeverityOutput = v
			default:
				p.errorf("'stats socket' : 'severity-output' only supports 'none', 'number', and 'string' (got '%s')", v)
				return
			}
		case "mode":
			m, err := strconv.ParseUint(args[i+1], 8, 32)
			if err != nil || m > 0o7777 {
				p.errorf("'stats socket' : 'mode' : invalid octal mode '%s'.", args[i+1])
				return
			}
			if m == 0 {
				p.errorf("'stats socket' : 'mode 0' is not supported by Tether (mode 0 means the default, 600)")
				return
			}
			sock.Mode = uint32(m)
		default:
			p.unsupported(g, "'stats socket' parameter '"+kw+"'")
		}
		i += n
	}
	p.sockets = append(p.sockets, sock)
}

// statsSocketAddr normalises a stats socket address to a path, or to
// "ipv4@IP:PORT" / "ipv6@[IP]:PORT".
func statsSocketAddr(addr string) (string, error) {
	if path, ok := strings.CutPrefix(addr, "unix@"); ok {
		if path == "" {
			return "", fmt.Errorf("missing path in '%s'", addr)
		}
		return path, nil
	}
	if strings.HasPrefix(addr, "/") {
		return addr, nil
	}
	hp, err := splitHostPort(addr)
	if err != nil {
		return "", err
	}
	if !hp.PortSet {
		return "", fmt.Errorf("missing port specification in '%s'", addr)
	}
	host := hp.Host
	switch {
	case host == "" && hp.Family == "ipv6":
		host = "::"
	case host == "":
		host = "0.0.0.0"
	}
	if strings.Contains(host, ":") {
		return "ipv6@" + joinHostPort(host, hp.Port), nil
	}
	if !isIPv4(host) {
		return "", fmt.Errorf("'%s' is not an IP address; Tether needs one for a TCP stats socket", host)
	}
	return "ipv4@" + joinHostPort(host, hp.Port), nil
}

func isIPv4(s string) bool {
	if strings.Count(s, ".") != 3 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if _, ok := parseUint(part, 255); !ok {
			return false
		}
	}
	return true
}

// parseResolvers handles a line of a resolvers section.
func (p *parser) parseResolvers(args []string) {
	r := p.res
	switch args[0] {
	case "nameserver":
		name, addr := arg(args, 1), arg(args, 2)
		if name == "" || addr == "" {
			p.errorf("'nameserver' expects <name> and <addr>[:<port>] as arguments.")
			return
		}
		if l, dup := p.nsLines[name]; dup {
			p.errorf("nameserver '%s' has same name as another nameserver (declared at %s:%d).", name, p.file, l)
			return
		}
		ns := balancer.Nameserver{Name: name}
		a := addr
		switch {
		case strings.HasPrefix(a, "tcp@"):
			ns.TCP, a = true, a[4:]
		case strings.HasPrefix(a, "udp@"):
			a = a[4:]
		}
		hp, err := splitHostPort(a)
		switch {
		case err != nil:
			p.errorf("'nameserver %s' : %v", name, err)
			return
		case !hp.PortSet:
			p.errorf("'nameserver %s' : missing port specification in '%s'", name, addr)
			return
		case hp.Host == "":
			p.errorf("'nameserver %s' : missing address in '%s'", name, addr)
			return
		case badNumericHost(hp.Host):
			p.errorf("'nameserver %s' : invalid address: '%s' in '%s'", name, hp.Host, addr)
			return
		}
		ns.Address = joinHostPort(hp.Host, hp.Port)
		p.nsLines[name] = p.line
		r.Nameservers = append(r.Nameservers, ns)
	case "accepted_payload_size":
		v := arg(args, 1)
		n, ok := parseUint(v, 1<<20)
		if !ok || n < 12 || n > 65535 {
			p.errorf("'accepted_payload_size' must be between 12 and 65535 inclusive (was %s).", v)
			return
		}
		r.AcceptedPayloadSize = n
	case "resolve_retries":
		n, ok := parseUint(arg(args, 1), 1<<31-1)
		if !ok || n == 0 {
			p.errorf("'resolve_retries' expects a positive integer argument.")
			return
		}
		r.ResolveRetries = n
	case "timeout":
		which, v := arg(args, 1), arg(args, 2)
		if which != "resolve" && which != "retry" || v == "" {
			p.errorf("'timeout' expects 'retry' or 'resolve' and <time> as arguments got '%s'.", which)
			return
		}
		d, rest, err := balancer.ParseHAProxyTime(v, time.Millisecond)
		switch {
		case err != nil:
			p.timeErr("timeout "+which, v, err, time.Millisecond)
			return
		case d == 0:
			p.errorf("'timeout %s' expects a positive value.", which)
			return
		case rest != "":
			p.trailingTimeWarn(v, rest)
		}
		if which == "resolve" {
			r.TimeoutResolve = d
		} else {
			r.TimeoutRetry = d
		}
	case "hold":
		event, v := arg(args, 1), arg(args, 2)
		if _, ok := r.Hold[event]; !ok {
			p.errorf("'hold' unknown <event>: '%s', expects either 'nx', 'refused', 'timeout', 'valid', 'obsolete' or 'other'.", event)
			return
		}
		if v == "" {
			p.errorf("'hold %s' expects a time as argument.", event)
			return
		}
		d, rest, err := balancer.ParseHAProxyTime(v, time.Millisecond)
		if err != nil {
			p.timeErr("hold "+event, v, err, time.Millisecond)
			return
		}
		if rest != "" {
			p.trailingTimeWarn(v, rest)
		}
		r.Hold[event] = d
	case "parse-resolv-conf":
		r.ParseResolvConf = true
	case "resolution_pool_size":
		p.warnf("'resolution_pool_size' is deprecated and ignored")
	default:
		p.errorf("unknown keyword '%s' in 'resolvers' section", args[0])
	}
}

// timeErr reports a time value HAProxy would refuse, in HAProxy's words.
func (p *parser) timeErr(kw, v string, err error, unit time.Duration) {
	var te *balancer.TimeError
	unitName := "ms"
	if unit == time.Second {
		unitName = "s"
	}
	switch {
	case !errors.As(err, &te):
		p.errorf("'%s' : %v", kw, err)
	case te.Kind == balancer.TimeOverflow:
		if unit == time.Second {
			p.errorf("timer overflow in argument <%s> to <%s>, maximum value is 2147483647 s (~68 years).", v, kw)
		} else {
			p.errorf("timer overflow in argument <%s> to <%s>, maximum value is 2147483647 ms (~24.8 days).", v, kw)
		}
	case te.Kind == balancer.TimeUnderflow:
		p.errorf("timer underflow in argument <%s> to <%s>, minimum non-null value is 1 %s.", v, kw, unitName)
	case te.Kind == balancer.TimeMissing:
		p.errorf("'%s' expects a time value.", kw)
	default:
		p.errorf("unexpected character '%c' in '%s'", te.Char, kw)
	}
}

// trailingTimeWarn warns, as HAProxy 2.6, about characters after a time
// unit; rest is what ParseHAProxyTime left.
func (p *parser) trailingTimeWarn(v, rest string) {
	p.warnf("%s", balancer.TrailingTimeWarning(v, rest))
}

// arg returns args[i], or "" past the end.
func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// wordsUpTo returns at most n leading words of args.
func wordsUpTo(args []string, n int) []string {
	if len(args) > n {
		return args[:n]
	}
	return args
}
