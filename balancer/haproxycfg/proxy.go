package haproxycfg

import (
	"os"
	"slices"
	"strings"
	"time"

	"tether/balancer"
	"tether/balancer/accesslog"
	"tether/balancer/rules"
)

// capWarn reports a keyword used in a section that lacks the capability it
// needs, which HAProxy ignores with a warning. It returns true when the
// keyword must be ignored.
func (p *parser) capWarn(px *proxy, kw string, needFE bool) bool {
	if needFE && !px.hasFE() {
		p.warnf("'%s' ignored because %s '%s' has no frontend capability.", kw, px.kind, px.name)
		return true
	}
	if !needFE && !px.hasBE() {
		p.warnf("'%s' ignored because %s '%s' has no backend capability.", kw, px.kind, px.name)
		return true
	}
	return false
}

// parseProxy handles a line of a defaults, frontend, backend or listen section.
func (p *parser) parseProxy(args []string, neg string) {
	px := p.cur
	kw := args[0]
	if neg != "" {
		p.parseOption(px, args, neg)
		return
	}
	switch kw {
	case "mode":
		switch m := arg(args, 1); m {
		case "http":
			px.mode = "http"
		case "tcp":
			p.errorf("'mode tcp' is not supported by Tether, which balances HTTP only; use 'mode http'")
		case "":
			p.errorf("'mode' expects one of 'tcp', 'http' or 'health' modes.")
		default:
			p.errorf("unknown proxy mode '%s'.", m)
		}
	case "bind":
		if px.kind == secDefaults {
			p.errorf("'bind' not allowed in 'defaults' section.")
			return
		}
		if p.capWarn(px, kw, true) {
			return
		}
		if arg(args, 1) == "" {
			p.errorf("'bind' expects {<path>|[addr1]:port1[-end1]}{,[addr]:port[-end]}... as arguments.")
			return
		}
		first := len(px.fe.Binds)
		if !p.addBinds(px, args[1]) {
			return
		}
		if t, ok := p.parseBindTLS(args[2:]); ok && t != nil {
			for i := first; i < len(px.fe.Binds); i++ {
				px.fe.Binds[i].TLS = t.Clone()
			}
			p.tlsBinds = append(p.tlsBinds, tlsBindLine{line: p.line, tls: t})
		}
	case "default_backend":
		if p.capWarn(px, kw, true) {
			return
		}
		name := arg(args, 1)
		if name == "" {
			p.errorf("'default_backend' expects a backend name.")
			return
		}
		px.fe.DefaultBackend = name
		px.defaultBackendLine = p.line
	case "acl", "use_backend", "http-request", "http-response", "redirect":
		if px.kind == secDefaults {
			p.errorf("'%s' not allowed in 'defaults' section.", kw)
			return
		}
		if !px.hasFE() {
			p.errorf("'%s' in %s '%s': rules of backends are not supported by Tether; ACLs are used by use_backend in frontends.", kw, px.kind, px.name)
			return
		}
		switch kw {
		case "acl":
			p.parseACL(px, args)
		case "use_backend":
			p.parseUseBackend(px, args)
		default:
			p.parseHTTPRule(px, args)
		}
	case "timeout":
		p.parseTimeout(px, args)
	case "balance":
		if p.capWarn(px, kw, false) {
			return
		}
		p.parseBalance(px, args)
	case "cookie":
		if p.capWarn(px, kw, false) {
			return
		}
		p.parseCookie(px, args)
	case "dynamic-cookie-key":
		if p.capWarn(px, kw, false) {
			return
		}
		if arg(args, 1) == "" {
			p.errorf("'dynamic-cookie-key' expects <string> as argument.")
			return
		}
		px.be.DynamicCookieKey = balancer.Secret(args[1])
	case "retries":
		if p.capWarn(px, kw, false) {
			return
		}
		n, ok := parseUint(arg(args, 1), 1<<31-1)
		if !ok {
			p.errorf("'retries' expects an integer argument (dispatch counts for one).")
			return
		}
		px.be.Retries = n
	case "option":
		p.parseOption(px, args, "")
	case "http-check":
		if p.capWarn(px, kw, false) {
			return
		}
		p.parseHTTPCheck(px, args)
	case "server", "default-server", "server-template":
		if px.kind == secDefaults && kw != "default-server" {
			p.errorf("'%s' not allowed in 'defaults' section.", kw)
			return
		}
		if !px.hasBE() {
			p.errorf("'%s' not allowed because %s '%s' has no backend capability.", kw, px.kind, px.name)
			return
		}
		switch kw {
		case "server":
			p.parseServer(px, args)
		case "default-server":
			p.parseServerParams(px, &px.defsrv, args, 1, "default-server")
		default:
			p.parseTemplate(px, args)
		}
	case "id":
		p.parseID(px, args)
	case "maxconn":
		if p.capWarn(px, kw, true) {
			return
		}
		n, ok := parseUint(arg(args, 1), 1<<31-1)
		if !ok {
			p.errorf("'maxconn' expects a non-negative integer argument.")
			return
		}
		px.fe.MaxConn = n
	case "hash-type":
		if p.capWarn(px, kw, false) {
			return
		}
		p.parseHashType(args)
	case "http-reuse":
		if p.capWarn(px, kw, false) {
			return
		}
		p.parseHTTPReuse(args)
	case "log":
		// A backend's log lines are about its servers, which Tether
		// reports through its own logger: only a frontend keeps them.
		p.parseLog(args, &px.fe.Logs, p.cfg.Global.Logs)
	case "log-tag":
		if arg(args, 1) == "" {
			p.errorf("'log-tag' expects a tag for use in syslog.")
			return
		}
		px.fe.LogTag = args[1]
	case "log-format":
		if px.kind == secBackend {
			p.warnf("'log-format' ignored because backend '%s' has no frontend capability.", px.name)
			return
		}
		p.parseLogFormat(args, &px.fe)
	case "capture":
		if px.kind == secDefaults {
			p.errorf("'capture' not allowed in 'defaults' section.")
			return
		}
		if p.capWarn(px, kw, true) {
			return
		}
		p.parseCapture(args, &px.fe)
	case "retry-on":
		if !px.hasBE() {
			p.errorf("'retry-on' only available in backend or listen section")
			return
		}
		p.parseRetryOn(args)
	default:
		g, known := proxyKeywords.lookup(kw)
		if !known {
			p.errorf("unknown keyword '%s' in '%s' section", kw, px.kind)
			return
		}
		p.unsupported(g, "'"+strings.Join(wordsUpTo(args, 2), " ")+"'")
	}
}

// parseHashType accepts "hash-type map-based [FUNCTION]", the hashing
// Tether's balance source uses, and refuses the others.
func (p *parser) parseHashType(args []string) {
	method, fn := arg(args, 1), arg(args, 2)
	switch {
	case method == "":
		p.errorf("'hash-type' expects 'map-based' or 'consistent'.")
	case method == "map-based" && (fn == "" || hasWord("sdbm djb2 wt6 crc32", fn)) && len(args) <= 3:
	default:
		p.errorf("'%s' is not supported by Tether (another server choice for balance source); only 'hash-type map-based' is.", strings.Join(args, " "))
	}
}

// parseHTTPReuse handles "http-reuse MODE": "never" is refused, since Tether
// shares idle server connections between clients.
func (p *parser) parseHTTPReuse(args []string) {
	switch mode := arg(args, 1); mode {
	case "never":
		p.errorf("'http-reuse never' is not supported by Tether (Tether shares idle server connections between clients).")
	case "safe", "aggressive", "always":
		p.warnf("'http-reuse %s' is not supported by Tether (connection reuse tuning); ignored.", mode)
	default:
		p.errorf("'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'")
	}
}

// parseRetryOn accepts "retry-on conn-failure", which is what Tether does,
// and refuses every other retry condition.
func (p *parser) parseRetryOn(args []string) {
	if len(args) < 2 {
		p.errorf("'retry-on' expects at least one keyword.")
		return
	}
	for _, w := range args[1:] {
		if w != "conn-failure" {
			p.errorf("'retry-on %s' is not supported by Tether (Tether retries only failed connections); use 'retry-on conn-failure'.", w)
			return
		}
	}
}

// addBinds adds the comma-separated addresses of a bind line.
func (p *parser) addBinds(px *proxy, list string) bool {
	for _, a := range strings.Split(list, ",") {
		if a == "" {
			p.errorf("'bind' : empty address in '%s'.", list)
			return false
		}
		if what, bad := unsupportedFamily(a); bad {
			p.errorf("'bind %s' : %s listeners are not supported by Tether", a, what)
			return false
		}
		hp, err := splitHostPort(a)
		if err != nil {
			p.errorf("'bind %s' : %v", a, err)
			return false
		}
		if !hp.PortSet {
			p.errorf("'bind %s' : missing port number.", a)
			return false
		}
		if badNumericHost(hp.Host) {
			p.errorf("'bind' : invalid address: '%s' in '%s'", hp.Host, a)
			return false
		}
		host := hp.Host
		if host == "" && hp.Family == "ipv6" {
			host = "::"
		}
		px.fe.Binds = append(px.fe.Binds, balancer.Bind{Addr: joinHostPort(host, hp.Port)})
	}
	return true
}

// parseTimeout handles "timeout NAME TIME".
func (p *parser) parseTimeout(px *proxy, args []string) {
	name, v := arg(args, 1), arg(args, 2)
	g, unsupported := timeoutKeywords.lookup(name)
	if !unsupported && !hasWord(timeoutNames, name) {
		p.errorf("'timeout' supports 'client', 'server', 'connect', 'check', 'queue', 'http-keep-alive', 'http-request', 'tarpit', 'tunnel', 'client-fin' and 'server-fin' (got '%s')", name)
		return
	}
	kw := "timeout " + name
	if v == "" {
		p.errorf("'%s' expects an integer value (in milliseconds)", kw)
		return
	}
	d, rest, err := balancer.ParseHAProxyTime(v, time.Millisecond)
	if err != nil {
		p.timeErr(kw, v, err, time.Millisecond)
		return
	}
	if rest != "" {
		p.trailingTimeWarn(v, rest)
	}
	if unsupported {
		p.unsupported(g, "'"+kw+"'")
		return
	}
	// The capabilities HAProxy gives each timeout. A backend's
	// http-request and http-keep-alive timeouts are accepted but unused:
	// HAProxy reads them only while buffering a request body, which
	// Tether refuses, and between requests, where the frontend's apply.
	needFE := hasWord("client client-fin", name)
	needBE := hasWord("server connect check queue tunnel server-fin", name)
	if needFE && !px.hasFE() {
		p.warnf("'%s' will be ignored because %s '%s' has no frontend capability", kw, px.kind, px.name)
		return
	}
	if needBE && !px.hasBE() {
		p.warnf("'%s' will be ignored because %s '%s' has no backend capability", kw, px.kind, px.name)
		return
	}
	switch name {
	case "client":
		px.fe.TimeoutClient = d
	case "client-fin":
		px.fe.TimeoutClientFin = d
	case "http-request":
		if px.hasFE() {
			px.fe.TimeoutHTTPRequest = d
		}
	case "http-keep-alive":
		if px.hasFE() {
			px.fe.TimeoutHTTPKeepAlive = d
		}
	case "connect":
		px.be.TimeoutConnect = d
	case "server":
		px.be.TimeoutServer = d
	case "check":
		px.be.TimeoutCheck = d
	case "queue":
		px.be.TimeoutQueue = d
	case "tunnel":
		px.be.TimeoutTunnel = d
	case "server-fin":
		px.be.TimeoutServerFin = d
	}
}

// parseBalance handles "balance ALGORITHM".
func (p *parser) parseBalance(px *proxy, args []string) {
	algo := arg(args, 1)
	switch algo {
	case "roundrobin", "static-rr", "leastconn", "first", "source", "random":
		px.be.Balance = balancer.Algorithm(algo)
		if len(args) > 2 {
			p.warnf("'balance %s' arguments are not supported by Tether; ignored", algo)
		}
		return
	}
	base := algo
	if i := strings.IndexByte(algo, '('); i >= 0 {
		base = algo[:i]
	}
	switch base {
	case "random":
		if algo == "random(2)" {
			px.be.Balance = balancer.Random
			return
		}
		p.errorf("'balance %s' is not supported by Tether (Tether draws two servers, as 'random' and 'random(2)').", algo)
	case "uri", "url_param", "hdr", "rdp-cookie", "hash":
		p.errorf("'balance %s' is not supported by Tether (hash-based server choice); use roundrobin, static-rr, leastconn, first, source or random.", algo)
	default:
		p.errorf("balance only supports 'roundrobin', 'static-rr', 'leastconn', 'source', 'uri', 'url_param', 'hdr(name)' and 'rdp-cookie(name)' options.")
	}
}

// parseCookie handles the backend "cookie" line with balancer's parser.
// Like HAProxy, each line resets the options, but attr values add to those
// already set (inherited from defaults).
func (p *parser) parseCookie(px *proxy, args []string) {
	c, warns, err := balancer.ParseCookieLineWarnings(args[1:])
	for _, w := range warns {
		p.warnf("%s", w)
	}
	if err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				p.errorf("%s", e.Error())
			}
			return
		}
		p.errorf("%s", err.Error())
		return
	}
	if px.be.Cookie != nil && len(px.be.Cookie.Attrs) > 0 {
		c.Attrs = append(append([]string(nil), px.be.Cookie.Attrs...), c.Attrs...)
	}
	px.be.Cookie = c
}

// parseOption handles "[no|default] option NAME [args]".
func (p *parser) parseOption(px *proxy, args []string, neg string) {
	name := arg(args, 1)
	if name == "" {
		p.errorf("'option' expects an option name.")
		return
	}
	switch name {
	case "persist", "redispatch":
		if p.capWarn(px, "option "+name, false) {
			return
		}
		on := neg == ""
		if name == "persist" {
			px.be.Persist = on
			if on && len(args) > 2 {
				p.errorf("'option persist' cannot handle unexpected argument '%s'.", args[2])
			}
			return
		}
		px.be.Redispatch = on
		px.be.RedispatchInterval = defaultRedispatch
		if on && arg(args, 2) != "" {
			n, ok := parseInt(args[2], 1<<31-1)
			if !ok {
				p.errorf("'option redispatch' expects an integer argument.")
				return
			}
			px.be.RedispatchInterval = n
		}
	case "httplog":
		if arg(args, 2) == "clf" && neg == "" && px.hasFE() {
			// HAProxy defines the CLF variant as this log format.
			px.fe.LogFormat, px.fe.HTTPLog = accesslog.CLFLogFormat, false
			return
		}
		if arg(args, 2) != "" {
			p.unsupported(keywordGroup{verdict: warned, why: whyLogging}, "'option httplog "+args[2]+"'")
			return
		}
		if !px.hasFE() {
			p.warnf("%s '%s' : 'option httplog' directive is ignored in backends.", px.kind, px.name)
			return
		}
		px.fe.HTTPLog = neg == ""
		if px.fe.HTTPLog {
			// The last of option httplog and log-format wins.
			px.fe.LogFormat = ""
		}
	case "dontlognull":
		if p.capWarn(px, "dontlognull", true) {
			return
		}
		px.fe.DontLogNull = neg == ""
	case "forwardfor":
		if neg != "" {
			p.errorf("negation/default is not supported for option 'forwardfor'.")
			return
		}
		var o balancer.ForwardForOptions
		for i := 2; i < len(args) && args[i] != ""; i++ {
			switch args[i] {
			case "except", "header":
				v := arg(args, i+1)
				if v == "" {
					p.errorf("'option forwardfor' : '%s' expects a value.", args[i])
					return
				}
				if args[i] == "header" {
					o.Header = v
				} else if _, err := balancer.ParseForwardForExcept(v); err != nil {
					p.errorf("'option forwardfor except' : %v.", err)
					return
				} else {
					o.Except = v
				}
				i++
			case "if-none":
				o.IfNone = true
			default:
				p.errorf("'option forwardfor' only supports optional values: 'except', 'header' and 'if-none'.")
				return
			}
		}
		if px.hasFE() {
			px.fe.ForwardFor, px.fe.ForwardForOptions = true, o
		}
		if px.hasBE() {
			px.be.ForwardFor, px.be.ForwardForOptions = true, o
		}
	case "httpchk":
		if neg != "" {
			p.errorf("negation/default is not supported for option 'httpchk'.")
			return
		}
		if p.capWarn(px, "option httpchk", false) {
			return
		}
		hc := &balancer.HTTPCheck{Method: defaultCheckMethod, URI: defaultCheckURI, Version: defaultCheckVersion}
		rest := args[2:]
		for len(rest) > 0 && rest[len(rest)-1] == "" {
			rest = rest[:len(rest)-1]
		}
		switch len(rest) {
		case 0:
		case 1:
			hc.URI = rest[0]
		case 2:
			hc.Method, hc.URI = rest[0], rest[1]
		case 3:
			hc.Method, hc.URI, hc.Version = rest[0], rest[1], rest[2]
		default:
			p.errorf("'option httpchk' : unexpected argument '%s'.", rest[3])
			return
		}
		if !p.checkHTTPCheck(hc) {
			return
		}
		px.be.HTTPCheck = hc
	default:
		g, known := proxyOptions.lookup(name)
		switch {
		case !known:
			p.errorf("unknown option '%s'.", name)
		case neg != "":
			// "no option X" asks for HAProxy's default, which is what
			// Tether does without X.
		case name == "http-restrict-req-hdr-names" && arg(args, 2) == "preserve":
			// The default.
		default:
			p.unsupported(g, "'option "+name+"'")
		}
	}
}

// checkHTTPCheck rejects check request fields that cannot be sent.
func (p *parser) checkHTTPCheck(hc *balancer.HTTPCheck) bool {
	for _, c := range hc.Method {
		if c <= ' ' || c >= 0x7f {
			p.errorf("'option httpchk' : invalid method '%s'.", hc.Method)
			return false
		}
	}
	if hc.Method == "" || hc.URI == "" || strings.ContainsAny(hc.URI, " \t\r\n") {
		p.errorf("'option httpchk' : invalid method or URI.")
		return false
	}
	return true
}

// parseHTTPCheck handles "http-check expect status N" and "http-check send".
func (p *parser) parseHTTPCheck(px *proxy, args []string) {
	switch arg(args, 1) {
	case "expect":
		if arg(args, 2) == "status" {
			if arg(args, 3) == "" {
				p.errorf("'http-check expect status' expects a status code.")
				return
			}
			if i := strings.IndexFunc(args[3], func(r rune) bool { return (r < '0' || r > '9') && r != ',' && r != '-' }); i >= 0 {
				p.errorf("'http-check expect' : invalid character '%c' in the list of status codes.", []rune(args[3][i:])[0])
				return
			}
			if n, ok := parseUint(args[3], 999); ok && n >= 100 {
				if len(args) > 4 {
					p.errorf("'http-check expect status' options ('%s' …) are not supported by Tether (%s).", args[4], whyHealth)
					return
				}
				px.expectStatus, px.expectLine = n, p.line
				return
			}
		}
		if arg(args, 2) == "" {
			p.errorf("'http-check expect' expects a matching method and a pattern.")
			return
		}
		p.errorf("'http-check expect %s' is not supported by Tether (%s); only 'expect status N' is.", strings.Join(args[2:], " "), whyHealth)
	case "send":
		send := px.checkSend
		for i := 2; i < len(args) && args[i] != ""; i += 2 {
			v := arg(args, i+1)
			if v == "" {
				p.errorf("'http-check send' : '%s' expects a value.", args[i])
				return
			}
			switch args[i] {
			case "meth":
				send.Method = v
			case "uri":
				send.URI = v
			case "ver":
				send.Version = v
			case "hdr":
				if arg(args, i+2) == "" {
					p.errorf("'http-check send' : 'hdr' expects <name> and <value>.")
					return
				}
				p.errorf("'http-check send hdr' is not supported by Tether (%s).", whyHealth)
				return
			case "body", "body-lf", "uri-lf":
				p.errorf("'http-check send %s' is not supported by Tether (%s).", args[i], whyHealth)
				return
			case "comment":
				p.warnf("'http-check send comment' is not supported by Tether (a comment for logs); ignored.")
			default:
				p.errorf("'http-check send' : unknown parameter '%s'.", args[i])
				return
			}
		}
		check := balancer.HTTPCheck{Method: or(send.Method, defaultCheckMethod), URI: or(send.URI, defaultCheckURI)}
		if !p.checkHTTPCheck(&check) {
			return
		}
		px.checkSend, px.checkSendLine = send, p.line
	case "":
		p.errorf("'http-check' expects 'comment', 'connect', 'send', 'expect', 'set-var', 'unset-var' or 'disable-on-404'.")
	default:
		if g, known := httpCheckKeywords.lookup(args[1]); known {
			p.unsupported(g, "'http-check "+args[1]+"'")
			return
		}
		p.errorf("'http-check' expects 'comment', 'connect', 'send', 'expect', 'set-var', 'unset-var' or 'disable-on-404' but got '%s'.", args[1])
	}
}

// parseID handles "id N", with HAProxy's checks and messages.
func (p *parser) parseID(px *proxy, args []string) {
	if px.kind == secDefaults {
		p.errorf("'id' not allowed in 'defaults' section.")
		return
	}
	if len(args) > 2 {
		p.errorf("'id' cannot handle unexpected argument '%s'.", args[2])
		return
	}
	if arg(args, 1) == "" {
		p.errorf("'id' expects an integer argument.")
		return
	}
	id := atoi32(args[1])
	if id <= 0 {
		p.errorf("custom id has to be > 0.")
		return
	}
	// A second "id" line finds the proxy itself, as in HAProxy.
	if px.id != 0 {
		p.errorf("%s %s reuses same custom id as %s %s (declared at %s:%d).", px.typeName(), px.name, px.typeName(), px.name, p.file, px.line)
		return
	}
	for _, o := range p.proxies {
		if o != px && o.id == id {
			p.errorf("%s %s reuses same custom id as %s %s (declared at %s:%d).", px.typeName(), px.name, o.typeName(), o.name, p.file, o.line)
			return
		}
	}
	px.id = id
}

// typeName names the proxy's kind as HAProxy's messages do ("proxy" for a
// listen section).
func (px *proxy) typeName() string {
	if px.kind == secListen {
		return "proxy"
	}
	return px.kind.String()
}

// aclSet returns the ACL set of px's frontend part. Pattern files are
// read relative to the working directory, as HAProxy reads them; while
// px.readFiles is set, what is read is recorded there.
func (px *proxy) aclSet() *rules.Set {
	if px.acls == nil {
		px.acls = rules.NewSet(func(name string) ([]byte, error) {
			b, err := os.ReadFile(name)
			if err == nil && px.readFiles != nil {
				px.readFiles[name] = string(b)
			}
			return b, err
		})
	}
	return px.acls
}

// parseACL handles "acl NAME CRITERION [flags] [VALUES…]".
func (p *parser) parseACL(px *proxy, args []string) {
	if len(args) < 3 {
		p.errorf("'acl' requires an ACL name and a criterion.")
		return
	}
	px.readFiles = make(map[string]string)
	defer func() { px.readFiles = nil }()
	if err := px.aclSet().Define(args[1:]); err != nil {
		p.errorf("%v.", err)
		return
	}
	a := balancer.ACL{Name: args[1], Words: append([]string(nil), args[2:]...), At: balancer.Position{File: p.file, Line: p.line}}
	if len(px.readFiles) > 0 {
		a.Files = px.readFiles
	}
	px.fe.ACLs = append(px.fe.ACLs, a)
}

// parseUseBackend handles "use_backend NAME [{if | unless} CONDITION]".
func (p *parser) parseUseBackend(px *proxy, args []string) {
	name := arg(args, 1)
	switch {
	case name == "":
		p.errorf("'use_backend' expects a backend name.")
		return
	case strings.Contains(name, "%["):
		p.errorf("'use_backend %s': backend names built from samples are not supported by Tether.", name)
		return
	}
	rule := balancer.BackendRule{Backend: name, At: balancer.Position{File: p.file, Line: p.line}}
	if len(args) > 2 {
		if args[2] != "if" && args[2] != "unless" {
			p.errorf("'use_backend' expects 'if' or 'unless' followed by a condition, but found '%s'.", args[2])
			return
		}
		px.readFiles = make(map[string]string)
		defer func() { px.readFiles = nil }()
		if _, err := px.aclSet().Cond(args[2:]); err != nil {
			p.errorf("error detected while parsing switching rule : %v.", err)
			return
		}
		rule.Cond = append([]string(nil), args[2:]...)
		if len(px.readFiles) > 0 {
			rule.Files = px.readFiles
		}
	}
	px.fe.UseBackends = append(px.fe.UseBackends, rule)
	px.useBackendLines = append(px.useBackendLines, p.line)
}

// parseHTTPRule handles "http-request ACTION…", "http-response ACTION…" and
// "redirect …" lines, each with an optional condition.
func (p *parser) parseHTTPRule(px *proxy, args []string) {
	kw := args[0]
	words := args[1:]
	phase := balancer.RequestPhase
	switch kw {
	case "redirect":
		words = args
	case "http-response":
		phase = balancer.ResponsePhase
	}
	rule := balancer.HTTPRule{Words: words, At: balancer.Position{File: p.file, Line: p.line}}
	if i := slices.IndexFunc(words, func(w string) bool { return w == "if" || w == "unless" }); i >= 0 {
		rule.Words, rule.Cond = words[:i], words[i:]
	}
	what := kw
	if kw != "redirect" && len(rule.Words) > 0 {
		what += " " + rule.Words[0]
	}
	if err := balancer.CheckHTTPAction(phase, rule.Words); err != nil {
		p.errorf("%v.", err)
		return
	}
	if rule.Cond != nil {
		if phase == balancer.ResponsePhase {
			p.errorf("'%s': conditions on http-response rules are not supported by Tether.", what)
			return
		}
		px.readFiles = make(map[string]string)
		defer func() { px.readFiles = nil }()
		if _, err := px.aclSet().Cond(rule.Cond); err != nil {
			p.errorf("'%s': %v.", what, err)
			return
		}
		if len(px.readFiles) > 0 {
			rule.Files = px.readFiles
		}
	}
	rule.Words = slices.Clone(rule.Words)
	rule.Cond = slices.Clone(rule.Cond)
	switch kw {
	case "redirect":
		px.fe.Redirects = append(px.fe.Redirects, rule)
	case "http-response":
		px.fe.ResponseRules = append(px.fe.ResponseRules, rule)
	default:
		px.fe.RequestRules = append(px.fe.RequestRules, rule)
	}
}
