package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
	level role
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
		err := store.ErrNotFound
		if c, cerr := r.Cookie(sessionCookie); cerr == nil && c.Value != "" {
			u, err = s.deps.Sessions.SessionUser(r.Context(), c.Value)
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
		ctx := context.WithValue(r.Context(), userKey, user{User: u, level: lvl})
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

// handleLogin checks a name and password, rate-limited per client address
// and per user name, and starts a session.
func (s *Server) handleLogin() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name := strings.TrimSpace(r.PostFormValue("name"))
		password := r.PostFormValue("password")
		next := safeNext(r.PostFormValue("next"))
		form := templates.LoginPage{Name: name, Next: next}
		now := s.opts.Now()
		ip := clientIP(r)
		fail := func(status int, msg string) error {
			form.Error = msg
			p := s.page(w, r, "Sign in", "")
			return s.render(w, r, status, templates.LoginView(p, form))
		}
		if wait := max(s.ipLim.blocked(ip, now), s.userLim.blocked(strings.ToLower(name), now)); wait > 0 {
			s.log.Warn("login rate limited", "user", name, "remote", ip)
			w.Header().Set("Retry-After", retryAfter(wait))
			return fail(http.StatusTooManyRequests, "Too many failed sign-ins; try again in "+wait.Round(time.Second).String()+".")
		}
		u, err := s.deps.Sessions.Authenticate(r.Context(), name, password)
		if err != nil {
			if !errors.Is(err, store.ErrBadCredentials) && !errors.Is(err, store.ErrNotFound) {
				return &httpError{status: http.StatusInternalServerError, msg: "Sign-in failed; the error was logged.", err: err}
			}
			s.ipLim.fail(ip, now)
			s.userLim.fail(strings.ToLower(name), now)
			s.log.Info("login failed", "user", name, "remote", ip)
			return fail(http.StatusUnauthorized, "Wrong user name or password.")
		}
		s.userLim.reset(strings.ToLower(name))
		token, err := s.deps.Sessions.CreateSession(r.Context(), u.ID, s.opts.SessionTTL)
		if err != nil {
			return &httpError{status: http.StatusInternalServerError, msg: "Could not start a session.", err: err}
		}
		http.SetCookie(w, &http.Cookie{
			Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: s.secure(r), MaxAge: int(s.opts.SessionTTL / time.Second),
		})
		s.log.Info("login", "user", u.Name, "remote", ip)
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	})
}

func (s *Server) handleLogout() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if c, err := r.Cookie(sessionCookie); err == nil {
			if err := s.deps.Sessions.DeleteSession(r.Context(), c.Value); err != nil && !errors.Is(err, store.ErrNotFound) {
				return &httpError{status: http.StatusInternalServerError, msg: "Could not end the session.", err: err}
			}
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, Secure: s.secure(r)})
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	})
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(d/time.Second) + 1)
}

// attemptLimiter counts failures per key in a fixed window and blocks a key
// that reached the limit until its window ends. It holds at most size keys;
// when full it forgets expired keys, then the oldest. It is safe for
// concurrent use.
type attemptLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	size   int
	keys   map[string]*attempts
}

type attempts struct {
	n     int
	start time.Time
}

func newAttemptLimiter(limit int, window time.Duration, size int) *attemptLimiter {
	return &attemptLimiter{limit: limit, window: window, size: size, keys: make(map[string]*attempts)}
}

// blocked returns how long key must still wait, or 0.
func (l *attemptLimiter) blocked(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.keys[key]
	if a == nil {
		return 0
	}
	end := a.start.Add(l.window)
	if !now.Before(end) {
		delete(l.keys, key)
		return 0
	}
	if a.n >= l.limit {
		return end.Sub(now)
	}
	return 0
}

// fail records a failed attempt for key.
func (l *attemptLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.keys[key]
	if a != nil && !now.Before(a.start.Add(l.window)) {
		a = nil
	}
	if a == nil {
		if len(l.keys) >= l.size {
			l.evict(now)
		}
		a = &attempts{start: now}
		l.keys[key] = a
	}
	a.n++
}

// reset forgets key.
func (l *attemptLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// evict makes room for one key; l.mu is held.
func (l *attemptLimiter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, a := range l.keys {
		if !now.Before(a.start.Add(l.window)) {
			delete(l.keys, k)
			continue
		}
		if oldest == "" || a.start.Before(oldestAt) {
			oldest, oldestAt = k, a.start
		}
	}
	if len(l.keys) >= l.size && oldest != "" {
		delete(l.keys, oldest)
	}
}

func (l *attemptLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
