package web

import (
	"errors"
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
			msg := e.Error()
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
	return s.render(w, r, status, templates.UsersView(s.page(w, r, "Users", "users"), up))
}

func (s *Server) handleUsers() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return s.usersPage(w, r, http.StatusOK, templates.UsersPage{NewRole: "viewer"})
	})
}

// userChange runs one user change and answers like an action: redirect with
// a flash on success, the page again with the message on a refused change.
func (s *Server) userChange(w http.ResponseWriter, r *http.Request, up templates.UsersPage, what string, fn func() error) error {
	if err := fn(); err != nil {
		msg, known := userError(err)
		if !known {
			return &httpError{status: http.StatusInternalServerError, msg: "The user change failed; the error was logged.", err: err}
		}
		up.Error = msg
		return s.usersPage(w, r, http.StatusUnprocessableEntity, up)
	}
	s.log.Info("user changed", "by", mustUser(r).Name, "change", what)
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
		return s.userChange(w, r, up, "User "+name+" added as "+role+".", func() error {
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
		return s.userChange(w, r, templates.UsersPage{}, "User "+name+" is now "+role+".", func() error {
			return s.deps.Users.SetUserRole(r.Context(), name, role)
		})
	})
}

func (s *Server) handleUserPassword() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name := chi.URLParam(r, "name")
		return s.userChange(w, r, templates.UsersPage{}, "Password of "+name+" reset.", func() error {
			return s.deps.Users.SetUserPassword(r.Context(), name, r.PostFormValue("password"))
		})
	})
}

func (s *Server) handleUserDelete() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name := chi.URLParam(r, "name")
		if name == mustUser(r).Name {
			return s.usersPage(w, r, http.StatusUnprocessableEntity, templates.UsersPage{Error: "You cannot delete yourself."})
		}
		return s.userChange(w, r, templates.UsersPage{}, "User "+name+" deleted.", func() error {
			return s.deps.Users.DeleteUser(r.Context(), name)
		})
	})
}
