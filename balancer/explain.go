package balancer

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ErrNoCookie reports a backend without cookie persistence.
var ErrNoCookie = errors.New("backend has no cookie persistence")

// CookieVerdict is what persistence made of a request's cookie.
type CookieVerdict int

// Cookie verdicts. Code gives each one's letter in HAProxy's logs.
const (
	// VerdictNoCookie: the request carries no persistence cookie.
	VerdictNoCookie CookieVerdict = iota
	// VerdictValid: the cookie names a running server (up, draining or
	// stopping), which takes the request.
	VerdictValid
	// VerdictPersist: the cookie names a down server or one in
	// maintenance, and option persist sends the request there anyway.
	VerdictPersist
	// VerdictDown: the cookie names a down server; the request is
	// redispatched.
	VerdictDown
	// VerdictMaint: the cookie names a server in maintenance; the request
	// is redispatched.
	VerdictMaint
	// VerdictUnknown: the cookie names no server (an invalid cookie).
	VerdictUnknown
	// VerdictIdle: the cookie's last date is older than maxidle (or too
	// far in the future); it is ignored.
	VerdictIdle
	// VerdictOld: the cookie's first date is older than maxlife (or too
	// far in the future); it is ignored.
	VerdictOld
)

// Code returns the verdict's letter in HAProxy's log (the first of the
// two cookie status characters): N, V, D, I, E or O.
func (v CookieVerdict) Code() byte {
	return "NVDDDIEO"[v]
}

// Honoured reports whether the cookie chose the server.
func (v CookieVerdict) Honoured() bool {
	return v == VerdictValid || v == VerdictPersist
}

// String describes the verdict in HAProxy's words.
func (v CookieVerdict) String() string {
	return [...]string{
		VerdictNoCookie: "no cookie",
		VerdictValid:    "valid cookie",
		VerdictPersist:  "server down, persistence forced by option persist",
		VerdictDown:     "server down",
		VerdictMaint:    "server in maintenance",
		VerdictUnknown:  "invalid cookie (no server has this value)",
		VerdictIdle:     "expired cookie (maxidle)",
		VerdictOld:      "old cookie (maxlife)",
	}[v]
}

// Route says how the request is routed.
type Route int

// Routes of a request.
const (
	// RouteCookie: the request goes to the server its cookie names.
	RouteCookie Route = iota
	// RouteBalance: the balance algorithm picks one of the targets.
	RouteBalance
	// RouteNoServer: no server is usable; the request gets a 503.
	RouteNoServer
)

// Target is a server a request may go to.
type Target struct {
	Server string
	// SetCookie is the persistence Set-Cookie header the response gets
	// from the balancer, name=value and every attribute; "" when it adds
	// none (a server's own cookie in rewrite or prefix mode is not shown).
	SetCookie string
}

// Explanation says what the backend's cookie persistence does with a
// request, as the request path computes it.
type Explanation struct {
	Backend string
	// Cookie is the backend's cookie settings.
	Cookie CookieConfig
	// Value is the persistence cookie's value as the request carries it,
	// "" when it carries none; ServerValue is the part naming a server and
	// AppValue, in prefix mode, the application's value after '~'.
	Value, ServerValue, AppValue string
	// LastSeen and FirstSeen are the cookie's dates (maxidle, maxlife),
	// zero when it carries none.
	LastSeen, FirstSeen time.Time
	Verdict             CookieVerdict
	// Named is the server the cookie names, "" when none does. For an
	// expired cookie it is the server it named.
	Named string
	// DynamicOff names the server whose dynamic cookie the value is, when
	// dynamic cookies are off and no server has the value.
	DynamicOff string
	// OldKey and OldAddress report a dynamic cookie computed with a
	// retired key or from a previous address of Named, honoured in its
	// grace window; the response then re-issues the current cookie.
	OldKey, OldAddress bool
	Route              Route
	// Targets are the servers the request may go to: the named one for
	// RouteCookie, the algorithm's candidates for RouteBalance.
	Targets []Target
	// Fallback lists, for RouteCookie, where option redispatch sends the
	// request if the connection to the server fails; empty means the
	// request fails (503) instead.
	Fallback []Target
	// Forwarded is the Cookie header the server receives, nil when the
	// balancer removes it.
	Forwarded []string
}

// Explain tells what a GET request to backend carrying cookieHeader (one
// Cookie header line per line) would get at now: what its persistence
// cookie means, where the request goes, and the Set-Cookie of the response.
// It runs the request path's own persistence code on the current table
// without counting anything or moving the balance algorithm on.
func (b *Balancer) Explain(backend, cookieHeader string, now time.Time) (Explanation, error) {
	be := b.tab.Load().lookupBackend(backend)
	if be == nil {
		return Explanation{}, fmt.Errorf("explain cookie of backend %q: %w", backend, ErrNoSuchBackend)
	}
	if be.ck == nil {
		return Explanation{}, fmt.Errorf("explain cookie of backend %q: %w", backend, ErrNoCookie)
	}
	ck := be.ck
	r := &http.Request{Method: http.MethodGet, Header: make(http.Header)}
	for line := range strings.SplitSeq(cookieHeader, "\n") {
		if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) != "" {
			r.Header.Add("Cookie", line)
		}
	}
	unix := now.Unix()
	p := ck.readRequestCookies(r, be, unix)
	e := Explanation{Backend: be.cfg.Name, Cookie: *ck.cfg.Clone(), Value: p.value, Forwarded: r.Header["Cookie"]}
	srvVal, rest, delimited := ck.splitValue(p.value)
	e.ServerValue = srvVal
	if delimited && ck.cfg.Mode == CookiePrefix {
		e.AppValue = rest
	} else if delimited {
		last, first := cookieDates(rest)
		e.LastSeen, e.FirstSeen = cookieTime(last), cookieTime(first)
	}
	named := p.server
	e.OldKey, e.OldAddress = p.grace&graceOldKey != 0, p.grace&graceOldAddr != 0
	switch p.state {
	case ckNone:
		e.Verdict = VerdictNoCookie
	case ckValid:
		e.Verdict = VerdictValid
	case ckDown:
		switch {
		case p.server != nil:
			e.Verdict = VerdictPersist
		case p.downServer != nil && p.downServer.inMaint():
			e.Verdict, named = VerdictMaint, p.downServer
		default:
			e.Verdict, named = VerdictDown, p.downServer
		}
	case ckInvalid:
		e.Verdict = VerdictUnknown
		e.DynamicOff = be.dynamicCookieOwner(srvVal)
	case ckExpired, ckOld:
		e.Verdict = VerdictIdle
		if p.state == ckOld {
			e.Verdict = VerdictOld
		}
		if s := be.byCookie[srvVal]; len(s) > 0 {
			named = be.servers.At(s[0])
		}
	}
	if named != nil {
		e.Named = named.cfg.Name
	}
	if p.server != nil {
		e.Route = RouteCookie
		e.Targets = []Target{{Server: p.server.cfg.Name, SetCookie: be.explainSetCookie(p.server, &p, unix)}}
		if be.redispatchesOnFailure(p.server) {
			// A redispatched request gets its new server's cookie.
			fallback := p
			fallback.server = nil
			e.Fallback = be.explainCandidates(p.server, &fallback, unix)
		}
		return e, nil
	}
	e.Targets = be.explainCandidates(nil, &p, unix)
	e.Route = RouteBalance
	if len(e.Targets) == 0 {
		e.Route = RouteNoServer
	}
	return e, nil
}

// redispatchesOnFailure reports whether a request sent to srv by its
// cookie moves to another server when every connection attempt fails, by
// the request path's retry rule.
func (be *backendRT) redispatchesOnFailure(srv *serverRT) bool {
	for attempt := 1; attempt <= be.cfg.Retries; attempt++ {
		if redispatchNow(be, srv, true, attempt, be.cfg.Retries) {
			return true
		}
	}
	return false
}

// explainCandidates lists the servers pick chooses among, leaving out
// exclude, each with the Set-Cookie it would give a request read as p.
func (be *backendRT) explainCandidates(exclude *serverRT, p *persistence, now int64) []Target {
	candidates := be.usableServers()
	if len(candidates) == 0 && be.backup != nil {
		candidates = []*serverRT{be.backup}
	}
	var out []Target
	for _, s := range candidates {
		if s != exclude {
			out = append(out, Target{Server: s.cfg.Name, SetCookie: be.explainSetCookie(s, p, now)})
		}
	}
	return out
}

// explainSetCookie returns the persistence Set-Cookie the response of srv
// to a GET request read as p gets, by the request path's response code.
func (be *backendRT) explainSetCookie(srv *serverRT, p *persistence, now int64) string {
	h := make(http.Header)
	be.ck.processResponseCookies(h, &http.Request{Method: http.MethodGet}, srv, p, now, false, nil)
	return strings.Join(h["Set-Cookie"], "\n")
}

// dynamicCookieOwner returns the server whose dynamic cookie is value
// while dynamic cookies are off on the backend, or "".
func (be *backendRT) dynamicCookieOwner(value string) string {
	if value == "" || be.cfg.Cookie == nil || be.cfg.Cookie.Dynamic {
		return ""
	}
	for _, s := range be.servers.All() {
		if DynamicCookie(be.cfg.DynamicCookieKey.Reveal(), s.addr, int32(s.port)) == value {
			return s.cfg.Name
		}
	}
	return ""
}

// cookieTime converts a cookie date in Unix seconds to a time, zero for 0.
func cookieTime(unix int64) time.Time {
	if unix == 0 {
		return time.Time{}
	}
	return time.Unix(unix, 0).UTC()
}
