package haproxycfg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"tether/balancer"
)

// Write writes cfg to w in HAProxy syntax; see Format.
func Write(w io.Writer, cfg balancer.Config) error {
	b, err := Format(cfg)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write HAProxy configuration: %w", err)
	}
	return nil
}

// Format returns cfg as an HAProxy configuration file that HAProxy 2.6
// accepts and that Parse reads back to cfg (for a cfg that Parse produced,
// or one holding the same filled-in defaults). Values equal to HAProxy's
// defaults are left out. A defaults section sets "mode http" for every
// proxy. Format fails when a value cannot be written in HAProxy syntax.
//
// Proxies are written in balancer.ConfigProxies order, a frontend and a
// backend with the same name and ID as a listen section (whose halves share
// "option forwardfor": it is written when either has it). A proxy with ID 0
// is given the one HAProxy would give it; "id N" is written only where
// HAProxy's numbering of the written file would give another number.
func Format(cfg balancer.Config) ([]byte, error) {
	cfg, err := balancer.NumberProxies(cfg)
	if err != nil {
		return nil, fmt.Errorf("format configuration: %w", err)
	}
	w := &writer{}
	apiProxy := w.global(cfg.Global)
	w.section("defaults", "")
	w.line("mode", "http")
	for _, r := range cfg.Resolvers {
		w.resolvers(r)
	}
	proxies := balancer.ConfigProxies(&cfg)
	ids := make([]int, len(proxies))
	for i, p := range proxies {
		if p.Frontend >= 0 {
			ids[i] = cfg.Frontends[p.Frontend].ID
		} else {
			ids[i] = cfg.Backends[p.Backend].ID
		}
	}
	explicit := explicitIDs(ids, apiProxy)
	for i, p := range proxies {
		id := 0
		if explicit[i] {
			id = ids[i]
		}
		switch {
		case p.Frontend >= 0 && p.Backend >= 0:
			w.listen(cfg.Frontends[p.Frontend], cfg.Backends[p.Backend], id)
		case p.Frontend >= 0:
			fe := cfg.Frontends[p.Frontend]
			w.checkName("frontend", fe.Name)
			w.section("frontend", fe.Name)
			w.id(id)
			w.frontend(fe)
		default:
			be := cfg.Backends[p.Backend]
			w.checkName("backend", be.Name)
			w.section("backend", be.Name)
			w.id(id)
			w.backend(be, true)
		}
	}
	if w.err != nil {
		return nil, w.err
	}
	out := w.buf.Bytes()
	// The output must be something Parse accepts; anything else is a value
	// the checks above missed, reported rather than written.
	if _, _, err := parse("generated configuration", out, nil); err != nil {
		return nil, fmt.Errorf("format configuration: the result does not parse: %w", err)
	}
	return out, nil
}

type writer struct {
	buf bytes.Buffer
	err error
}

func (w *writer) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("format configuration: "+format, args...)
	}
}

func (w *writer) section(kw, name string) {
	if w.buf.Len() > 0 {
		w.buf.WriteByte('\n')
	}
	w.buf.WriteString(kw)
	if name != "" {
		w.buf.WriteByte(' ')
		w.buf.WriteString(quoteWord(name))
	}
	w.buf.WriteByte('\n')
}

// line writes one indented line; words are quoted as needed.
func (w *writer) line(words ...string) {
	w.buf.WriteString("    ")
	for i, word := range words {
		if i > 0 {
			w.buf.WriteByte(' ')
		}
		w.buf.WriteString(quoteWord(word))
	}
	w.buf.WriteByte('\n')
}

// KeyWritable reports whether a dynamic-cookie key can be written to a
// configuration file: one with a NUL byte cannot (HAProxy refuses the
// line), and Write leaves it out. Such keys are refused since; a database
// may still hold one set before.
func KeyWritable(key balancer.Secret) bool {
	return !strings.ContainsRune(key.Reveal(), 0)
}

func (w *writer) checkName(what, name string) {
	if name == "" {
		w.fail("%s has no name", what)
		return
	}
	if c, bad := invalidChar(name); bad {
		w.fail("character '%c' is not permitted in %s name '%s'", c, what, name)
	}
}

// explicitIDs returns which proxies, listed in the order written with the
// IDs they must have, need an "id" line so that HAProxy's numbering gives
// every one its ID. apiProxy tells whether the global section, written
// first, creates the Runtime API proxy.
func explicitIDs(want []int, apiProxy bool) []bool {
	explicit := make([]bool, len(want))
	off := 0
	if apiProxy {
		off = 1
	}
	for {
		fixed := make([]int, len(want)+off)
		if apiProxy {
			fixed[0] = balancer.RuntimeAPIProxy
		}
		for i, id := range want {
			if explicit[i] {
				fixed[i+off] = id
			}
		}
		// Fixing the first wrong number may right the later ones.
		got := balancer.AssignProxyIDs(fixed)[off:]
		i := 0
		for i < len(want) && (got[i] == want[i] || explicit[i]) {
			i++
		}
		if i == len(want) {
			return explicit
		}
		explicit[i] = true
	}
}

// id writes an "id" line unless id is 0.
func (w *writer) id(id int) {
	if id != 0 {
		w.line("id", itoa(id))
	}
}

// global writes the global section and reports whether it has a "stats"
// line, which makes HAProxy create its Runtime API proxy.
func (w *writer) global(g balancer.Global) bool {
	var lines [][]string
	for _, s := range g.StatsSockets {
		words := []string{"stats", "socket", socketAddrWord(s.Address)}
		if s.Address == "" {
			w.fail("stats socket has no address")
		}
		if s.Mode != 0 {
			if s.Mode > 0o7777 {
				w.fail("stats socket %s: invalid mode %o", s.Address, s.Mode)
			}
			words = append(words, "mode", fmt.Sprintf("%o", s.Mode))
		}
		switch s.Level {
		case 0, balancer.LevelOperator:
		case balancer.LevelUser, balancer.LevelAdmin:
			words = append(words, "level", s.Level.String())
		default:
			w.fail("stats socket %s: invalid level %d", s.Address, s.Level)
		}
		switch s.SeverityOutput {
		case "", "none":
		case "number", "string":
			words = append(words, "severity-output", s.SeverityOutput)
		default:
			w.fail("stats socket %s: invalid severity-output %q", s.Address, s.SeverityOutput)
		}
		lines = append(lines, words)
	}
	if g.StatsTimeout != 0 && g.StatsTimeout != defaultStatsTimeout {
		lines = append(lines, []string{"stats", "timeout", w.time(g.StatsTimeout, time.Millisecond, "stats timeout")})
	}
	if g.StatsMaxConn < 0 {
		w.fail("invalid stats maxconn %d", g.StatsMaxConn)
	} else if g.StatsMaxConn != 0 && g.StatsMaxConn != defaultStatsMaxConn {
		lines = append(lines, []string{"stats", "maxconn", itoa(g.StatsMaxConn)})
	}
	apiProxy := len(lines) > 0
	for _, v := range []struct {
		kw string
		n  int
	}{{"maxconn", g.MaxConn}, {"tune.bufsize", g.BufSize}, {"tune.maxrewrite", g.MaxRewrite}} {
		if v.n < 0 {
			w.fail("invalid %s %d", v.kw, v.n)
		} else if v.n != 0 {
			lines = append(lines, []string{v.kw, itoa(v.n)})
		}
	}
	for _, t := range g.Logs {
		lines = append(lines, w.logLine("global", t))
	}
	if g.LogTag != "" {
		lines = append(lines, []string{"log-tag", g.LogTag})
	}
	if g.LogSendHostname {
		words := []string{"log-send-hostname"}
		if g.LogHostname != "" {
			words = append(words, g.LogHostname)
		}
		lines = append(lines, words)
	}
	lines = append(lines, sslDefaultLines(g.SSLDefaultBind)...)
	if len(lines) == 0 {
		return false
	}
	w.section("global", "")
	for _, l := range lines {
		w.line(l...)
	}
	return apiProxy
}

// logLine returns the words of a "log" line writing to t; where names the
// section for errors.
func (w *writer) logLine(where string, t balancer.LogTarget) []string {
	if _, udp := udpLogAddress(t.Address); t.Address != "stdout" && t.Address != "stderr" && !udp {
		w.fail("%s: log target %q is neither stdout, stderr nor a UDP ip:port", where, t.Address)
	}
	words := []string{"log", t.Address}
	if t.Len != 0 {
		if t.Len < 80 || t.Len > 65535 {
			w.fail("%s: log length %d is not between 80 and 65535", where, t.Len)
		}
		words = append(words, "len", itoa(t.Len))
	}
	if t.Format != "" {
		if !hasWord("local raw rfc3164 rfc5424 priority short timed iso", t.Format) {
			w.fail("%s: unknown log format %q", where, t.Format)
		}
		words = append(words, "format", t.Format)
	}
	if !hasWord(syslogFacilities, t.Facility) {
		w.fail("%s: unknown log facility %q", where, t.Facility)
	}
	words = append(words, t.Facility)
	for _, l := range []string{t.Level, t.MinLevel} {
		if l == "" {
			break
		}
		if !hasWord(syslogLevels, l) {
			w.fail("%s: unknown log level %q", where, l)
		}
		words = append(words, l)
	}
	return words
}

// socketAddrWord writes a stats socket address so that Parse reads it back.
func socketAddrWord(a string) string {
	if strings.HasPrefix(a, "ipv4@") || strings.HasPrefix(a, "ipv6@") || strings.HasPrefix(a, "/") {
		return a
	}
	return "unix@" + a
}

// time formats a duration that must be a whole number of unit.
func (w *writer) time(d, unit time.Duration, what string) string {
	if d < 0 || d%unit != 0 || d/unit > balancer.MaxHAProxyTimer {
		w.fail("%s: %v cannot be written in HAProxy syntax (whole %v, at most %d)", what, d, unit, balancer.MaxHAProxyTimer)
	}
	return balancer.FormatHAProxyTime(d)
}

func (w *writer) resolvers(r balancer.Resolvers) {
	w.checkName("resolvers", r.Name)
	w.section("resolvers", r.Name)
	for _, ns := range r.Nameservers {
		a := ns.Address
		if ns.TCP {
			a = "tcp@" + a
		}
		w.line("nameserver", ns.Name, a)
	}
	if r.AcceptedPayloadSize != 0 && r.AcceptedPayloadSize != defaultPayloadSize {
		w.line("accepted_payload_size", itoa(r.AcceptedPayloadSize))
	}
	if r.ResolveRetries != 0 && r.ResolveRetries != defaultResolveRetries {
		w.line("resolve_retries", itoa(r.ResolveRetries))
	}
	if r.TimeoutResolve != 0 && r.TimeoutResolve != defaultTimeoutResolve {
		w.line("timeout", "resolve", w.time(r.TimeoutResolve, time.Millisecond, "timeout resolve"))
	}
	if r.TimeoutRetry != 0 && r.TimeoutRetry != defaultTimeoutRetry {
		w.line("timeout", "retry", w.time(r.TimeoutRetry, time.Millisecond, "timeout retry"))
	}
	def := defaultHold()
	for k := range r.Hold {
		if _, ok := def[k]; !ok {
			w.fail("resolvers %s: unknown hold event %q", r.Name, k)
		}
	}
	for _, ev := range strings.Fields(holdEvents) {
		if d, ok := r.Hold[ev]; ok && d != def[ev] {
			w.line("hold", ev, w.time(d, time.Millisecond, "hold "+ev))
		}
	}
	if r.ParseResolvConf {
		w.line("parse-resolv-conf")
	}
}

// listen writes a frontend and a backend sharing a name and an ID as one
// listen section.
func (w *writer) listen(fe balancer.Frontend, be balancer.Backend, id int) {
	w.checkName("listen", fe.Name)
	w.section("listen", fe.Name)
	w.id(id)
	if !fe.ForwardFor {
		fe.ForwardFor, fe.ForwardForOptions = be.ForwardFor, be.ForwardForOptions
	}
	if fe.DefaultBackend == fe.Name {
		// A listen section uses its own backend unless told otherwise.
		fe.DefaultBackend = ""
	}
	w.frontend(fe)
	w.backend(be, false)
}

// frontend writes the lines of a frontend section.
func (w *writer) frontend(fe balancer.Frontend) {
	for _, b := range fe.Binds {
		w.line(w.bindLine(fe.Name, b)...)
	}
	if fe.ForwardFor {
		w.line(forwardForLine(fe.ForwardForOptions)...)
	}
	for _, t := range fe.Logs {
		w.line(w.logLine("frontend "+fe.Name, t)...)
	}
	if fe.HTTPLog {
		w.line("option", "httplog")
	}
	if fe.LogFormat != "" {
		w.line("log-format", fe.LogFormat)
	}
	if fe.LogTag != "" {
		w.line("log-tag", fe.LogTag)
	}
	for _, c := range fe.CaptureRequest {
		w.line("capture", "request", "header", c.Name, "len", itoa(c.Len))
	}
	for _, c := range fe.CaptureResponse {
		w.line("capture", "response", "header", c.Name, "len", itoa(c.Len))
	}
	if c := fe.CaptureCookie; c != nil {
		w.line("capture", "cookie", c.Name, "len", itoa(c.Len))
	}
	if fe.DontLogNull {
		w.line("option", "dontlognull")
	}
	if fe.MaxConn < 0 {
		w.fail("frontend %s: negative maxconn %d", fe.Name, fe.MaxConn)
	} else if fe.MaxConn != 0 {
		w.line("maxconn", itoa(fe.MaxConn))
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"client", fe.TimeoutClient}, {"http-request", fe.TimeoutHTTPRequest}, {"http-keep-alive", fe.TimeoutHTTPKeepAlive}, {"client-fin", fe.TimeoutClientFin}} {
		if t.d != 0 {
			w.line("timeout", t.name, w.time(t.d, time.Millisecond, "timeout "+t.name))
		}
	}
	for _, a := range fe.ACLs {
		w.line(append([]string{"acl", a.Name}, a.Words...)...)
	}
	for _, r := range fe.RequestRules {
		w.line(slices.Concat([]string{"http-request"}, r.Words, r.Cond)...)
	}
	for _, r := range fe.Redirects {
		w.line(slices.Concat(r.Words, r.Cond)...)
	}
	for _, r := range fe.ResponseRules {
		w.line(slices.Concat([]string{"http-response"}, r.Words, r.Cond)...)
	}
	for _, ub := range fe.UseBackends {
		w.line(append([]string{"use_backend", ub.Backend}, ub.Cond...)...)
	}
	if fe.DefaultBackend != "" {
		w.line("default_backend", fe.DefaultBackend)
	}
}

// backend writes the lines of a backend section; forwardFor tells whether
// it writes "option forwardfor" (a listen section writes it once).
func (w *writer) backend(be balancer.Backend, forwardFor bool) {
	if be.Balance != "" && be.Balance != balancer.RoundRobin {
		w.line("balance", string(be.Balance))
	}
	if be.Cookie != nil {
		w.line(w.cookie(be.Cookie)...)
	}
	if be.DynamicCookieKey != "" && KeyWritable(be.DynamicCookieKey) {
		w.line("dynamic-cookie-key", be.DynamicCookieKey.Reveal())
	}
	w.graceComments(be)
	if be.Persist {
		w.line("option", "persist")
	}
	if be.Redispatch {
		if be.RedispatchInterval == defaultRedispatch {
			w.line("option", "redispatch")
		} else {
			w.line("option", "redispatch", itoa(be.RedispatchInterval))
		}
	}
	if be.Retries < 0 {
		w.fail("backend %s: negative retries %d", be.Name, be.Retries)
	} else if be.Retries != defaultRetries {
		w.line("retries", itoa(be.Retries))
	}
	if be.ForwardFor && forwardFor {
		w.line(forwardForLine(be.ForwardForOptions)...)
	}
	if hc := be.HTTPCheck; hc != nil {
		method, uri, version := or(hc.Method, defaultCheckMethod), or(hc.URI, defaultCheckURI), or(hc.Version, defaultCheckVersion)
		switch {
		case method == defaultCheckMethod && uri == defaultCheckURI && version == defaultCheckVersion:
			w.line("option", "httpchk")
		case version == defaultCheckVersion:
			w.line("option", "httpchk", method, uri)
		default:
			w.line("option", "httpchk", method, uri, version)
		}
		if hc.ExpectStatus != 0 {
			w.line("http-check", "expect", "status", itoa(hc.ExpectStatus))
		}
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"connect", be.TimeoutConnect}, {"server", be.TimeoutServer}, {"check", be.TimeoutCheck}, {"queue", be.TimeoutQueue}, {"tunnel", be.TimeoutTunnel}, {"server-fin", be.TimeoutServerFin}} {
		if t.d != 0 {
			w.line("timeout", t.name, w.time(t.d, time.Millisecond, "timeout "+t.name))
		}
	}
	for _, s := range be.Servers {
		w.checkName("server", s.Name)
		if s.Address == "" {
			w.fail("server %s/%s has no address", be.Name, s.Name)
		}
		words := []string{"server", s.Name, hostPortWord(s.Address, s.Port, s.PortSet)}
		w.line(append(words, w.serverParams(s)...)...)
	}
	for _, t := range be.Templates {
		if t.Prefix == "" {
			w.fail("server-template of backend %s has no prefix", be.Name)
		} else if c, bad := invalidPrefixChar(t.Prefix); bad {
			w.fail("character '%c' is not permitted in server-template prefix '%s'", c, t.Prefix)
		}
		rng := itoa(t.Low) + "-" + itoa(t.High)
		if t.Low == 1 {
			rng = itoa(t.High)
		}
		words := []string{"server-template", t.Prefix, rng, hostPortWord(t.FQDN, t.Params.Port, t.Params.PortSet)}
		w.line(append(words, w.serverParams(t.Params)...)...)
	}
}

// hostPortWord writes an address as a server line does.
func hostPortWord(host string, port int, portSet bool) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if !portSet {
		return host
	}
	return host + ":" + itoa(port)
}

// cookie returns the cookie line, checked with balancer's rules for it.
func (w *writer) cookie(c *balancer.CookieConfig) []string {
	if err := c.Validate(); err != nil {
		var le *balancer.CookieLineError
		if errors.As(err, &le) && le.Option != "" {
			w.fail("cookie %s: %v", le.Option, err)
		} else {
			w.fail("cookie: %v", err)
		}
	}
	return append([]string{"cookie"}, c.Words()...)
}

func (w *writer) serverParams(s balancer.Server) []string {
	var words []string
	add := func(ws ...string) { words = append(words, ws...) }
	if s.Cookie != "" {
		add("cookie", s.Cookie)
	}
	if s.Check {
		add("check")
	}
	inter := s.Inter
	if inter == 0 {
		inter = defaultInter
	}
	if inter != defaultInter {
		add("inter", w.time(inter, time.Millisecond, "inter"))
	}
	if s.FastInter != 0 && s.FastInter != inter {
		add("fastinter", w.time(s.FastInter, time.Millisecond, "fastinter"))
	}
	if s.DownInter != 0 && s.DownInter != inter {
		add("downinter", w.time(s.DownInter, time.Millisecond, "downinter"))
	}
	if s.Rise != 0 && s.Rise != defaultRise {
		add("rise", itoa(s.Rise))
	}
	if s.Fall != 0 && s.Fall != defaultFall {
		add("fall", itoa(s.Fall))
	}
	if s.Weight < 0 || s.Weight > 256 {
		w.fail("server %s: weight %d is not within 0 and 256", s.Name, s.Weight)
	} else if s.Weight != defaultWeight {
		add("weight", itoa(s.Weight))
	}
	if s.Backup {
		add("backup")
	}
	if s.Disabled {
		add("disabled")
	}
	if s.MaxConn < 0 {
		w.fail("server %s: negative maxconn %d", s.Name, s.MaxConn)
	} else if s.MaxConn != 0 {
		add("maxconn", itoa(s.MaxConn))
	}
	if s.IdlePool.MaxIdleSet {
		if s.IdlePool.MaxIdle < -1 {
			w.fail("server %s: pool-max-conn %d is below -1", s.Name, s.IdlePool.MaxIdle)
		}
		add("pool-max-conn", itoa(s.IdlePool.MaxIdle))
	}
	if s.IdlePool.PurgeDelaySet {
		add("pool-purge-delay", balancer.FormatHAProxyTime(s.IdlePool.PurgeDelay))
	}
	if s.CheckPort != 0 {
		add("port", itoa(s.CheckPort))
	}
	if s.Resolvers != "" {
		add("resolvers", s.Resolvers)
	}
	if s.ResolvePrefer != "" {
		add("resolve-prefer", s.ResolvePrefer)
	}
	if s.AllowDupIP {
		add("resolve-opts", "allow-dup-ip")
	}
	if len(s.InitAddr) > 0 && strings.Join(s.InitAddr, ",") != strings.Join(defaultInitAddr(&s), ",") {
		add("init-addr", strings.Join(s.InitAddr, ","))
	}
	if s.SSL {
		add("ssl")
	}
	if s.CheckSSL {
		add("check-ssl")
	}
	for _, o := range []struct{ kw, v string }{
		{"verify", s.TLS.Verify}, {"ca-file", s.TLS.CAFile}, {"sni", s.TLS.SNI}, {"crt", s.TLS.Crt},
	} {
		if o.v != "" {
			add(o.kw, o.v)
		}
	}
	return words
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// graceComments writes Tether's dynamic-cookie grace state as comments,
// which HAProxy ignores: the address grace, and each retired key by
// fingerprint with the end of its window.
func (w *writer) graceComments(be balancer.Backend) {
	if be.DynamicCookieAddrGrace > 0 {
		w.buf.WriteString("    # tether: dynamic-cookie-addr-grace " + balancer.FormatHAProxyTime(be.DynamicCookieAddrGrace) + "\n")
	}
	for _, rk := range be.RetiredKeys {
		w.buf.WriteString("    # tether: retired dynamic-cookie-key fingerprint " + rk.Key.String() + " honoured until " + rk.Until.UTC().Format(time.RFC3339) + "\n")
	}
}

// sslDefaultLines returns the global lines TLS binds depend on.
func sslDefaultLines(d balancer.SSLDefaults) [][]string {
	var lines [][]string
	for _, l := range []struct{ kw, v string }{
		{"crt-base", d.CrtBase}, {"ca-base", d.CABase},
		{"ssl-default-bind-ciphers", d.Ciphers}, {"ssl-default-bind-ciphersuites", d.CipherSuites},
	} {
		if l.v != "" {
			lines = append(lines, []string{l.kw, l.v})
		}
	}
	if len(d.Options) > 0 {
		lines = append(lines, append([]string{"ssl-default-bind-options"}, d.Options...))
	}
	return lines
}

// bindLine returns the words of a bind line for b.
func (w *writer) bindLine(frontend string, b balancer.Bind) []string {
	words := []string{"bind", b.Addr}
	t := b.TLS
	if t == nil {
		return words
	}
	words = append(words, "ssl")
	if len(t.Certs) == 0 {
		w.fail("frontend %s: bind %s: ssl without a certificate", frontend, b.Addr)
	}
	for _, c := range t.Certs {
		kw := "crt"
		if c.List {
			kw = "crt-list"
		}
		words = append(words, kw, c.Path)
	}
	if len(t.ALPN) > 0 {
		words = append(words, "alpn", strings.Join(t.ALPN, ","))
	}
	for _, o := range []struct{ kw, v string }{
		{"ssl-min-ver", t.MinVer}, {"ssl-max-ver", t.MaxVer}, {"ciphers", t.Ciphers}, {"ciphersuites", t.CipherSuites},
		{"verify", t.Verify}, {"ca-file", t.CAFile},
	} {
		if o.v != "" {
			words = append(words, o.kw, o.v)
		}
	}
	if t.StrictSNI {
		words = append(words, "strict-sni")
	}
	if t.NoTLSTickets {
		words = append(words, "no-tls-tickets")
	}
	return words
}

// forwardForLine returns the words of an "option forwardfor" line.
func forwardForLine(o balancer.ForwardForOptions) []string {
	words := []string{"option", "forwardfor"}
	if o.Except != "" {
		words = append(words, "except", o.Except)
	}
	if o.Header != "" {
		words = append(words, "header", o.Header)
	}
	if o.IfNone {
		words = append(words, "if-none")
	}
	return words
}
