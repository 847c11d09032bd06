// Package haproxycfg reads and writes HAProxy-syntax configuration files,
// converting them to and from balancer.Config.
//
// Parse accepts the HAProxy 2.6 files that use the features Tether
// supports: the global "stats socket/timeout/maxconn", "maxconn",
// "tune.bufsize", "tune.maxrewrite", "setenv"-family and "zero-warning"
// lines, defaults (several, named or not, each applying to the proxies after
// it), frontend, backend and listen sections (a listen section becomes a
// frontend and a backend of the same name), and resolvers sections.
//
// A configuration never runs fail-open. Keywords HAProxy knows but Tether
// does not implement are classified in keywords.go (and in
// docs/haproxy-keywords.md): one whose absence would change who gets what,
// over which protocol, or what is refused (TLS, PROXY protocol, ACLs and
// routing, request rules, error pages, stick tables, privileges, limits …)
// is an Error naming file and line; one that changes nothing but logging,
// tuning or process management is a Warning naming its line. Keywords HAProxy
// does not know, invalid values and broken references are Errors too. Unset
// values are filled with HAProxy's defaults, so consumers of the Config need
// not know them.
//
// Frontends and backends get the proxy IDs HAProxy 2.6 gives them
// (Frontend.ID, Backend.ID): "id" lines are honoured, with HAProxy's checks,
// and the others are numbered in declaration order, skipping explicit IDs
// and the place of the Runtime API proxy that the first global "stats" line
// creates. A listen section's frontend and backend share one ID.
//
// Write produces a file that HAProxy 2.6 accepts and that Parse reads back
// to an equal Config.
//
// The functions of this package are safe for concurrent use.
package haproxycfg

import (
	"errors"
	"fmt"
	"os"

	"tether/balancer"
)

// Error is a problem in a configuration file that prevents its use.
type Error struct {
	File string
	Line int // 1-based; 0 when the problem is not tied to a line
	Msg  string
}

// Error formats e as "file:line: message".
func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Warning is a line Tether accepts but does not fully act on: a directive it
// does not support, or a setting HAProxy itself warns about.
type Warning struct {
	File string
	Line int
	Msg  string
}

// String formats w as "file:line: message".
func (w Warning) String() string {
	if w.Line == 0 {
		return fmt.Sprintf("%s: %s", w.File, w.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Msg)
}

// ParseFile reads and parses the configuration file at path; see Parse.
func ParseFile(path string) (balancer.Config, []Warning, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return balancer.Config{}, nil, fmt.Errorf("read HAProxy configuration: %w", err)
	}
	return Parse(path, src)
}

// Parse parses an HAProxy configuration; name is used in messages. Double
// quoted "$VAR" references are expanded from the process environment, as
// HAProxy does.
//
// On failure the error joins one *Error per problem found (use errors.As to
// get the first, or the Unwrap() []error method for all), and the Config is
// the zero value. Warnings are returned in both cases.
func Parse(name string, src []byte) (balancer.Config, []Warning, error) {
	return parse(name, src, osEnv)
}

func parse(name string, src []byte, env lookupEnv) (balancer.Config, []Warning, error) {
	p := newParser(name, env)
	p.run(src)
	if l := p.global.zeroWarningLine; l != 0 && len(p.warns) > 0 && len(p.errs) == 0 {
		p.errorAt(l, "'zero-warning' is set and %d warnings were emitted; refusing the configuration.", len(p.warns))
	}
	if len(p.errs) > 0 {
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return balancer.Config{}, p.warns, errors.Join(errs...)
	}
	return p.cfg, p.warns, nil
}
