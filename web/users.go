package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"tether/store"
	"tether/templates"
)

// userError turns a store error into what the admin sees.
func userError(err error) (string, bool) {
	for _, e := range []error{store.ErrExists, store.ErrLastAdmin, store.ErrInvalidRole, store.ErrInvalidName, store.ErrWeakPassword, store.ErrNotFound} {
		if errors.Is(err, e) {
			// The sentinel and the detail wrapped after it, without the
			// "set password of user ..." context before it.
			msg := err.Error()
			if i := strings.Index(msg, e.Error()); i >= 0 {
				msg = msg[i:]
			}
			if e == store.ErrNotFound {
				msg = "no such user"
			}
			return strings.ToUpper(msg[:1]) + msg[1:] + ".", true
		}
	}
	return "", false
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, status int, up templates.UsersPage) error {
	users, err := s.deps.Users.ListUsers(r.Context())
	if err != nil {
		return &httpError{status: http.StatusInternalServerError, msg: "The users could not be listed.", err: err}
	}
	up.Self = mustUser(r).Name
	for _, u := range users {
		up.Users = append(up.Users, templates.UserRow{Name: u.Name, Role: u.Role, Created: u.CreatedAt.Local().Format("2006-01-02 15:04")})
	}
	for _, l := range s.gate.lockouts(s.opts.Now()) {
		up.Lockouts = append(up.Lockouts, templates.LockoutRow{User: l.User, Source: l.Source,
			Failures: fmtCount(int64(l.Failures)), Until: l.Until.Local().Format("2006-01-02 15:04:05")})
	}
	up.LockoutPolicy = fmt.Sprintf("A user name is locked out only from the address that failed to sign in with it: after %d failures, "+
		"for %v, doubling with each further failure up to %v. An address is locked out after %d failed sign-ins in %v.",
		backoffFree, backoffBase, backoffMax, sourceLimit, sourceWindow)
	return s.render(w, r, status, templates.UsersView(s.page(w, r, "Users", "users"), up))
}

func (s *Server) handleUsers() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return s.usersPage(w, r, http.StatusOK, templates.UsersPage{NewRole: "viewer"})
	})
}

// userChange runs one user change and answers like an action: redirect with
// a flash on success, the page again with the message on a refused change.
// Both are audited under command, worded as "tether user" words it (never
// with a password).
func (s *Server) userChange(w http.ResponseWriter, r *http.Request, up templates.UsersPage, command, what string, fn func() error) error {
	if err := fn(); err != nil {
		msg, known := userError(err)
		if !known {
			s.audit(r, store.AuditEntry{Actor: mustUser(r).Name, Command: command, Result: "failed"})
			return &httpError{status: http.StatusInternalServerError, msg: "The user change failed; the error was logged.", err: err}
		}
		s.audit(r, store.AuditEntry{Actor: mustUser(r).Name, Command: command, Result: msg})
		up.Error = msg
		return s.usersPage(w, r, http.StatusUnprocessableEntity, up)
	}
	s.log.Info("user changed", "by", mustUser(r).Name, "change", what)
	s.audit(r, store.AuditEntry{Actor: mustUser(r).Name, Command: command})
	s.setFlash(w, r, templates.Flash{OK: true, Message: what})
	http.Redirect(w, r, "/users", http.StatusSeeOther)
	return nil
}

func (s *Server) handleUserCreate() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name, role := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
		up := templates.UsersPage{NewName: name, NewRole: role}
		if _, ok := parseRole(role); !ok {
			up.Error = "Role must be viewer, operator or admin."
			return s.usersPage(w, r, http.StatusUnprocessableEntity, up)
		}
		return s.userChange(w, r, up, "user add "+name+" "+role, "User "+name+" added as "+role+".", func() error {
			_, err := s.deps.Users.CreateUser(r.Context(), name, r.PostFormValue("password"), role)
			return err
		})
	})
}

func (s *Server) handleUserRole() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name, role := chi.URLParam(r, "name"), r.PostFormValue("role")
		if _, ok := parseRole(role); !ok {
			return s.usersPage(w, r, http.StatusUnprocessableEntity, templates.UsersPage{Error: "Role must be viewer, operator or admin."})
		}
		return s.userChange(w, r, templates.UsersPage{}, "user role "+name+" "+role, "User "+name+" is now "+role+".", func() error {
			if err := s.deps.Users.SetUserRole(r.Context(), name, role); err != nil {
				return err
			}
			s.endUserSessions(name, "role changed")
			return nil
		})
	})
}

func (s *Server) handleUserPassword() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name := chi.URLParam(r, "name")
		return s.userChange(w, r, templates.UsersPage{}, "user passwd "+name, "Password of "+name+" reset.", func() error {
			if err := s.deps.Users.SetUserPassword(r.Context(), name, r.PostFormValue("password")); err != nil {
				return err
			}
			s.endUserSessions(name, "password changed")
			return nil
		})
	})
}

// handleLockoutClear lifts a sign-in lockout: of a user name from an
// address, or of a whole address when no user is given.
func (s *Server) handleLockoutClear() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		user, source := strings.TrimSpace(r.PostFormValue("user")), strings.TrimSpace(r.PostFormValue("source"))
		if source == "" {
			return s.usersPage(w, r, http.StatusUnprocessableEntity, templates.UsersPage{Error: "Say which address to clear."})
		}
		what, command := "address "+source, "clear login lockout of an address"
		if user != "" {
			what, command = "user "+user+" from "+source, "clear login lockout of "+user
		}
		if !s.gate.clear(user, source) {
			return s.usersPage(w, r, http.StatusUnprocessableEntity, templates.UsersPage{Error: "No lockout of " + what + "."})
		}
		s.log.Info("login lockout cleared", "by", mustUser(r).Name, "user", user, "source", source)
		s.audit(r, store.AuditEntry{Actor: mustUser(r).Name, Command: command, Detail: "from " + source})
		s.setFlash(w, r, templates.Flash{OK: true, Message: "Lockout of " + what + " cleared."})
		http.Redirect(w, r, "/users", http.StatusSeeOther)
		return nil
	})
}

func (s *Server) handleUserDelete() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name := chi.URLParam(r, "name")
		if canon, _ := store.CanonicalUserName(name); name == mustUser(r).Name || canon == mustUser(r).Name {
			return s.usersPage(w, r, http.StatusUnprocessableEntity, templates.UsersPage{Error: "You cannot delete yourself."})
		}
		return s.userChange(w, r, templates.UsersPage{}, "user del "+name, "User "+name+" deleted.", func() error {
			if err := s.deps.Users.DeleteUser(r.Context(), name); err != nil {
				return err
			}
			s.endUserSessions(name, "user deleted")
			return nil
		})
	})
}
