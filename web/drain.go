package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"tether/balancer"
	"tether/balancer/runtimeapi"
)

// idleFor is how long a draining server must be idle (no session, no
// pinned request) before "maintenance when idle" puts it in maintenance.
const idleFor = 10 * time.Second

// drainWatches times the servers that have a standing request for
// maintenance when idle (balancer.IdleIntent, stored with the server, so
// it survives a restart): since when each has been idle. Safe for
// concurrent use.
type drainWatches struct {
	mu        sync.Mutex
	idleSince map[string]time.Time // "backend/server"
}

func newDrainWatches() *drainWatches { return &drainWatches{idleSince: make(map[string]time.Time)} }

// due returns the requests whose server has been idle long enough, by
// "backend/server", and forgets the timers of servers no longer asked for.
func (d *drainWatches) due(snap *balancer.Snapshot, st *sampler, now time.Time) map[string]balancer.IdleIntent {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out map[string]balancer.IdleIntent
	asked := make(map[string]bool)
	for _, b := range snap.Backends {
		for i := range b.Servers {
			s := &b.Servers[i]
			if !s.WhenIdle.Asked || s.Admin&balancer.AdminFMaint != 0 {
				continue
			}
			key := b.Config.Name + "/" + s.Config.Name
			asked[key] = true
			smp, _ := st.server(b.Config.Name, s.Config.Name)
			if s.Stats.CurSessions > 0 || smp.PinRate > 0 {
				delete(d.idleSince, key)
				continue
			}
			since, ok := d.idleSince[key]
			if !ok {
				d.idleSince[key] = now
				continue
			}
			if now.Sub(since) >= idleFor {
				if out == nil {
					out = make(map[string]balancer.IdleIntent)
				}
				out[key] = s.WhenIdle
				delete(d.idleSince, key)
			}
		}
	}
	for key := range d.idleSince {
		if !asked[key] {
			delete(d.idleSince, key)
		}
	}
	return out
}

// afterSample runs after each counter sample: it puts idle servers that
// have a request for maintenance when idle in maintenance, as the user who
// asked for it, which ends the request. A refusal ends the request out
// loud: it is withdrawn, logged, recorded by the Runtime API in the audit
// log, and the returned notice reaches every open page.
func (s *Server) afterSample(snap *balancer.Snapshot, now time.Time) []wsEvent {
	var notices []wsEvent
	for key, in := range s.drains.due(snap, s.stats, now) {
		o := balancer.Origin{Channel: "console", Actor: in.By, Source: in.From + " (when idle)"}
		run := func(c runtimeapi.Command) runtimeapi.Result {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			o.Command = c.String()
			return s.deps.Runtime.Run(ctx, c, balancer.LevelAdmin, o)
		}
		c := cmd("set", "server", key, "state", "maint")
		res := run(c)
		if res.OK() {
			s.log.Info("server idle, put in maintenance", "server", key, "asked_by", in.By)
			continue
		}
		text := res.Text()
		if text == "" {
			text = res.Err
		}
		o.Source = in.From + " (when idle: withdrawn)"
		if off := run(cmd("set", "maint-when-idle", "server", key, "off")); !off.OK() {
			s.log.Warn("withdraw maintenance when idle", "server", key, "reply", off.Text())
		}
		s.log.Warn("maintenance when idle failed", "server", key, "asked_by", in.By, "reply", text)
		be, sv, _ := strings.Cut(key, "/")
		notices = append(notices, wsEvent{Kind: "warning", Time: now.UnixMilli(), Backend: be, Server: sv,
			Actor: in.By, Channel: "console", Command: c.String(),
			Message: "Maintenance when idle failed for " + key + ", asked by " + in.By + "; it is no longer watched. Runtime API reply: " + text})
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
		cmds := []runtimeapi.Command{cmd("set", "maint-when-idle", "server", be+"/"+sv, "on")}
		if adminMode(st) == "ready" {
			cmds = append([]runtimeapi.Command{cmd("set", "server", be+"/"+sv, "state", "drain")}, cmds...)
		}
		f := s.execute(r, cmds...)
		if f.OK {
			f.Message = sv + " goes to maintenance once idle for " + idleFor.String() + "."
		}
		s.respond(w, r, f, "/backends/"+be+"/servers/"+sv+"/drain")
		return nil
	})
}
