package runtimeapi

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"tether/balancer"
)

// commandTable lists the commands Tether implements, with HAProxy 2.6's
// keywords and help lines.
func commandTable() []*command {
	admin := func(f func(c *call)) func(c *call) {
		return func(c *call) {
			if c.hasLevel(balancer.LevelAdmin) {
				f(c)
			}
		}
	}
	return append([]*command{
		{words: []string{"help"}, run: func(c *call) { c.d.usage(c, c.args[1:], true) }},
		{words: []string{"prompt"}, run: func(c *call) { c.s.prompt = !c.s.prompt }},
		{words: []string{"quit"}, run: func(c *call) { c.s.quit = true }},
		{words: []string{"operator"}, usage: "operator", desc: "lower the level of the current CLI session to operator", run: cmdLowerLevel(balancer.LevelOperator)},
		{words: []string{"user"}, usage: "user", desc: "lower the level of the current CLI session to user", run: cmdLowerLevel(balancer.LevelUser)},
		{words: []string{"expert-mode"}, run: admin(cmdMode("expert-mode", func(s *session) *bool { return &s.expert }))},
		{words: []string{"experimental-mode"}, run: admin(cmdMode("experimental-mode", func(s *session) *bool { return &s.experimental }))},
		{words: []string{"show", "cli", "level"}, usage: "show cli level", desc: "display the level of the current CLI session", run: func(c *call) { c.msg(sevInfo, c.s.level.String()+"\n") }},
		{words: []string{"set", "severity-output"}, usage: "set severity-output [none|number|string]", desc: "set presence of severity level in feedback information", run: cmdSetSeverity},
		{words: []string{"set", "timeout"}, usage: "set timeout [cli] <delay>", desc: "change a timeout setting", run: cmdSetTimeout},
		{words: []string{"show", "version"}, usage: "show version", desc: "show version of the current process", run: func(c *call) { c.msg(sevInfo, Version+"\n") }},
		{words: []string{"show", "info"}, usage: "show info [desc|json|typed|float]*", desc: "report information about the running process", run: cmdShowInfo},
		{words: []string{"show", "stat"}, usage: "show stat [desc|json|no-maint|typed|up]*", desc: "report counters for each proxy and server", run: cmdShowStat},
		{words: []string{"show", "backend"}, usage: "show backend", desc: "list backends in the current running config", run: cmdShowBackend},
		{words: []string{"show", "servers", "conn"}, usage: "show servers conn [<backend>]", desc: "dump server connections status (all or for a single backend)", run: cmdShowServersConn},
		{words: []string{"show", "servers", "state"}, usage: "show servers state [<backend>]", desc: "dump volatile server information (all or for a single backend)", run: cmdShowServersState},
		{words: []string{"show", "sticky"}, usage: "show sticky [<backend>]", desc: "dump cookie persistence counters per server (all or for a single backend)", extension: true, run: cmdShowSticky},
		{words: []string{"show", "resolvers"}, usage: "show resolvers [id]", desc: "dumps counters from all resolvers section and associated name servers", run: cmdShowResolvers},
		{words: []string{"get", "weight"}, usage: "get weight <bk>/<srv>", desc: "report a server's current weight", run: cmdGetWeight},
		{words: []string{"set", "weight"}, usage: "set weight <bk>/<srv>  (DEPRECATED)", desc: "change a server's weight (use 'set server' instead)", changes: true, run: admin(cmdSetWeight)},
		{words: []string{"set", "server"}, usage: "set server <bk>/<srv> [opts]", desc: "change a server's state, weight, address or ssl", changes: true, run: admin(cmdSetServer)},
		{words: []string{"set", "maxconn", "server"}, usage: "set maxconn server <bk>/<srv>", desc: "change a server's maxconn setting", changes: true, run: admin(cmdSetMaxconnServer)},
		{words: []string{"enable", "server"}, usage: "enable server  (DEPRECATED)", desc: "enable a disabled server (use 'set server' instead)", changes: true, run: admin(cmdAdminState(balancer.Ready))},
		{words: []string{"disable", "server"}, usage: "disable server (DEPRECATED)", desc: "disable a server for maintenance (use 'set server' instead)", changes: true, run: admin(cmdAdminState(balancer.Maint))},
		{words: []string{"enable", "health"}, usage: "enable health", desc: "enable health checks", changes: true, run: admin(cmdHealthCheck(true))},
		{words: []string{"disable", "health"}, usage: "disable health", desc: "disable health checks", changes: true, run: admin(cmdHealthCheck(false))},
		{words: []string{"shutdown", "sessions", "server"}, usage: "shutdown sessions server <bk>/<srv>", desc: "kill sessions on a server", changes: true, run: admin(cmdShutdownSessions)},
		{words: []string{"clear", "counters"}, usage: "clear counters [all]", desc: "clear max statistics counters (or all counters)", changes: true, run: cmdClearCounters},
		{words: []string{"enable", "dynamic-cookie", "backend"}, usage: "enable dynamic-cookie backend <bk>", desc: "enable dynamic cookies on a specific backend", changes: true, run: admin(cmdDynamicCookie(true))},
		{words: []string{"disable", "dynamic-cookie", "backend"}, usage: "disable dynamic-cookie backend <bk>", desc: "disable dynamic cookies on a specific backend", changes: true, run: admin(cmdDynamicCookie(false))},
		{words: []string{"set", "dynamic-cookie-key", "backend"}, usage: "set dynamic-cookie-key backend <bk> <k>", desc: "change a backend secret key for dynamic cookies", changes: true, secretArg: 4, run: admin(cmdSetDynamicCookieKey)},
		{words: []string{"set", "cookie", "backend"}, usage: "set cookie backend <bk> <cookie line>", desc: "replace a backend's cookie line (Tether extension)", changes: true, extension: true, run: admin(cmdSetCookie)},
		{words: []string{"set", "maint-when-idle", "server"}, usage: "set maint-when-idle server <bk>/<srv> on|off", desc: "put a server in maintenance once it is idle, or stop waiting (Tether extension)", changes: true, extension: true, run: admin(cmdSetMaintWhenIdle)},
		{words: []string{"set", "dynamic-cookie-addr-grace", "backend"}, usage: "set dynamic-cookie-addr-grace backend <bk> <delay>", desc: "keep old-address dynamic cookies valid for <delay> after an address change (Tether extension)", changes: true, extension: true, run: admin(cmdSetDynamicCookieAddrGrace)},
		{words: []string{"show", "dynamic-cookie-grace"}, usage: "show dynamic-cookie-grace [<backend>]", desc: "list the dynamic-cookie grace windows (all or for a single backend) (Tether extension)", extension: true, run: cmdShowDynamicCookieGrace},
		{words: []string{"show", "cookie", "backend"}, usage: "show cookie backend <bk>", desc: "show a backend's cookie line (Tether extension)", extension: true, run: cmdShowCookie},
		{words: []string{"add", "server"}, usage: "add server <bk>/<srv>", desc: "create a new server", changes: true, run: admin(cmdAddServer)},
		{words: []string{"del", "server"}, usage: "del server <bk>/<srv>", desc: "remove a dynamically added server", changes: true, run: admin(cmdDelServer)},
		{words: []string{"show", "ssl", "cert"}, usage: "show ssl cert [<certfile>]", desc: "display the SSL certificates used in memory, or the details of a file", run: admin(cmdShowSSLCert)},
		{words: []string{"set", "ssl", "cert"}, usage: "set ssl cert <certfile> <payload>", desc: "replace a certificate file", changes: true, run: admin(cmdSetSSLCert)},
		{words: []string{"commit", "ssl", "cert"}, usage: "commit ssl cert <certfile>", desc: "commit a certificate file", changes: true, run: admin(cmdCommitSSLCert)},
		{words: []string{"abort", "ssl", "cert"}, usage: "abort ssl cert <certfile>", desc: "abort a transaction for a certificate file", changes: true, run: admin(cmdAbortSSLCert)},
		{words: []string{"reload"}, usage: "reload", desc: "re-read the configuration file and apply what changed (Tether extension)", changes: true, extension: true, run: admin(cmdReload)},
	}, aclCommands()...)
}

// cmdReload re-reads the configuration file, as SIGUSR2 and SIGHUP do.
func cmdReload(c *call) {
	if c.d.opts.Reload == nil {
		c.err("Nothing to reload: no configuration file.\n")
		return
	}
	out, err := c.d.opts.Reload(c.ctx, c.s.origin)
	if err != nil {
		c.err(err.Error() + "\n")
		return
	}
	c.msg(sevInfo, out+"\n")
}

func cmdLowerLevel(l balancer.Level) func(c *call) {
	return func(c *call) {
		if c.hasLevel(l) {
			c.s.level = l
		}
	}
}

// cmdMode implements HAProxy 2.6's "expert-mode [on|off]" and
// "experimental-mode [on|off]": without an argument it reports the
// switch; "on" sets it and any other argument clears it.
func cmdMode(name string, flag func(s *session) *bool) func(c *call) {
	return func(c *call) {
		f := flag(c.s)
		if c.arg(1) == "" {
			state := "OFF"
			if *f {
				state = "ON"
			}
			c.msg(sevInfo, name+" is "+state+"\n")
			return
		}
		*f = c.arg(1) == "on"
	}
}

func cmdSetSeverity(c *call) {
	switch c.arg(2) {
	case "none":
		c.s.severity = severityNone
	case "number":
		c.s.severity = severityNumber
	case "string":
		c.s.severity = severityString
	default:
		c.err("one of 'none', 'number', 'string' is a required argument\n")
	}
}

func cmdSetTimeout(c *call) {
	if c.arg(2) != "cli" {
		c.err("'set timeout' only supports 'cli'.\n")
		return
	}
	if c.arg(3) == "" {
		c.err("Expects an integer value.\n")
		return
	}
	d, _, err := balancer.ParseHAProxyTime(c.arg(3), time.Second)
	if err != nil || d < time.Second {
		c.err("Invalid timeout value.\n")
		return
	}
	c.s.timeout = d
}

func cmdShowBackend(c *call) {
	snap := c.d.b.Snapshot()
	var b strings.Builder
	b.WriteString("# name\n")
	for _, be := range snap.Backends {
		b.WriteString(be.Config.Name + "\n")
	}
	c.dump(b.String())
}

func cmdShowResolvers(c *call) {
	if c.d.opts.ShowResolvers != nil {
		var b strings.Builder
		if err := c.d.opts.ShowResolvers(&b, c.arg(2)); err != nil {
			c.err(err.Error() + "\n")
			return
		}
		c.dump(b.String())
		return
	}
	if c.arg(2) != "" {
		c.err("Can't find that resolvers section\n")
	}
}

func cmdGetWeight(c *call) {
	// get weight does its own lookup, without cli_find_server.
	beName, srvName, found := strings.Cut(c.arg(2), "/")
	if !found || srvName == "" {
		c.err("Require 'backend/server'.\n")
		return
	}
	snap := c.d.b.Snapshot()
	be := backendByName(snap, beName)
	if be == nil {
		c.err("No such backend.\n")
		return
	}
	sv := serverByName(be, srvName)
	if sv == nil {
		c.err("No such server.\n")
		return
	}
	c.dump(fmt.Sprintf("%d (initial %d)\n", sv.Weight, sv.Config.Weight))
}

func cmdSetWeight(c *call) {
	snap := c.d.b.Snapshot()
	be, sv := c.findServer(snap, c.arg(2))
	if sv == nil {
		return
	}
	c.setWeight(be, sv, c.arg(3))
}

// setWeight parses and applies a weight like HAProxy's
// server_parse_weight_change_request, with its messages.
func (c *call) setWeight(be *balancer.BackendStatus, sv *balancer.ServerStatus, arg string) {
	if arg == "" {
		c.err("Require <weight> or <weight%>.\n")
		return
	}
	w, rest, ok := strtol(arg)
	switch {
	case !ok:
		c.err("Empty weight string empty or preceded by garbage")
		return
	case rest == "%":
		if w < 0 {
			c.err("Relative weight must be positive.\n")
			return
		}
		w = min(w, 25600)
		w = int64(sv.Config.Weight) * w / 100
		w = min(w, 256)
	case w < 0 || w > 256:
		c.err("Absolute weight can only be between 0 and 256 inclusive.\n")
		return
	case rest != "":
		c.err("Trailing garbage in weight string")
		return
	}
	if w != 0 && int(w) != sv.Config.Weight && !be.Config.Balance.Dynamic() {
		c.err("Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n")
		return
	}
	c.applyReport(balancer.SetWeight{ServerRef: ref(be, sv), Weight: int(w)})
}

func ref(be *balancer.BackendStatus, sv *balancer.ServerStatus) balancer.ServerRef {
	return balancer.ServerRef{Backend: be.Config.Name, Server: sv.Config.Name}
}

// applyReport applies a change and writes the reply for a failure.
func (c *call) applyReport(ch balancer.Change) bool {
	err := c.apply(ch)
	if err == nil {
		return true
	}
	c.err(errorReply(err))
	c.d.log.Warn("runtime API change failed", "command", c.cmd, "err", err)
	return false
}

// errorReply maps a balancer error to HAProxy's reply for it. An error
// with a Reply method (a committer refusing a change) gives its own.
func errorReply(err error) string {
	var own interface{ Reply() string }
	if errors.As(err, &own) {
		return own.Reply() + "\n"
	}
	switch {
	case errors.Is(err, balancer.ErrNoSuchBackend):
		return "No such backend.\n"
	case errors.Is(err, balancer.ErrNoSuchServer):
		return "No such server.\n"
	case errors.Is(err, balancer.ErrServerExists):
		return "Already exists a server with the same name in backend.\n"
	case errors.Is(err, balancer.ErrNotDynamicBackend):
		return "Backend must use a dynamic load balancing to support dynamic servers."
	case errors.Is(err, balancer.ErrStaticWeight):
		return "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
	case errors.Is(err, balancer.ErrWeightRange):
		return "Absolute weight can only be between 0 and 256 inclusive.\n"
	case errors.Is(err, balancer.ErrNotInMaintenance):
		return "Only servers in maintenance mode can be deleted."
	case errors.Is(err, balancer.ErrServerReferenced):
		return "This server cannot be removed at runtime due to other configuration elements pointing to it."
	case errors.Is(err, balancer.ErrServerHasConns):
		return "Server still has connections attached to it, cannot remove it."
	case errors.Is(err, balancer.ErrCheckNotConfigured):
		return "Health check was not configured on this server, cannot enable.\n"
	case errors.Is(err, balancer.ErrKeyBytes):
		return "The key must not contain NUL, CR or LF bytes.\n"
	}
	return "Failed to apply the change, check logs for details.\n"
}

func cmdSetServer(c *call) {
	snap := c.d.b.Snapshot()
	be, sv := c.findServer(snap, c.arg(2))
	if sv == nil {
		return
	}
	r := ref(be, sv)
	switch c.arg(3) {
	case "weight":
		c.setWeight(be, sv, c.arg(4))
	case "state":
		var m balancer.AdminMode
		switch c.arg(4) {
		case "ready":
			m = balancer.Ready
		case "drain":
			m = balancer.Drain
		case "maint":
			m = balancer.Maint
		default:
			c.err("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n")
			return
		}
		c.applyReport(balancer.SetAdminState{ServerRef: r, State: m})
	case "health":
		var h balancer.ForcedHealth
		switch c.arg(4) {
		case "up":
			h = balancer.HealthUp
		case "stopping":
			h = balancer.HealthStopping
		case "down":
			h = balancer.HealthDown
		default:
			c.err("'set server <srv> health' expects 'up', 'stopping', or 'down'.\n")
			return
		}
		c.applyReport(balancer.SetHealth{ServerRef: r, Health: h})
	case "check-port":
		if c.arg(4) == "" {
			c.err("set server <b>/<s> check-port requires a port.\n")
			return
		}
		if !sv.Config.Check {
			c.msg(sevWarning, "health checks are not enabled on this server")
			c.failed = "health checks are not enabled on this server"
			return
		}
		p, rest, ok := strtol(c.arg(4))
		if !ok || rest != "" {
			c.msg(sevWarning, "provided port is not an integer")
			c.failed = "provided port is not an integer"
			return
		}
		if p < 0 || p > 65535 {
			c.msg(sevWarning, "provided port is invalid")
			c.failed = "provided port is invalid"
			return
		}
		c.applyReport(balancer.SetCheckPort{ServerRef: r, Port: int(p)})
	case "addr":
		c.setAddr(sv, r)
	case "agent", "agent-send":
		// Tether runs no agent checks: HAProxy's reply for a server
		// without one.
		c.err("agent checks are not enabled on this server.\n")
	case "agent-addr", "agent-port":
		if c.arg(4) == "" {
			if c.arg(3) == "agent-addr" {
				c.err("set server <b>/<s> agent-addr requires an address and optionally a port.\n")
			} else {
				c.err("set server <b>/<s> agent-port requires a port.\n")
			}
			return
		}
		// srv_update_agent_addr_port's warning, without a final newline.
		c.msg(sevWarning, "agent checks are not enabled on this server")
		c.failed = "agent checks are not enabled on this server"
	default:
		c.err("usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n")
	}
}

// noChangeNeeded reports whether a set server addr report says only that
// the address and port are already the ones asked for: not a failure.
func noChangeNeeded(report string) bool {
	for _, part := range strings.Split(report, ", ") {
		if !strings.HasPrefix(part, "no need to change the ") {
			return false
		}
	}
	return true
}

// setAddr implements set server B/S addr IP [port P] with the report of
// HAProxy's srv_update_addr_port.
func (c *call) setAddr(sv *balancer.ServerStatus, r balancer.ServerRef) {
	addr := c.arg(4)
	if addr == "" {
		c.err("set server <b>/<s> addr requires an address and optionally a port.\n")
		return
	}
	var port string
	hasPort := c.arg(5) == "port"
	if hasPort {
		port = c.arg(6)
	}
	const by = " by 'stats socket command'\n"
	var msg strings.Builder
	change := balancer.SetAddr{ServerRef: r, Address: sv.Config.Address}
	changed := false
	// report applies what changed and reports it; problem marks a report
	// that ends on an error, which fails the command even when the
	// address changed before it.
	report := func(problem bool) {
		if changed && !c.applyReport(change) {
			return
		}
		if problem || !changed && !noChangeNeeded(msg.String()) {
			c.failed = msg.String()
		}
		c.msg(sevWarning, msg.String()+by)
	}

	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		msg.WriteString("Invalid addr '" + addr + "'")
		report(true)
		return
	}
	cur, curErr := netip.ParseAddr(sv.Config.Address)
	if curErr != nil {
		msg.WriteString("Update for the current server address family is only supported through configuration file")
		report(true)
		return
	}
	if cur == ip {
		msg.WriteString("no need to change the addr")
	} else {
		change.Address = ip.String()
		changed = true
		msg.WriteString("IP changed from '" + cur.String() + "' to '" + addr + "'")
	}
	if hasPort {
		msg.WriteString(", ")
		v, _, ok := strtol(port)
		if !ok {
			msg.WriteString("problem converting port '" + port + "' to an int")
			report(true)
			return
		}
		if port[0] == '+' || port[0] == '-' {
			msg.WriteString("can't change <port> to port map because it is incompatible with current health check port configuration (use 'port' statement from the 'server' directive.")
			report(true)
			return
		}
		newPort := int(uint16(v))
		if newPort != sv.Config.Port {
			msg.WriteString(fmt.Sprintf("port changed from '%d' to '%d'", sv.Config.Port, newPort))
			change.Port, change.PortSet = newPort, true
			changed = true
		} else {
			msg.WriteString("no need to change the port")
		}
	}
	report(false)
}

func cmdSetMaxconnServer(c *call) {
	snap := c.d.b.Snapshot()
	be, sv := c.findServer(snap, c.arg(3))
	if sv == nil {
		return
	}
	arg := c.arg(4)
	if arg == "" {
		c.err("Require <maxconn>.\n")
		return
	}
	v, rest, ok := strtol(arg)
	switch {
	case !ok:
		c.err("maxconn string empty or preceded by garbage")
		return
	case rest != "":
		c.err("Trailing garbage in maxconn string")
		return
	}
	c.applyReport(balancer.SetMaxConn{ServerRef: ref(be, sv), MaxConn: int(v)})
}

func cmdAdminState(m balancer.AdminMode) func(c *call) {
	return func(c *call) {
		snap := c.d.b.Snapshot()
		be, sv := c.findServer(snap, c.arg(2))
		if sv == nil {
			return
		}
		c.applyReport(balancer.SetAdminState{ServerRef: ref(be, sv), State: m})
	}
}

func cmdHealthCheck(enable bool) func(c *call) {
	return func(c *call) {
		snap := c.d.b.Snapshot()
		be, sv := c.findServer(snap, c.arg(2))
		if sv == nil {
			return
		}
		if !sv.Config.Check {
			if enable {
				c.err("Health check was not configured on this server, cannot enable.\n")
			}
			// Disabling a check that was never configured changes nothing.
			return
		}
		c.applyReport(balancer.SetCheckEnabled{ServerRef: ref(be, sv), Enabled: enable})
	}
}

func cmdShutdownSessions(c *call) {
	snap := c.d.b.Snapshot()
	be, sv := c.findServer(snap, c.arg(3))
	if sv == nil {
		return
	}
	c.applyReport(balancer.ShutdownSessions{ServerRef: ref(be, sv)})
}

func cmdClearCounters(c *call) {
	all := c.arg(2) == "all"
	if !c.hasLevel(balancer.LevelOperator) || (all && !c.hasLevel(balancer.LevelAdmin)) {
		return
	}
	c.applyReport(balancer.ClearCounters{All: all})
}

func cmdDynamicCookie(enable bool) func(c *call) {
	return func(c *call) {
		be := c.findBackend(c.d.b.Snapshot(), c.arg(3))
		if be == nil {
			return
		}
		c.applyReport(balancer.SetDynamicCookies{Backend: be.Config.Name, Enabled: enable})
	}
}

func cmdSetDynamicCookieKey(c *call) {
	be := c.findBackend(c.d.b.Snapshot(), c.arg(3))
	if be == nil {
		return
	}
	if c.arg(4) == "" {
		c.err("String value expected.\n")
		return
	}
	change := balancer.SetDynamicCookieKey{Backend: be.Config.Name, Key: balancer.Secret(c.arg(4))}
	if c.arg(5) == "grace" {
		// Tether extension; HAProxy ignores words after the key.
		d, ok := c.graceArg(6, "set dynamic-cookie-key backend <bk> <k> grace")
		if !ok {
			return
		}
		change.Grace = d
	}
	c.applyReport(change)
}

func cmdDelServer(c *call) {
	beName, srvName, found := strings.Cut(c.arg(2), "/")
	if !found || srvName == "" || beName == "" {
		c.err("Require 'backend/server'.")
		return
	}
	snap := c.d.b.Snapshot()
	be := backendByName(snap, beName)
	if be == nil {
		c.err("No such backend.")
		return
	}
	sv := serverByName(be, srvName)
	if sv == nil {
		c.err("No such server.")
		return
	}
	if err := sv.DeleteBlocker(); err != nil {
		c.err(errorReply(err))
		return
	}
	if c.applyReport(balancer.DelServer{ServerRef: ref(be, sv)}) {
		c.msg(sevInfo, "Server deleted.")
	}
}
