package haproxycfg

import (
	"slices"
	"strings"

	"tether/balancer"
)

// syslogFacilities are the facility names HAProxy accepts on a log line.
const syslogFacilities = "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 local0 local1 local2 local3 local4 local5 local6 local7"

// syslogLevels are the level names HAProxy accepts on a log line.
const syslogLevels = "emerg alert crit err warning notice info debug"

// logGroup is how a log line Tether does not write to is classified.
var logGroup = keywordGroup{verdict: warned, why: whyLogTarget}

// parseLog handles a "log" line of the global section (into is the global
// targets, global nil) or of a proxy (global holds the global targets, for
// "log global"). Tether writes to "stdout" and "stderr" in format raw; any
// other target is warned about and ignored.
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
// naming a target Tether does not write to (warned).
func (p *parser) parseLogTarget(args []string) (balancer.LogTarget, bool) {
	var t balancer.LogTarget
	addr := arg(args, 1)
	if addr == "" {
		p.errorf("'log' expects either <address[:port]> and <facility> or 'global' as arguments.")
		return t, false
	}
	what := "'log " + addr + "'"
	format, supported := "rfc3164", addr == "stdout" || addr == "stderr"
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
		case "len", "sample":
			supported = false
			what = "'log " + addr + " " + args[i] + "'"
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
	if supported && format != "raw" {
		supported = false
		what = "'log " + addr + " format " + format + "'"
	}
	if !supported {
		p.unsupported(logGroup, what)
		return t, false
	}
	t = balancer.LogTarget{Address: addr, Format: format, Facility: facility}
	if len(levels) > 0 {
		t.Level = levels[0]
	}
	if len(levels) > 1 {
		t.MinLevel = levels[1]
	}
	return t, true
}

// cloneLogs returns a copy of targets, nil when empty.
func cloneLogs(targets []balancer.LogTarget) []balancer.LogTarget {
	if len(targets) == 0 {
		return nil
	}
	return slices.Clone(targets)
}
