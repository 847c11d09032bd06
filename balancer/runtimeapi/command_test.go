package runtimeapi

import (
	"context"
	"testing"

	"tether/balancer"
)

// TestRunSaysWhetherCommandsSucceed runs typed commands and checks the
// success or failure Run reports against the reply HAProxy gives.
func TestRunSaysWhetherCommandsSucceed(t *testing.T) {
	b, _ := newTestBalancer(t, testCfg)
	d := NewDispatcher(b, DispatcherOptions{})
	tests := []struct {
		cmd   Command
		level balancer.Level
		ok    bool
		reply string
	}{
		{NewCommand("set", "server", "be/s1", "weight", "7"), balancer.LevelAdmin, true, ""},
		{NewCommand("set", "server", "be/nope", "weight", "7"), balancer.LevelAdmin, false, "No such server.\n"},
		{NewCommand("set", "weight", "be/s1", "999"), balancer.LevelAdmin, false, "Absolute weight can only be between 0 and 256 inclusive.\n"},
		{NewCommand("set", "server", "be/s1", "weight", "7"), balancer.LevelUser, false, "Permission denied\n"},
		{NewCommand("show", "nothing"), balancer.LevelAdmin, false, ""},
		{NewCommand("add", "server", "be/s9", "127.0.0.1:18089"), balancer.LevelAdmin, true, "New server registered.\n"},
		{NewCommand("del", "server", "be/s1"), balancer.LevelAdmin, false, "Only servers in maintenance mode can be deleted.\n"},
		{NewCommand("del", "server", "be/s9"), balancer.LevelAdmin, true, "Server deleted.\n"},
		{NewCommand("set", "server", "be/s2", "addr", "127.0.0.2"), balancer.LevelAdmin, true, "IP changed from '127.0.0.1' to '127.0.0.2' by 'stats socket command'\n"},
		{NewCommand("set", "server", "be/s2", "addr", "127.0.0.2", "port", "18082"), balancer.LevelAdmin, true, "no need to change the addr, no need to change the port by 'stats socket command'\n"},
		{NewCommand("set", "server", "be/s2", "addr", "x"), balancer.LevelAdmin, false, "Invalid addr 'x' by 'stats socket command'\n"},
		{NewCommand("set", "server", "be/s2", "addr", "127.0.0.3", "port", "x"), balancer.LevelAdmin, false, "IP changed from '127.0.0.2' to '127.0.0.3', problem converting port 'x' to an int by 'stats socket command'\n"},
		// A word cannot end the command and start another.
		{NewCommand("set", "server", "be/s1;shutdown", "sessions", "server", "be/s2"), balancer.LevelAdmin, false, ""},
	}
	for _, tt := range tests {
		r := d.Run(context.Background(), tt.cmd, tt.level, balancer.Origin{Channel: "console"})
		if r.OK() != tt.ok {
			t.Errorf("%s: OK = %v (err %q, reply %q), want %v", tt.cmd, r.OK(), r.Err, r.Reply, tt.ok)
		}
		if tt.reply != "" && r.Reply != tt.reply {
			t.Errorf("%s: reply %q, want %q", tt.cmd, r.Reply, tt.reply)
		}
		if !tt.ok && r.Err == "" {
			t.Errorf("%s: failed without an error message", tt.cmd)
		}
	}
}

// TestCommandKeepsWordsWhole checks that a key holding the parser's
// special characters reaches the balancer as it was given, and is masked
// when shown.
func TestCommandKeepsWordsWhole(t *testing.T) {
	b, _ := newTestBalancer(t, testCfg)
	d := NewDispatcher(b, DispatcherOptions{})
	key := `a key; with\ <<odd> bytes`
	c := Command{Words: []string{"set", "dynamic-cookie-key", "backend", "be", key}, Secret: 4}
	if got := c.String(); got != "set dynamic-cookie-key backend be ********" {
		t.Errorf("String() = %q", got)
	}
	if got := parseWords(c.Line()); len(got) != 5 || got[4] != key {
		t.Errorf("parseWords(Line()) = %q, want the key as one word", got)
	}
	if r := d.Run(context.Background(), c, balancer.LevelAdmin, balancer.Origin{}); !r.OK() {
		t.Fatalf("Run: %+v", r)
	}
	if got, want := b.Snapshot().Backend("be").KeyFingerprint, balancer.KeyFingerprint(key); got != want {
		t.Errorf("key fingerprint %s, want %s (the key was altered)", got, want)
	}
	// The same line through a socket stream is one command too.
	if got := d.Execute(context.Background(), c.Line(), balancer.LevelAdmin, balancer.Origin{}); got != "\n" {
		t.Errorf("Execute(Line()) = %q, want one empty reply", got)
	}
}
