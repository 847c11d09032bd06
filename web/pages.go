package web

import (
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"tether/balancer"
	"tether/static"
	"tether/store"
	"tether/templates"
)

// livePage fills the layout for a page that shows live data.
func (s *Server) livePage(w http.ResponseWriter, r *http.Request, snap *balancer.Snapshot, title, nav string) templates.Page {
	p := s.page(w, r, title, nav)
	p.Live = true
	p.Version = snap.Version
	at := snap.Taken
	if at.IsZero() {
		at = s.opts.Now()
	}
	p.DataAt = at.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	return p
}

func (s *Server) viewerFor(r *http.Request) viewer {
	return viewer{perms: permsFor(mustUser(r)), now: s.opts.Now()}
}

func (s *Server) handleOverview() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		snap := s.deps.Balancer.Snapshot()
		p := s.livePage(w, r, snap, "Overview", "overview")
		return s.render(w, r, http.StatusOK, templates.OverviewView(p, s.overviewView(snap, s.viewerFor(r))))
	})
}

// backendPage builds a backend page's view; the forms show the current
// settings unless the caller fills them with what was submitted.
func (s *Server) backendPage(r *http.Request, b *balancer.BackendStatus) templates.BackendPage {
	v := s.viewerFor(r)
	bp := templates.BackendPage{Backend: s.backendView(b, v, true), Perms: v.perms}
	bp.Cookie = cookieFormFrom(b.Config.Cookie)
	bp.Add = templates.AddServerForm{Weight: "1", Check: true, Ready: true}
	bp.History = s.historyChart(r, b, "", s.opts.Now())
	return bp
}

func (s *Server) handleBackend() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		snap := s.deps.Balancer.Snapshot()
		b := snap.Backend(chi.URLParam(r, "backend"))
		if b == nil {
			return notFound("No such backend.")
		}
		p := s.livePage(w, r, snap, "Backend "+b.Config.Name, "overview")
		return s.render(w, r, http.StatusOK, templates.BackendPageView(p, s.backendPage(r, b)))
	})
}

// findServer returns the backend and server named in the URL.
func findServer(snap *balancer.Snapshot, r *http.Request) (*balancer.BackendStatus, *balancer.ServerStatus, error) {
	b := snap.Backend(chi.URLParam(r, "backend"))
	if b == nil {
		return nil, nil, notFound("No such backend.")
	}
	sv := b.Server(chi.URLParam(r, "server"))
	if sv == nil {
		return nil, nil, notFound("No such server.")
	}
	return b, sv, nil
}

func (s *Server) handleDrainView() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		snap := s.deps.Balancer.Snapshot()
		b, sv, err := findServer(snap, r)
		if err != nil {
			return err
		}
		v := s.viewerFor(r)
		smp, _ := s.stats.server(b.Config.Name, sv.Config.Name)
		d := templates.DrainPage{Server: serverRow(b.Config.Name, sv, smp, v), Perms: v.perms}
		if sv.WhenIdle.Asked {
			d.Watched, d.WatchBy = true, sv.WhenIdle.By
		}
		d.History = s.historyChart(r, b, sv.Config.Name, s.opts.Now())
		p := s.livePage(w, r, snap, "Drain "+b.Config.Name+"/"+sv.Config.Name, "overview")
		return s.render(w, r, http.StatusOK, templates.DrainView(p, d))
	})
}

func (s *Server) handleAudit() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		f := store.AuditFilter{Backend: q.Get("backend"), Actor: q.Get("actor"), Channel: q.Get("channel"), Limit: 100}
		if b := q.Get("before"); b != "" {
			id, err := strconv.ParseInt(b, 10, 64)
			if err != nil || id <= 0 {
				return badRequest("before must be a positive entry number.")
			}
			f.BeforeID = id
		}
		entries, err := s.deps.Audit.ListAudit(r.Context(), f)
		if err != nil {
			return &httpError{status: http.StatusInternalServerError, msg: "The audit log could not be read.", err: err}
		}
		snap := s.deps.Balancer.Snapshot()
		a := templates.AuditPage{Backend: f.Backend, Actor: f.Actor, Channel: f.Channel}
		for i := range snap.Backends {
			a.Backends = append(a.Backends, snap.Backends[i].Config.Name)
		}
		sensitive := mustUser(r).level >= roleOperator
		for _, e := range entries {
			if !sensitive {
				// Sources are addresses: of sign-ins, socket clients.
				e.Source = ""
				e.Command, e.Result, e.Detail = redactForViewer(e.Command), redactForViewer(e.Result), redactForViewer(e.Detail)
				e.Before, e.After = redactForViewer(e.Before), redactForViewer(e.After)
				if strings.HasPrefix(e.Command, "clear login lockout") {
					e.Detail = ""
				}
			}
			a.Entries = append(a.Entries, auditRow(e))
		}
		if len(entries) == f.Limit {
			older := url.Values{}
			for k, v := range map[string]string{"backend": f.Backend, "actor": f.Actor, "channel": f.Channel} {
				if v != "" {
					older.Set(k, v)
				}
			}
			older.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
			a.Older = older.Encode()
		}
		p := s.livePage(w, r, snap, "Audit", "audit")
		p.Refresh = "change"
		return s.render(w, r, http.StatusOK, templates.AuditView(p, a))
	})
}

func auditRow(e store.AuditEntry) templates.AuditRow {
	target := e.Backend
	if e.Server != "" {
		target += "/" + e.Server
	}
	return templates.AuditRow{
		ID: strconv.FormatInt(e.ID, 10), Time: e.Time.Local().Format("2006-01-02 15:04:05"),
		TimeISO: e.Time.UTC().Format(time.RFC3339), Actor: e.Actor, Channel: e.Channel, Source: e.Source,
		Command: e.Command, Result: auditResult(e.Result), OK: e.Result == "" || e.Result == "ok",
		Target: target, Before: e.Before, After: e.After, Detail: e.Detail,
	}
}

func auditResult(r string) string {
	if r == "" {
		return "ok"
	}
	return r
}

func (s *Server) handleWebsocket() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := mustUser(r)
		s.hub.serveWS(w, r, u.level >= roleOperator, sessionOwner{user: u.Name, session: u.session})
	}
}

// handleHealthz reports that the console is serving and the balancer
// answers.
func (s *Server) handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap := s.deps.Balancer.Snapshot()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if snap == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("balancer unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}
}

func (s *Server) handleStatic() http.Handler {
	files := http.FileServerFS(static.FS)
	h := http.StripPrefix("/static/", files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "*")
		if _, err := fs.Stat(static.FS, name); errors.Is(err, fs.ErrNotExist) || name == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
