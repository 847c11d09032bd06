package runtimeapi

import (
	"sort"
	"strconv"
	"strings"
)

// command is one entry of the command table: the keyword words that
// select it, its help line, and what it does.
type command struct {
	words []string
	// usage and desc form the help line; a command without usage is
	// hidden from help.
	usage string
	desc  string
	// changes marks commands that change the balancer (audited when they
	// fail).
	changes bool
	// secretArg is the index of an argument masked in the audit log, or 0.
	secretArg int
	// extension marks Tether's own commands, which HAProxy lacks.
	extension bool
	run       func(c *call)
}

// maxMatches is HAProxy's CLI_MAX_MATCHES: the number of suggestions.
const maxMatches = 5

// prefixWords is HAProxy's CLI_PREFIX_KW_NB: keyword words compared.
const prefixWords = 5

// helpTail are the lines every help or unknown-command screen ends with.
var helpTail = []string{
	helpLine("help [<command>]", "list matching or all commands"),
	helpLine("prompt", "toggle interactive mode with prompt"),
	helpLine("quit", "disconnect"),
}

func helpLine(usage, desc string) string {
	return "  " + padRight(usage, 40) + ": " + desc + "\n"
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

// usage writes HAProxy 2.6's help screen (ishelp) or unknown-command
// screen for args, with the same fuzzy suggestions (cli_gen_usage_msg).
func (d *Dispatcher) usage(c *call, args []string, ishelp bool) {
	// Count the leading words that exactly match some keyword.
	length := 0
	for _, kw := range d.table {
		for idx := 0; idx < prefixWords; idx++ {
			if idx >= len(kw.words) || idx >= len(args) || args[idx] == "" {
				break
			}
			if kw.words[idx] != args[idx] {
				break
			}
			if idx+1 > length {
				length = idx + 1
			}
		}
	}

	var b strings.Builder
	if ishelp {
		b.WriteString("The following commands are valid at this level:\n")
	} else if length == 0 && (len(args) == 0 || args[0] == "") {
		b.WriteString("Unknown command. Please enter one of the following commands only:\n")
	} else {
		b.WriteString("Unknown command, but maybe one of the following ones is a better match:\n")
	}

	type match struct {
		kw   *command
		dist int
	}
	var matches [maxMatches]match
	for i := range matches {
		matches[i].dist = int(^uint(0) >> 1)
	}
	if length < len(args) && args[length] != "" {
		for _, kw := range d.table {
			idx := 0
			for ; idx < length; idx++ {
				if idx >= len(kw.words) || kw.words[idx] != args[idx] {
					break
				}
			}
			if kw.usage == "" || idx != length {
				continue
			}
			var wordSig, listSig fingerprint
			totlen := 0
			for i := idx; i < prefixWords && i < len(args) && args[i] != ""; i++ {
				wordSig.update(args[i])
				totlen += len(args[i])
			}
			for i := idx; i < prefixWords && i < len(kw.words); i++ {
				listSig.update(kw.words[i])
				totlen += len(kw.words[i])
			}
			dist := wordSig.distance(&listSig)
			if dist < matches[maxMatches-1].dist {
				matches[maxMatches-1] = match{kw, dist}
				for i := maxMatches - 2; i >= 0; i-- {
					if matches[i+1].dist >= matches[i].dist {
						break
					}
					matches[i], matches[i+1] = matches[i+1], matches[i]
				}
			}
		}
	}

	if matches[0].kw != nil {
		// The best matches are listed in help order, not by distance.
		var lines []string
		for _, m := range matches {
			if m.kw == nil || m.dist > 3*matches[0].dist/2 {
				break
			}
			lines = append(lines, helpLine(m.kw.usage, m.kw.desc))
		}
		sort.Strings(lines)
		for _, l := range lines {
			b.WriteString(l)
		}
	} else {
		var lines []string
		for _, kw := range d.table {
			if kw.usage == "" {
				continue
			}
			idx := 0
			for ; idx < length; idx++ {
				if idx >= len(kw.words) || kw.words[idx] != args[idx] {
					break
				}
			}
			if idx == length {
				lines = append(lines, helpLine(kw.usage, kw.desc))
			}
		}
		sort.Strings(lines)
		for _, l := range lines {
			b.WriteString(l)
		}
	}
	for _, l := range helpTail {
		b.WriteString(l)
	}
	c.msg(sevInfo, b.String())
}

// fingerprint is HAProxy's word fingerprint: counts of transitions
// between character classes (26 letters, digit, other, begin, end).
type fingerprint [1024]uint8

func charClass(c byte) int {
	switch {
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= '0' && c <= '9':
		return 26
	}
	return 27
}

// update adds word's transitions to the fingerprint.
func (f *fingerprint) update(word string) {
	from := 28
	for i := 0; i < len(word); i++ {
		to := charClass(word[i])
		f[from*32+to]++
		from = to
	}
	f[from*32+29]++
}

// distance is the sum of absolute differences of two fingerprints.
func (f *fingerprint) distance(g *fingerprint) int {
	dist := 0
	for i := range f {
		k := int(f[i]) - int(g[i])
		if k < 0 {
			k = -k
		}
		dist += k
	}
	return dist
}

func itoa(n int) string { return strconv.Itoa(n) }
