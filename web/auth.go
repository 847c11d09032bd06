package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/templates"
)

// role is a console role; its value is the Runtime API level it maps to.
type role int

// Console roles: viewer reads (HAProxy's user level), operator also sees
// addresses and cookie values and may clear max counters, admin changes
// anything.
const (
	roleViewer   role = role(balancer.LevelUser)
	roleOperator role = role(balancer.LevelOperator)
	roleAdmin    role = role(balancer.LevelAdmin)
)

func parseRole(s string) (role, bool) {
	switch s {
	case "viewer":
		return roleViewer, true
	case "operator":
		return roleOperator, true
	case "admin":
		return roleAdmin, true
	}
	return 0, false
}

// user is the signed-in user of a request.
type user struct {
	store.User
	level   role
	session string // the session token
}

type ctxKey int

const userKey ctxKey = 1

func userFrom(ctx context.Context) (user, bool) {
	u, ok := ctx.Value(userKey).(user)
	return u, ok
}

// mustUser returns the request's user; requireUser guarantees one.
func mustUser(r *http.Request) user {
	u, _ := userFrom(r.Context())
	return u
}

const sessionCookie = "tether_session"

// requireUser loads the session's user, or sends the browser to the login
// page (pages) or refuses (actions, websockets, script requests).
func (s *Server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u store.User
		var token string
		err := store.ErrNotFound
		if c, cerr := r.Cookie(sessionCookie); cerr == nil && c.Value != "" {
			token = c.Value
			u, err = s.deps.Sessions.SessionUser(r.Context(), token)
		}
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.serveError(w, r, &httpError{status: http.StatusInternalServerError, msg: "The session could not be checked.", err: err})
				return
			}
			if r.Method == http.MethodGet && !wantsJSON(r) && r.URL.Path != "/ws" {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.serveError(w, r, &httpError{status: http.StatusUnauthorized, msg: "Sign in first."})
			return
		}
		lvl, ok := parseRole(u.Role)
		if !ok {
			s.serveError(w, r, forbidden("Your account has no valid role."))
			return
		}
		ctx := context.WithValue(r.Context(), userKey, user{User: u, level: lvl, session: token})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireRole refuses users below min, whatever the page showed them.
func (s *Server) requireRole(min role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := mustUser(r)
			if u.level < min {
				s.serveError(w, r, forbidden(roleNeeded(min, u.Role)))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func roleNeeded(min role, have string) string {
	switch min {
	case roleAdmin:
		return "This needs the admin role (HAProxy's admin level); you are " + have + "."
	case roleOperator:
		return "This needs the operator or admin role; you are " + have + "."
	}
	return "You may not do this."
}

// permsFor says what the user may do, and why admin controls are disabled.
func permsFor(u user) templates.Perms {
	p := templates.Perms{Admin: u.level >= roleAdmin, Operator: u.level >= roleOperator, Sensitive: u.level >= roleOperator}
	switch {
	case u.level == roleOperator:
		p.Why = "Read-only for your role: HAProxy's operator level cannot change server states, weights, servers or cookies (admin level needed)."
	case u.level < roleOperator:
		p.Why = "Read-only for your role (viewer): addresses and cookie values are hidden, as at HAProxy's user level."
	}
	return p
}

func (s *Server) handleLoginForm() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := s.page(w, r, "Sign in", "")
		return s.render(w, r, http.StatusOK, templates.LoginView(p, templates.LoginPage{Next: safeNext(r.URL.Query().Get("next"))}))
	})
}

// handleLogin checks a name and password and starts a session. The login
// gate admits the attempt first (per-source limit, per-user-and-source
// backoff, a bounded number of concurrent password hashes), so a flood of
// sign-ins is refused cheaply instead of hashing.
func (s *Server) handleLogin() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		var form templates.LoginPage
		ip := clientIP(r)
		refuse := func(why refusal, wait time.Duration) error {
			if n := s.gate.refused(s.opts.Now()); n > 0 {
				s.log.Warn("sign-ins refused by the login limits", "count", n, "last_user", form.Name, "last_remote", ip, "last_reason", why.String())
			}
			w.Header().Set("Retry-After", retryAfter(wait))
			if why == refusedBusy {
				// The common answer to a flood: rendered once.
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = w.Write(s.busyPage)
				return nil
			}
			form.Error = why.message(wait)
			return s.render(w, r, http.StatusTooManyRequests, templates.LoginView(s.page(w, r, "Sign in", ""), form))
		}
		// Admit the attempt before reading the form: a refused flood costs
		// no parsing and no rendering.
		tk, wait, why := s.gate.admit(sourceKey(ip), s.opts.Now())
		if why != admitted {
			return refuse(why, wait)
		}
		if err := r.ParseForm(); err != nil {
			s.gate.cancel(tk)
			return &httpError{status: http.StatusRequestEntityTooLarge, msg: "The sign-in form could not be read."}
		}
		name := strings.TrimSpace(r.PostFormValue("name"))
		password := r.PostFormValue("password")
		form = templates.LoginPage{Name: name, Next: safeNext(r.PostFormValue("next"))}
		next := form.Next
		tried := triedName(name)
		if wait := s.gate.admitUser(tk, tried, s.opts.Now()); wait > 0 {
			return refuse(refusedUser, wait)
		}
		fail := func(status int, msg string) error {
			form.Error = msg
			p := s.page(w, r, "Sign in", "")
			return s.render(w, r, status, templates.LoginView(p, form))
		}
		u, err := s.deps.Sessions.Authenticate(r.Context(), name, password)
		s.gate.done(tk, tried, err == nil, s.opts.Now())
		if err != nil {
			if !errors.Is(err, store.ErrBadCredentials) && !errors.Is(err, store.ErrNotFound) {
				return &httpError{status: http.StatusInternalServerError, msg: "Sign-in failed; the error was logged.", err: err}
			}
			s.log.Info("login failed", "user", tried, "remote", ip)
			s.audit(r, store.AuditEntry{Actor: tried, Command: "login", Result: "wrong user name or password"})
			return fail(http.StatusUnauthorized, "Wrong user name or password.")
		}
		token, err := s.deps.Sessions.CreateSession(r.Context(), u.ID, s.opts.SessionTTL)
		if err != nil {
			return &httpError{status: http.StatusInternalServerError, msg: "Could not start a session.", err: err}
		}
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: s.secure(r), MaxAge: int(s.opts.SessionTTL / time.Second),
		})
		s.log.Info("login", "user", u.Name, "remote", ip)
		s.audit(r, store.AuditEntry{Actor: u.Name, Command: "login"})
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	})
}

// audit appends a console entry for r (channel "console", source the client
// address); a failure to write it is logged, not shown.
func (s *Server) audit(r *http.Request, e store.AuditEntry) {
	e.Channel = "console"
	e.Source = clientIP(r)
	if err := s.deps.Audit.AppendAudit(r.Context(), e); err != nil {
		s.log.Error("append audit entry", "command", e.Command, "error", err)
	}
}

func (s *Server) handleLogout() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		u := mustUser(r)
		if err := s.deps.Sessions.DeleteSession(r.Context(), u.session); err != nil && !errors.Is(err, store.ErrNotFound) {
			return &httpError{status: http.StatusInternalServerError, msg: "Could not end the session.", err: err}
		}
		s.hub.endSessions(func(o sessionOwner) bool { return o.session == u.session }, "signed out")
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: s.secure(r)})
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	})
}

// safeNext keeps a post-login redirect on this site: it returns next when
// it is a local path (and query), else "/". Browsers drop tabs and newlines
// from URLs and read "\" as "/", so "/\t/evil" or "/\evil" would leave the
// site: any control character or backslash, raw or escaped, is refused, and
// so is a path that unescapes to "//" ("/%2F%2Fevil") or the sign-in page.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || len(next) > 2048 || unsafeURLText(next) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	if !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || unsafeURLText(u.Path) ||
		u.Path == "/login" || strings.HasPrefix(u.Path, "/login/") {
		return "/"
	}
	return next
}

// unsafeURLText reports whether s holds a control character or a
// backslash.
func unsafeURLText(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// retryAfter is a Retry-After value: d in whole seconds, rounded up, at
// least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(int((d+time.Second-1)/time.Second), 1))
}
