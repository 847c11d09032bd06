package web

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"tether/balancer"
	"tether/store"
)

// HistoryStore keeps per-server minute history and state changes.
// *store.Store satisfies it.
type HistoryStore interface {
	AppendHistory(ctx context.Context, buckets []store.HistoryBucket, events []store.HistoryEvent) error
	HistorySums(ctx context.Context, q store.HistoryQuery, step time.Duration) ([]store.HistoryBucket, error)
	HistoryEvents(ctx context.Context, q store.HistoryQuery) ([]store.HistoryEvent, error)
	PruneHistory(ctx context.Context, before time.Time) (int64, error)
}

const (
	// pruneEvery is how often history older than the retention is deleted.
	pruneEvery = 10 * time.Minute
	// maxPendingEvents bounds the state changes kept while the store
	// refuses writes; older ones are dropped first.
	maxPendingEvents = 10000
)

// serverCounts are the cumulative counters of a server that history
// records.
type serverCounts struct {
	requests, newSessions, pinned, redispatched, errors, bytesIn, bytesOut int64
}

func countsOf(st *balancer.ServerCounters) serverCounts {
	return serverCounts{
		requests: st.TotalRequests, newSessions: st.Sticky.NewSessions, pinned: st.Sticky.Pinned,
		redispatched: st.Sticky.Redispatched,
		errors:       st.Responses[4] + st.ConnErrors + st.RespErrors,
		bytesIn:      st.BytesIn, bytesOut: st.BytesOut,
	}
}

// counterDelta returns how much a cumulative counter grew from prev to
// cur. A counter that went down was cleared (clear counters all) or
// restarted: what it counts now is what happened since.
func counterDelta(prev, cur int64) int64 {
	if cur < prev {
		return max(cur, 0)
	}
	return cur - prev
}

// bucketKey names one server's bucket of one minute.
type bucketKey struct {
	minute          int64 // Unix minute
	backend, server string
}

// recorder turns the balancer's counters into per-server minute buckets
// and its events into state changes, and writes both to the history store
// at most once per flush interval (a minute by default), adding to what
// is stored, so a restart mid-minute loses nothing that was written. It
// deletes history older than the retention. Only Run uses its fields.
type recorder struct {
	log       *slog.Logger
	bal       Balancer
	hist      HistoryStore
	sample    time.Duration
	flush     time.Duration
	retention time.Duration
	now       func() time.Time

	prev      map[string]serverCounts // "backend/server" → counters last seen
	acc       map[bucketKey]*store.HistoryBucket
	events    []store.HistoryEvent
	lastFlush time.Time
	lastPrune time.Time
}

func newRecorder(log *slog.Logger, bal Balancer, hist HistoryStore, opts Options) *recorder {
	return &recorder{
		log: log, bal: bal, hist: hist, now: opts.Now,
		sample: opts.HistorySample, flush: opts.HistoryFlush, retention: opts.HistoryRetention,
		prev: make(map[string]serverCounts),
		acc:  make(map[bucketKey]*store.HistoryBucket),
	}
}

// Run records until ctx is done, then writes what it has not written yet.
func (r *recorder) Run(ctx context.Context) {
	events, cancel := r.bal.Subscribe(1024)
	defer cancel()
	tick := time.NewTicker(r.sample)
	defer tick.Stop()
	now := r.now()
	r.lastFlush = now
	r.record(r.bal.Snapshot(), now)
	r.prune(ctx, now)
	for {
		select {
		case <-ctx.Done():
			// The store outlives the console: finish with a context of our own.
			wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.drain(events)
			r.record(r.bal.Snapshot(), r.now())
			r.write(wctx)
			cancel()
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			r.note(ev)
		case <-tick.C:
			now := r.now()
			r.record(r.bal.Snapshot(), now)
			if now.Sub(r.lastFlush) >= r.flush {
				r.lastFlush = now
				r.write(ctx)
			}
			if now.Sub(r.lastPrune) >= pruneEvery {
				r.prune(ctx, now)
			}
		}
	}
}

// drain notes the events already queued.
func (r *recorder) drain(events <-chan balancer.Event) {
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			r.note(ev)
		default:
			return
		}
	}
}

// record adds what every server did since the previous snapshot to the
// bucket of now's minute.
func (r *recorder) record(snap *balancer.Snapshot, now time.Time) {
	minute := now.Unix() / 60
	seen := make(map[string]bool, len(r.prev))
	for i := range snap.Backends {
		b := &snap.Backends[i]
		for j := range b.Servers {
			sv := &b.Servers[j]
			key := b.Config.Name + "/" + sv.Config.Name
			seen[key] = true
			// A server seen for the first time counts from zero: its
			// counters started with this process or when it was added.
			p := r.prev[key]
			c := countsOf(&sv.Stats)
			r.prev[key] = c
			if c == p {
				continue
			}
			k := bucketKey{minute: minute, backend: b.Config.Name, server: sv.Config.Name}
			acc := r.acc[k]
			if acc == nil {
				acc = &store.HistoryBucket{Backend: k.backend, Server: k.server, Minute: time.Unix(minute*60, 0).UTC()}
				r.acc[k] = acc
			}
			acc.Requests += counterDelta(p.requests, c.requests)
			acc.NewSessions += counterDelta(p.newSessions, c.newSessions)
			acc.Pinned += counterDelta(p.pinned, c.pinned)
			acc.Redispatched += counterDelta(p.redispatched, c.redispatched)
			acc.Errors += counterDelta(p.errors, c.errors)
			acc.BytesIn += counterDelta(p.bytesIn, c.bytesIn)
			acc.BytesOut += counterDelta(p.bytesOut, c.bytesOut)
		}
	}
	for k := range r.prev {
		if !seen[k] {
			delete(r.prev, k)
		}
	}
}

// note keeps a health transition or an operator's change for the next
// write.
func (r *recorder) note(ev balancer.Event) {
	he, ok := historyEvent(ev)
	if !ok {
		return
	}
	if len(r.events) >= maxPendingEvents {
		r.events = r.events[1:]
	}
	r.events = append(r.events, he)
}

// write stores the buckets and events gathered since the last write. When
// the store refuses them they are kept for the next write, except buckets
// older than the retention.
func (r *recorder) write(ctx context.Context) {
	if len(r.acc) == 0 && len(r.events) == 0 {
		return
	}
	buckets := make([]store.HistoryBucket, 0, len(r.acc))
	for _, b := range r.acc {
		buckets = append(buckets, *b)
	}
	if err := r.hist.AppendHistory(ctx, buckets, r.events); err != nil {
		r.log.Warn("record server history", "buckets", len(buckets), "events", len(r.events), "error", err)
		oldest := r.now().Add(-r.retention).Unix() / 60
		for k := range r.acc {
			if k.minute < oldest {
				delete(r.acc, k)
			}
		}
		return
	}
	clear(r.acc)
	r.events = r.events[:0]
}

// prune deletes history older than the retention.
func (r *recorder) prune(ctx context.Context, now time.Time) {
	r.lastPrune = now
	n, err := r.hist.PruneHistory(ctx, now.Add(-r.retention))
	if err != nil {
		r.log.Warn("prune server history", "error", err)
		return
	}
	if n > 0 {
		r.log.Debug("pruned server history", "rows", n)
	}
}

// historyEvent returns the state change an event records: a health
// transition, or an operator's change to a server or to a backend's
// cookies. Its message names no address, cookie value or key, since
// viewers read it.
func historyEvent(ev balancer.Event) (store.HistoryEvent, bool) {
	he := store.HistoryEvent{Time: ev.Time, Backend: ev.Backend, Server: ev.Server, Kind: store.HistoryAdmin}
	switch ev.Kind {
	case balancer.EventHealth:
		he.Kind, he.Message = store.HistoryHealth, ev.Message
		return he, ev.Backend != ""
	case balancer.EventChange:
	default:
		return he, false
	}
	switch c := ev.Change.(type) {
	case balancer.SetAdminState:
		he.Message = "state " + c.State.String()
	case balancer.SetWeight:
		he.Message = "weight " + strconv.Itoa(c.Weight)
	case balancer.SetAddr:
		switch {
		case c.Address == "":
			he.Message = "lost its address"
		case c.Resolved:
			he.Message = "address changed (DNS)"
		default:
			he.Message = "address changed"
		}
	case balancer.SetHealth:
		he.Message = "health forced " + [...]string{"up", "stopping", "down"}[c.Health]
	case balancer.SetCheckEnabled:
		he.Message = "health checks disabled"
		if c.Enabled {
			he.Message = "health checks enabled"
		}
	case balancer.SetCheckPort:
		he.Message = "check port " + strconv.Itoa(c.Port)
	case balancer.SetMaxConn:
		he.Message = "maxconn " + strconv.Itoa(c.MaxConn)
	case balancer.AddServer:
		he.Server, he.Message = c.Server.Name, "added"
	case balancer.DelServer:
		he.Message = "deleted"
	case balancer.ShutdownSessions:
		he.Message = "sessions shut down"
	case balancer.SetDynamicCookies:
		he.Message = "dynamic cookies disabled"
		if c.Enabled {
			he.Message = "dynamic cookies enabled"
		}
	case balancer.SetDynamicCookieKey:
		he.Message = "dynamic cookie key changed"
		if c.Grace > 0 {
			he.Message += ", previous key honoured for " + balancer.FormatHAProxyTime(c.Grace)
		}
	case balancer.SetDynamicCookieAddrGrace:
		he.Message = "dynamic cookie address grace " + balancer.FormatHAProxyTime(c.Grace)
	case balancer.SetCookie:
		he.Message = "cookie settings changed"
	default:
		return he, false
	}
	if ev.Backend == "" {
		return he, false
	}
	if who := originText(ev.Origin); who != "" {
		he.Message += " — " + who
	}
	return he, true
}

// originText says who made a change: "alice (console)", "socket".
func originText(o balancer.Origin) string {
	switch {
	case o.Actor != "" && o.Channel != "":
		return "by " + o.Actor + " (" + o.Channel + ")"
	case o.Actor != "":
		return "by " + o.Actor
	case o.Channel != "":
		return "by " + o.Channel
	}
	return ""
}
