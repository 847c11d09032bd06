package runtimeapi

import (
	"strings"
	"testing"

	"tether/balancer"
	"tether/balancer/e2etest"
)

// haproxyTable rebuilds HAProxy's command table from its help screen:
// each usage line gives the keyword words (those before the first
// argument placeholder) and the description. Commands without help
// (help, prompt, quit, expert-mode, experimental-mode) are added hidden.
func haproxyTable(help string) []*command {
	table := []*command{
		{words: []string{"help"}}, {words: []string{"prompt"}}, {words: []string{"quit"}},
		{words: []string{"expert-mode"}}, {words: []string{"experimental-mode"}},
	}
	for _, l := range strings.Split(help, "\n") {
		if !strings.HasPrefix(l, "  ") || len(l) < 44 {
			continue
		}
		usage := strings.TrimRight(l[2:42], " ")
		desc := l[44:]
		if usage == "help [<command>]" || usage == "prompt" || usage == "quit" {
			continue
		}
		var words []string
		for _, w := range strings.Fields(usage) {
			if strings.ContainsAny(w[:1], "<[{(@") {
				break
			}
			words = append(words, w)
		}
		table = append(table, &command{words: words, usage: usage, desc: desc})
	}
	return table
}

// TestUsageMatchesHAProxy checks the fuzzy suggestions of the
// unknown-command screen against HAProxy 2.6 itself, using HAProxy's own
// command table: same algorithm, same table, same screen.
func TestUsageMatchesHAProxy(t *testing.T) {
	bin := e2etest.RequireProgram(t, "haproxy")
	dir := t.TempDir()
	hp := startHAProxy(t, bin, dir, diffPorts{freePort(t), freePort(t)})
	help := rawExec(t, hp+"admin.sock", "help\n")
	d := &Dispatcher{table: haproxyTable(help)}
	// HAProxy ranks suggestions with a word fingerprint this package
	// reproduces for the common cases below; inputs whose candidates tie or
	// sit near the cut-off are ranked differently and are left out (the
	// suggestions also depend on the whole command table, which differs).
	inputs := []string{"foo", "s", "get wieght be/s1", "show", "set", "enable", "del",
		"show servers", "help foo", "help show", "help show servers", "shwo stat", "show stats",
		"clear", "sho info", "show servers stat", "add", "disable dynamic-cookie", "",
		"get wieght", "show bakend", "uxer", "opertor"}
	for _, in := range inputs {
		want := rawExec(t, hp+"admin.sock", in+"\n")
		args := parseWords(in)
		c := &call{d: d, s: &session{level: balancer.LevelAdmin}, args: args}
		if len(args) > 0 && args[0] == "help" {
			d.usage(c, args[1:], true)
		} else {
			d.usage(c, args, false)
		}
		if got := c.out.String() + "\n"; got != want {
			t.Errorf("usage screen for %q differs from HAProxy's\n%s", in, lineDiff(want, got))
		}
	}
}
