package web

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/a-h/templ"

	"tether/templates"
)

// httpError is an error with the status and the message a user sees; Err,
// when set, is logged and never shown.
type httpError struct {
	status int
	msg    string
	err    error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.msg, e.err)
	}
	return fmt.Sprintf("%d %s", e.status, e.msg)
}

func (e *httpError) Unwrap() error { return e.err }

func notFound(msg string) error   { return &httpError{status: http.StatusNotFound, msg: msg} }
func badRequest(msg string) error { return &httpError{status: http.StatusBadRequest, msg: msg} }
func forbidden(msg string) error  { return &httpError{status: http.StatusForbidden, msg: msg} }

// handle adapts a handler that returns an error: the error becomes an
// error page (or a JSON reply for script requests) with the status it
// carries; anything else is a logged 500 with a generic message.
func (s *Server) handle(f func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			s.serveError(w, r, err)
		}
	}
}

func (s *Server) serveError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "The console failed to handle this request; the error was logged."
	var he *httpError
	if errors.As(err, &he) {
		status, msg = he.status, he.msg
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	} else {
		s.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "status", status, "error", err)
	}
	if wantsJSON(r) {
		writeJSON(w, status, actionReply{OK: false, Message: msg})
		return
	}
	p := s.page(w, r, http.StatusText(status), navFor(r.URL.Path))
	if rerr := s.render(w, r, status, templates.ErrorView(p, status, msg)); rerr != nil {
		s.log.Error("render error page", "error", rerr)
	}
}

// navFor returns the navigation entry a path belongs to, for pages that do
// not name theirs (error pages).
func navFor(path string) string {
	switch {
	case path == "/inspect" || strings.HasPrefix(path, "/inspect/"):
		return "inspect"
	case path == "/audit":
		return "audit"
	case path == "/users" || strings.HasPrefix(path, "/users/"):
		return "users"
	case path == "/" || strings.HasPrefix(path, "/backends/"):
		return "overview"
	}
	return ""
}

// render renders c into a buffer, then writes it with status, so a failing
// render never leaves half a page behind a 200.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) error {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		return fmt.Errorf("render page: %w", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	if err != nil {
		s.log.Debug("write page", "error", err)
	}
	return nil
}

// page fills the layout's view for the current user and consumes the flash
// message.
func (s *Server) page(w http.ResponseWriter, r *http.Request, title, nav string) templates.Page {
	p := templates.Page{Title: title, Nav: nav, Socat: s.opts.Socat}
	if u, ok := userFrom(r.Context()); ok {
		p.User, p.Role, p.Admin, p.Operator = u.Name, u.Role, u.level >= roleAdmin, u.level >= roleOperator
	}
	p.Flash = s.takeFlash(w, r)
	return p
}

// wantsJSON reports whether the request comes from the console's script,
// which asks for a JSON reply instead of a redirect.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

const flashCookie = "tether_flash"

// setFlash stores an action's outcome for the next page view.
func (s *Server) setFlash(w http.ResponseWriter, r *http.Request, f templates.Flash) {
	if len(f.Reply) > 600 {
		f.Reply = f.Reply[:600] + "…"
	}
	b, err := json.Marshal(f)
	if err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secure(r),
	})
}

func (s *Server) takeFlash(w http.ResponseWriter, r *http.Request) *templates.Flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secure(r)})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	var f templates.Flash
	if json.Unmarshal(b, &f) != nil {
		return nil
	}
	return &f
}

// secure reports whether cookies set in reply to r must be Secure.
func (s *Server) secure(r *http.Request) bool {
	return s.opts.SecureCookies || r.TLS != nil
}

// maxBody is the largest request body the console reads: its forms are a
// few fields.
const maxBody = 64 << 10

// limitBody caps request bodies at maxBody, so a client cannot make a
// form parse read megabytes.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets a strict content security policy and friends: the
// console loads nothing from elsewhere and cannot be framed.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panicking handler into a logged 500.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// denyCrossOrigin answers a request refused by cross-origin protection.
func (s *Server) denyCrossOrigin(w http.ResponseWriter, r *http.Request) {
	s.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "remote", r.RemoteAddr)
	http.Error(w, "cross-origin request refused", http.StatusForbidden)
}

// since formats the time elapsed from t to now as HAProxy's stats page does
// ("4s", "3m12s", "2h05m", "3d4h").
func since(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	sec := int64(d / time.Second)
	switch {
	case sec < 60:
		return fmt.Sprintf("%ds", sec)
	case sec < 3600:
		return fmt.Sprintf("%dm%02ds", sec/60, sec%60)
	case sec < 86400:
		return fmt.Sprintf("%dh%02dm", sec/3600, sec%3600/60)
	}
	return fmt.Sprintf("%dd%dh", sec/86400, sec%86400/3600)
}
