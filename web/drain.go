package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"tether/balancer"
	"tether/templates"
)

// idleFor is how long a draining server must be idle (no session, no
// pinned request) before "maintenance when idle" puts it in maintenance.
const idleFor = 10 * time.Second

// drainWatches are the "put in maintenance when idle" requests: the
// console's form of HAProxy's wait srv-removable. Safe for concurrent use.
type drainWatches struct {
	mu sync.Mutex
	m  map[string]*drainWatch // "backend/server"
}

type drainWatch struct {
	actor     string
	source    string
	idleSince time.Time
}

func newDrainWatches() *drainWatches { return &drainWatches{m: make(map[string]*drainWatch)} }

func (d *drainWatches) add(backend, server, actor, source string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[backend+"/"+server] = &drainWatch{actor: actor, source: source}
}

// cancel forgets the watch of a server and returns who asked for it, if
// one was set.
func (d *drainWatches) cancel(backend, server string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.m[backend+"/"+server]
	delete(d.m, backend+"/"+server)
	if !ok {
		return "", false
	}
	return w.actor, true
}

func (d *drainWatches) watching(backend, server string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.m[backend+"/"+server]
	if !ok {
		return "", false
	}
	return w.actor, true
}

// due returns the watches whose server has been idle long enough, and
// forgets watches of servers that are gone or already in maintenance.
func (d *drainWatches) due(snap *balancer.Snapshot, st *sampler, now time.Time) map[string]drainWatch {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out map[string]drainWatch
	for key, w := range d.m {
		be, sv, _ := strings.Cut(key, "/")
		b := snap.Backend(be)
		var s *balancer.ServerStatus
		if b != nil {
			s = b.Server(sv)
		}
		if s == nil || s.Admin&balancer.AdminFMaint != 0 {
			delete(d.m, key)
			continue
		}
		smp, _ := st.server(be, sv)
		if s.Stats.CurSessions > 0 || smp.PinRate > 0 {
			w.idleSince = time.Time{}
			continue
		}
		if w.idleSince.IsZero() {
			w.idleSince = now
		}
		if now.Sub(w.idleSince) >= idleFor {
			if out == nil {
				out = make(map[string]drainWatch)
			}
			out[key] = *w
			delete(d.m, key)
		}
	}
	return out
}

// afterSample runs after each counter sample: it puts idle watched servers
// in maintenance, as the user who asked for it. A refusal ends the watch
// out loud: it is logged, the Runtime API records it in the audit log, and
// the returned notice reaches every open page.
func (s *Server) afterSample(snap *balancer.Snapshot, now time.Time) []wsEvent {
	var notices []wsEvent
	for key, w := range s.drains.due(snap, s.stats, now) {
		c := cmd("set", "server", key, "state", "maint")
		line := c.String()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res := s.deps.Runtime.Run(ctx, c, balancer.LevelAdmin,
			balancer.Origin{Channel: "console", Actor: w.actor, Source: w.source + " (when idle)", Command: line})
		cancel()
		text := res.Text()
		if text == "" {
			text = res.Err
		}
		if res.OK() {
			s.log.Info("server idle, put in maintenance", "server", key, "asked_by", w.actor)
			continue
		}
		s.log.Warn("maintenance when idle failed", "server", key, "asked_by", w.actor, "reply", text)
		be, sv, _ := strings.Cut(key, "/")
		notices = append(notices, wsEvent{Kind: "warning", Time: now.UnixMilli(), Backend: be, Server: sv,
			Actor: w.actor, Channel: "console", Command: line,
			Message: "Maintenance when idle failed for " + key + ", asked by " + w.actor + "; it is no longer watched. Runtime API reply: " + text})
	}
	return notices
}

// handleDrainWatch asks for maintenance when the server is idle; it also
// drains the server if it is still ready.
func (s *Server) handleDrainWatch() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, sv, err := urlNames(r)
		if err != nil {
			return err
		}
		snap := s.deps.Balancer.Snapshot()
		_, st, err := findServer(snap, r)
		if err != nil {
			return err
		}
		f := templates.Flash{OK: true}
		if adminMode(st) == "ready" {
			f = s.execute(r, cmd("set", "server", be+"/"+sv, "state", "drain"))
		}
		if f.OK {
			u := mustUser(r)
			s.drains.add(be, sv, u.Name, pageSource(r))
			f.Message = sv + " goes to maintenance once idle for " + idleFor.String() + "."
			f.Commands = append(f.Commands, "set server "+be+"/"+sv+" state maint  (when idle)")
		}
		s.respond(w, r, f, "/backends/"+be+"/servers/"+sv+"/drain")
		return nil
	})
}
