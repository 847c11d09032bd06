package runtimeapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"tether/balancer"
	"tether/balancer/connlimit"
	"tether/balancer/tlsbind"
)

// Version is the version string "show version" and "show info" report.
const Version = "2.6.12-tether"

// ReleaseDate is the Release_date field of "show info".
const ReleaseDate = "2026/11/24"

// ProductName is the value of the Name field of "show info".
const ProductName = "Tether"

// DispatcherOptions are the optional dependencies of a Dispatcher.
type DispatcherOptions struct {
	// Logger receives failures worth an operator's attention; nil discards.
	Logger *slog.Logger
	// ShowResolvers writes the "show resolvers [id]" dump. Without it the
	// command answers as HAProxy does when no resolvers section exists.
	ShowResolvers func(w io.Writer, id string) error
	// Audit is called for every changing command that was refused or
	// failed (successful changes are recorded by the balancer's committer
	// through Origin.Command). command has secrets masked; result is the
	// reply text without severity prefix.
	Audit func(origin balancer.Origin, command string, result string)
	// Reload re-reads the configuration file and applies what changed
	// ("reload", a Tether extension); it returns the reply text. Without
	// it the command answers that there is nothing to reload.
	Reload func(ctx context.Context, origin balancer.Origin) (string, error)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxConn is the process's descriptor limit and global maxconn, for
	// show info (Ulimit-n, Maxsock, Maxconn, Hard_maxconn) and the
	// frontends' slim in show stat; the zero value reports zeros.
	MaxConn connlimit.Plan
	// Conns counts the client connections open on every frontend, show
	// info's CurrConns; nil counts requests in progress instead.
	Conns *connlimit.Limit
	// Ready, when set, holds every command until it is closed: a process
	// may accept Runtime API clients while it is still storing the state
	// it starts with, and answers them once that is done.
	Ready <-chan struct{}
	// Certificates returns the certificates of the running TLS binds, for
	// the ssl cert commands; nil (or a nil store) means there are none.
	Certificates func() *tlsbind.Store
}

// Dispatcher runs Runtime API commands against a balancer. It is safe for
// concurrent use; each call carries its own session state.
type Dispatcher struct {
	b       *balancer.Balancer
	opts    DispatcherOptions
	log     *slog.Logger
	started time.Time
	table   []*command
}

// NewDispatcher returns a dispatcher for b.
func NewDispatcher(b *balancer.Balancer, opts DispatcherOptions) *Dispatcher {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Dispatcher{b: b, opts: opts, log: log.With("component", "runtimeapi")}
	d.started = opts.Now()
	d.table = commandTable()
	return d
}

// Severity output modes of "set severity-output".
const (
	severityNone = iota
	severityNumber
	severityString
)

// Syslog severities used for messages, as HAProxy's LOG_* values.
const (
	sevErr     = 3
	sevWarning = 4
	sevInfo    = 6
)

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// session is the state of one client: a socket connection or one Execute
// call.
type session struct {
	level    balancer.Level
	severity int
	prompt   bool
	quit     bool
	// expert and experimental are HAProxy's expert-mode and
	// experimental-mode switches. Tether has no command that needs
	// them; they are kept so that scripts enabling them work and can
	// read them back.
	expert, experimental bool
	// timeout is the idle timeout; set timeout cli changes it.
	timeout time.Duration
	origin  balancer.Origin
}

// call is one command being run: its words, payload and reply.
type call struct {
	ctx  context.Context
	d    *Dispatcher
	s    *session
	args []string
	// payload is what followed a command ending in "<<", up to the empty
	// line.
	payload string
	cmd     string // the command as issued, secrets masked
	out     strings.Builder
	failed  string // first error message, for the audit hook
}

// dump writes data output, never prefixed by a severity.
func (c *call) dump(s string) { c.out.WriteString(s) }

// msg writes a message at severity sev, prefixed when the session asks.
func (c *call) msg(sev int, s string) {
	switch c.s.severity {
	case severityNumber:
		c.out.WriteString("[" + itoa(sev) + "]: ")
	case severityString:
		c.out.WriteString("[" + severityNames[sev] + "]: ")
	}
	c.out.WriteString(s)
}

// err writes an error message (LOG_ERR), like HAProxy's cli_err.
func (c *call) err(s string) {
	if c.failed == "" {
		c.failed = strings.TrimSuffix(s, "\n")
	}
	c.msg(sevErr, s)
}

// hasLevel reports whether the session may run a command of level l, and
// writes HAProxy's refusal when it may not.
func (c *call) hasLevel(l balancer.Level) bool {
	if c.s.level >= l {
		return true
	}
	c.err("Permission denied\n")
	return false
}

// Execute runs one line (one or more commands separated by ';' or '\n')
// at the given level and returns the reply bytes exactly as a socket
// client in non-interactive mode receives them: each command's output
// followed by an empty line. Changes are attributed to origin, with
// origin.Command set to each command as issued (secrets masked).
func (d *Dispatcher) Execute(ctx context.Context, line string, level balancer.Level, origin balancer.Origin) string {
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	s := d.newSession(level, severityNone, origin)
	var out strings.Builder
	r := bufio.NewReaderSize(strings.NewReader(line), len(line)+16)
	_ = d.serveStream(ctx, s, r, &out, func() bool { return r.Buffered() > 0 })
	return out.String()
}

func (d *Dispatcher) newSession(level balancer.Level, severity int, origin balancer.Origin) *session {
	if level < balancer.LevelUser || level > balancer.LevelAdmin {
		level = balancer.LevelOperator
	}
	return &session{level: level, severity: severity, origin: origin}
}

// errStreamDone ends a stream: the client quit, the command was too long,
// or the session left interactive mode with nothing more to read.
var errStreamDone = errors.New("runtime API session ended")

// serveStream reads commands from r and writes replies to w with HAProxy
// 2.6's framing, until the session ends. more reports whether input is
// already waiting: a non-interactive session ends once it has answered
// everything it received. beforeRead, when not nil, runs before each read
// (the socket server uses it to arm the idle timeout).
func (d *Dispatcher) serveStream(ctx context.Context, s *session, r *bufio.Reader, w io.Writer, more func() bool) error {
	return d.serveStreamHook(ctx, s, r, w, more, nil)
}

func (d *Dispatcher) serveStreamHook(ctx context.Context, s *session, r *bufio.Reader, w io.Writer, more func() bool, beforeRead func(*session)) error {
	var (
		inPayload bool
		pending   string // command waiting for its payload
		payload   strings.Builder
	)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if beforeRead != nil {
			beforeRead(s)
		}
		limit := maxCommandBytes
		if inPayload {
			limit = maxCommandBytes - len(pending) - 1 - payload.Len()
		}
		cmd, err := readCommand(r, inPayload, limit)
		if err != nil {
			return err
		}
		var out string
		switch {
		case inPayload && cmd == "":
			inPayload = false
			out = d.run(ctx, s, pending, strings.TrimSuffix(payload.String(), "\n"))
			payload.Reset()
		case inPayload:
			payload.WriteString(cmd)
			payload.WriteByte('\n')
		case startsPayload(cmd):
			inPayload = true
			pending = cmd
		default:
			out = d.run(ctx, s, cmd, "")
		}
		if s.quit {
			if out != "" {
				_, _ = io.WriteString(w, out)
			}
			return errStreamDone
		}
		switch {
		case s.prompt && inPayload:
			out += "+ "
		case s.prompt:
			out += "\n> "
		case !inPayload:
			out += "\n"
		}
		if _, err := io.WriteString(w, out); err != nil {
			return err
		}
		if !s.prompt && !inPayload && !more() {
			return errStreamDone
		}
	}
}

// run parses and runs one command with its payload ("" for none) and
// returns its output, without the terminating empty line. Commands that
// take no payload ignore one, as HAProxy's do.
func (d *Dispatcher) run(ctx context.Context, s *session, cmd, payload string) string {
	out, _ := d.runArgs(ctx, s, parseWords(cmd), payload)
	return out
}

// runArgs runs the command of args and returns its reply, and its error
// message when it failed ("" when it succeeded).
func (d *Dispatcher) runArgs(ctx context.Context, s *session, args []string, payload string) (reply, failed string) {
	if d.opts.Ready != nil {
		select {
		case <-d.opts.Ready:
		case <-ctx.Done():
			return "", ctx.Err().Error()
		}
	}
	c := &call{ctx: ctx, d: d, s: s, args: args, payload: payload}
	kw := d.find(args)
	if kw == nil {
		d.usage(c, args, false)
		return c.out.String(), "Unknown command"
	}
	c.cmd = maskCommand(args, kw)
	kw.run(c)
	if kw.changes && c.failed != "" && d.opts.Audit != nil {
		o := s.origin
		o.Command = c.cmd
		d.opts.Audit(o, c.cmd, c.failed)
	}
	return c.out.String(), c.failed
}

// find returns the first command whose keyword words all match the
// leading arguments, as HAProxy's cli_find_kw does.
func (d *Dispatcher) find(args []string) *command {
	for _, kw := range d.table {
		if len(args) < len(kw.words) {
			continue
		}
		ok := true
		for i, w := range kw.words {
			if args[i] != w {
				ok = false
				break
			}
		}
		if ok {
			return kw
		}
	}
	return nil
}

// apply hands a change to the balancer on behalf of the call's session.
func (c *call) apply(ch balancer.Change) error {
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("apply %T: %w", ch, err)
	}
	o := c.s.origin
	o.Command = c.cmd
	return c.d.b.Apply(ch, o)
}

// maskCommand rebuilds the command as issued for the audit log, with the
// key of "set dynamic-cookie-key" replaced by asterisks.
func maskCommand(args []string, kw *command) string {
	words := append([]string(nil), args...)
	if kw.secretArg > 0 && len(words) > kw.secretArg {
		words[kw.secretArg] = "********"
	}
	for i, w := range words {
		words[i] = escapeWord(w)
	}
	return strings.Join(words, " ")
}

// escapeWord escapes the characters the command parser treats specially,
// so that the word reads back as itself: separators, backslashes, and '<'
// (a command ending in "<<" announces a payload).
func escapeWord(w string) string {
	if !strings.ContainsAny(w, " \t\\;\n<") {
		return w
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case ' ', '\t', '\\', ';', '\n', '<':
			b.WriteByte('\\')
		}
		b.WriteByte(w[i])
	}
	return b.String()
}
