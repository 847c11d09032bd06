package runtimeapi

import (
	"context"
	"strings"

	"tether/balancer"
)

// Command is one Runtime API command as words, built by a program rather
// than typed by a person: no word can end the command or start another.
type Command struct {
	Words []string
	// Secret is the index of a word that is shown masked (the key of "set
	// dynamic-cookie-key"), or 0 when there is none.
	Secret int
	// Payload is what a socket client sends after a line ending in "<<"
	// (the PEM bundle of "set ssl cert"), "" for none. It is never shown:
	// String ends with "<<" in its place.
	Payload string
}

// NewCommand returns the command made of words.
func NewCommand(words ...string) Command { return Command{Words: words} }

// Line returns the command as a socket client sends it: its words joined
// by spaces, each escaped with the parser's backslash syntax so that
// spaces, ';', newlines, backslashes and '<' stay inside the word, and
// "<<" when a payload follows (the payload is not part of the line).
func (c Command) Line() string { return c.join(false) }

// String returns the command as people and the audit log see it: Line,
// with the secret word masked.
func (c Command) String() string { return c.join(true) }

func (c Command) join(mask bool) string {
	var b strings.Builder
	for i, w := range c.Words {
		if i > 0 {
			b.WriteByte(' ')
		}
		if mask && c.Secret > 0 && i == c.Secret {
			b.WriteString("********")
			continue
		}
		b.WriteString(escapeWord(w))
	}
	if c.Payload != "" {
		b.WriteString(" " + payloadPattern)
	}
	return b.String()
}

// Result is the outcome of one command.
type Result struct {
	// Reply is the command's reply, without the empty line that ends it
	// on a socket.
	Reply string
	// Err is the command's error message; "" when it succeeded.
	Err string
}

// OK reports whether the command succeeded.
func (r Result) OK() bool { return r.Err == "" }

// Text returns the reply without its trailing newlines.
func (r Result) Text() string { return strings.TrimRight(r.Reply, "\n") }

// Run runs one command at the given level on behalf of origin and says
// whether it succeeded, from the command's own outcome rather than its
// wording: unknown commands, refusals and HAProxy's error replies fail;
// informational replies ("Server deleted.") succeed.
func (d *Dispatcher) Run(ctx context.Context, c Command, level balancer.Level, origin balancer.Origin) Result {
	args := c.Words
	if len(args) > maxArgs {
		args = args[:maxArgs]
	}
	s := d.newSession(level, severityNone, origin)
	reply, failed := d.runArgs(ctx, s, args, strings.TrimSuffix(c.Payload, "\n"))
	if reply != "" && !strings.HasSuffix(reply, "\n") {
		reply += "\n"
	}
	return Result{Reply: reply, Err: failed}
}
