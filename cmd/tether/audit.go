package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"tether/balancer"
	"tether/store"
)

// refusalAudit records refused Runtime API changes in the audit log without
// letting one client fill the disk: each source (channel and address) gets
// at most limit rows a window; the rest are counted and written as one
// summary row when the window ends. It is safe for concurrent use.
type refusalAudit struct {
	st     *store.Store
	log    *slog.Logger
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	sources map[string]*refusals
}

// refusals counts one source's refused commands in the current window.
type refusals struct {
	origin     balancer.Origin
	start      time.Time
	written    int
	suppressed int
	last       string
}

func newRefusalAudit(st *store.Store, log *slog.Logger) *refusalAudit {
	return &refusalAudit{st: st, log: log, limit: 20, window: time.Minute, now: time.Now, sources: make(map[string]*refusals)}
}

// record is the Dispatcher's Audit hook.
func (a *refusalAudit) record(o balancer.Origin, command, result string) {
	now := a.now()
	key := o.Channel + "\x00" + o.Source + "\x00" + o.Actor
	var summary []store.AuditEntry
	a.mu.Lock()
	r := a.sources[key]
	if r != nil && now.Sub(r.start) >= a.window {
		summary = a.endLocked(key, r, summary)
		r = nil
	}
	if r == nil {
		r = &refusals{origin: o, start: now}
		a.sources[key] = r
	}
	write := r.written < a.limit
	if write {
		r.written++
	} else {
		r.suppressed++
		r.last = command
	}
	a.mu.Unlock()
	for _, e := range summary {
		a.append(e)
	}
	if write {
		a.append(store.AuditEntry{Time: now, Actor: o.Actor, Channel: o.Channel, Source: o.Source, Command: command, Result: result})
	}
}

// endLocked forgets a window and adds its summary to out when it had
// suppressed rows; a.mu is held.
func (a *refusalAudit) endLocked(key string, r *refusals, out []store.AuditEntry) []store.AuditEntry {
	delete(a.sources, key)
	if r.suppressed == 0 {
		return out
	}
	e := store.AuditEntry{
		Time: a.now(), Actor: r.origin.Actor, Channel: r.origin.Channel, Source: r.origin.Source,
		Command: fmt.Sprintf("%d more refused commands (last: %s)", r.suppressed, r.last),
		Result:  fmt.Sprintf("not recorded one by one: more than %d refusals from this source within %s", a.limit, a.window),
	}
	return append(out, e)
}

// Run writes the summaries of ended windows every window, and of all
// windows when ctx ends.
func (a *refusalAudit) Run(ctx context.Context) error {
	tick := time.NewTicker(a.window)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			a.flush(true)
			return nil
		case <-tick.C:
			a.flush(false)
		}
	}
}

func (a *refusalAudit) flush(all bool) {
	now := a.now()
	var summary []store.AuditEntry
	a.mu.Lock()
	for key, r := range a.sources {
		if all || now.Sub(r.start) >= a.window {
			summary = a.endLocked(key, r, summary)
		}
	}
	a.mu.Unlock()
	for _, e := range summary {
		a.append(e)
	}
}

func (a *refusalAudit) append(e store.AuditEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.st.AppendAudit(ctx, e); err != nil {
		a.log.Error("audit a refused command", "error", err)
	}
}
