package haproxycfg

import (
	"net/netip"
	"slices"
	"strings"

	"tether/balancer"
	"tether/balancer/accesslog"
)

// syslogFacilities are the facility names HAProxy accepts on a log line.
const syslogFacilities = "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 local0 local1 local2 local3 local4 local5 local6 local7"

// syslogLevels are the level names HAProxy accepts on a log line.
const syslogLevels = "emerg alert crit err warning notice info debug"

// logGroup is how a log line Tether does not write to is classified.
var logGroup = keywordGroup{verdict: warned, why: whyLogTarget}

// parseLog handles a "log" line of the global section (into is the global
// targets, global nil) or of a proxy (global holds the global targets, for
// "log global"). Tether writes to "stdout", "stderr" and UDP syslog
// servers; any other target is warned about and ignored.
func (p *parser) parseLog(args []string, into *[]balancer.LogTarget, global []balancer.LogTarget) {
	if arg(args, 1) == "global" && len(args) == 2 {
		if global == nil && p.section == secGlobal {
			p.errorf("'log global' is only valid in proxy sections.")
			return
		}
		*into = append(*into, global...)
		return
	}
	t, ok := p.parseLogTarget(args)
	if ok {
		*into = append(*into, t)
	}
}

// parseLogTarget reads "log ADDR [len N] [format F] [sample R:S] FACILITY
// [LEVEL [MINLEVEL]]". It returns false for a line in error (reported) or
// naming a target Tether does not write to (warned): Tether writes to
// stdout, stderr and syslog servers over UDP given by IP address.
func (p *parser) parseLogTarget(args []string) (balancer.LogTarget, bool) {
	var t balancer.LogTarget
	addr := arg(args, 1)
	if addr == "" {
		p.errorf("'log' expects either <address[:port]> and <facility> or 'global' as arguments.")
		return t, false
	}
	what := "'log " + addr + "'"
	supported := true
	udp, isUDP := udpLogAddress(addr)
	if addr != "stdout" && addr != "stderr" && !isUDP {
		supported = false
	}
	format := ""
	i := 2
	for ; i+1 < len(args); i += 2 {
		switch args[i] {
		case "format":
			format = args[i+1]
			if !hasWord("local raw rfc3164 rfc5424 priority short timed iso", format) {
				p.errorf("unknown log format '%s'", format)
				return t, false
			}
			continue
		case "len":
			n, ok := parseUint(args[i+1], 65535)
			if !ok || n < 80 {
				p.errorf("invalid log length '%s', must be a value between 80 and 65535", args[i+1])
				return t, false
			}
			t.Len = n
			if n == accesslog.DefaultMaxLen {
				t.Len = 0
			}
			continue
		case "sample":
			supported = false
			what = "'log " + addr + " sample'"
			continue
		}
		break
	}
	facility := arg(args, i)
	if facility == "" {
		p.errorf("'log' expects either <address[:port]> and <facility> or 'global' as arguments.")
		return t, false
	}
	if !hasWord(syslogFacilities, facility) {
		p.errorf("unknown log facility '%s'", facility)
		return t, false
	}
	levels := args[i+1:]
	for len(levels) > 0 && levels[len(levels)-1] == "" {
		levels = levels[:len(levels)-1]
	}
	if len(levels) > 2 {
		p.errorf("too many args '%s'", strings.Join(levels[2:], " "))
		return t, false
	}
	for _, l := range levels {
		if !hasWord(syslogLevels, l) {
			p.errorf("unknown optional log level '%s'", l)
			return t, false
		}
	}
	if !supported {
		p.unsupported(logGroup, what)
		return t, false
	}
	t.Address, t.Format, t.Facility = addr, format, facility
	if isUDP {
		t.Address = udp
	}
	if len(levels) > 0 {
		t.Level = levels[0]
	}
	if len(levels) > 1 {
		t.MinLevel = levels[1]
	}
	return t, true
}

// defaultSyslogPort is where a syslog server listens when a log line
// names none.
const defaultSyslogPort = 514

// udpLogAddress reads a log target naming a syslog server over UDP by IP
// address, as "udp@", "udp4@", "udp6@", "ipv4@", "ipv6@" or no prefix
// followed by an address and an optional port (after the last colon for
// IPv6, as HAProxy reads it, or in brackets). It returns the address as
// "ip:port".
func udpLogAddress(s string) (string, bool) {
	for _, prefix := range []string{"udp@", "udp4@", "udp6@", "ipv4@", "ipv6@"} {
		if rest, ok := strings.CutPrefix(s, prefix); ok {
			s = rest
			break
		}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return netip.AddrPortFrom(a, defaultSyslogPort).String(), true
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", false
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return "", false
	}
	port := defaultSyslogPort
	if s[i+1:] != "" {
		n, ok := parseUint(s[i+1:], 65535)
		if !ok {
			return "", false
		}
		port = n
	}
	return netip.AddrPortFrom(a, uint16(port)).String(), true
}

// parseCapture reads "capture request header NAME len N", "capture
// response header NAME len N" and "capture cookie NAME len N" into fe.
func (p *parser) parseCapture(args []string, fe *balancer.Frontend) {
	kind := arg(args, 1)
	var name, lenWord, n string
	switch kind {
	case "cookie":
		name, lenWord, n = arg(args, 2), arg(args, 3), arg(args, 4)
		if lenWord != "len" || name == "" {
			p.errorf("'capture cookie' expects 'len' <length>.")
			return
		}
	case "request", "response":
		if arg(args, 2) != "header" {
			p.errorf("'capture' expects 'cookie', 'request header' or 'response header'.")
			return
		}
		name, lenWord, n = arg(args, 3), arg(args, 4), arg(args, 5)
		if name == "" || lenWord != "len" {
			p.errorf("'capture %s header' expects <header> 'len' <length>.", kind)
			return
		}
	default:
		p.errorf("'capture' expects 'cookie', 'request header' or 'response header'.")
		return
	}
	size, ok := parseUint(n, 1<<31-1)
	if !ok || size == 0 {
		what := "cookie"
		if kind != "cookie" {
			what = kind + " header"
		}
		p.errorf("'capture %s' expects a positive length.", what)
		return
	}
	c := balancer.Capture{Name: name, Len: size}
	switch kind {
	case "cookie":
		if fe.CaptureCookie != nil {
			p.errorf("only one 'capture cookie' is allowed.")
			return
		}
		fe.CaptureCookie = &c
	case "request":
		fe.CaptureRequest = append(fe.CaptureRequest, c)
	case "response":
		fe.CaptureResponse = append(fe.CaptureResponse, c)
	}
}

// parseLogFormat reads "log-format STRING", refusing a variable Tether
// does not write.
func (p *parser) parseLogFormat(args []string, fe *balancer.Frontend) {
	if arg(args, 1) == "" {
		p.errorf("log-format expects a format string.")
		return
	}
	if len(args) > 2 && args[2] != "" {
		p.errorf("log-format expects only one argument, don't forget to escape spaces!")
		return
	}
	if _, err := accesslog.ParseLayout(args[1]); err != nil {
		p.errorf("log-format: %v", err)
		return
	}
	fe.LogFormat, fe.HTTPLog = args[1], false
}

// cloneLogs returns a copy of targets, nil when empty.
func cloneLogs(targets []balancer.LogTarget) []balancer.LogTarget {
	if len(targets) == 0 {
		return nil
	}
	return slices.Clone(targets)
}
