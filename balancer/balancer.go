package balancer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"tether/balancer/accesslog"
)

// Options are the optional dependencies of a Balancer.
type Options struct {
	// Logger receives warnings and health transitions; nil discards them.
	Logger *slog.Logger
	// Committer persists each change before it is applied; nil applies
	// changes without persisting them.
	Committer Committer
	// Runtime restores servers' runtime settings, keyed by "backend/server".
	Runtime map[string]ServerRuntime
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// AccessLogs receive the access-log lines of frontends that log to a
	// target, keyed by the target's address ("stdout", "stderr"). The
	// caller runs them; a target without a Logger here gets nothing.
	AccessLogs map[string]*accesslog.Logger
}

// Balancer is a running load balancer built from a Config. All its methods
// are safe for concurrent use.
type Balancer struct {
	log       *slog.Logger
	now       func() time.Time
	committer atomic.Pointer[Committer]
	started   time.Time

	// tab is the published routing table; mu serialises writers.
	tab atomic.Pointer[table]
	mu  sync.Mutex

	subsMu sync.Mutex
	subs   map[*subscriber]struct{}
	seq    uint64 // guarded by mu

	checks *checkSupervisor

	// accessLogs is Options.AccessLogs, read-only.
	accessLogs map[string]*accesslog.Logger
}

type subscriber struct {
	ch      chan Event
	dropped atomic.Int64
}

// New validates cfg and builds a balancer from it. Health checks start with Run.
func New(cfg Config, opts Options) (*Balancer, error) {
	b := &Balancer{
		log:  opts.Logger,
		now:  opts.Now,
		subs: make(map[*subscriber]struct{}),

		accessLogs: opts.AccessLogs,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if opts.Committer != nil {
		c := opts.Committer
		b.committer.Store(&c)
	}
	b.started = b.now()
	t, err := build(cfg, opts.Runtime, nil, b.started)
	if err != nil {
		return nil, fmt.Errorf("build balancer: %w", err)
	}
	t.version = 1
	b.tab.Store(t)
	for _, be := range t.backends {
		be.publishRR()
		b.warnCollisions(be, nil)
	}
	b.checks = newCheckSupervisor(b)
	return b, nil
}

// SetCommitter replaces the committer that persists changes; nil stops
// persisting. It lets a store be attached after the balancer is built.
func (b *Balancer) SetCommitter(c Committer) {
	if c == nil {
		b.committer.Store(nil)
		return
	}
	b.committer.Store(&c)
}

// Snapshot returns the current configuration, states and counters.
func (b *Balancer) Snapshot() *Snapshot {
	return b.tab.Load().snapshot(b.started, b.now())
}

// State returns the durable state: configuration with runtime changes folded in.
func (b *Balancer) State() State {
	return b.tab.Load().state()
}

// Subscribe returns a channel receiving every event from now on, and a
// function that ends the subscription. A subscriber whose buffer is full
// loses events rather than slowing the balancer; it can tell by gaps in Seq.
func (b *Balancer) Subscribe(buffer int) (<-chan Event, func()) {
	if buffer < 1 {
		buffer = 1
	}
	s := &subscriber{ch: make(chan Event, buffer)}
	b.subsMu.Lock()
	b.subs[s] = struct{}{}
	b.subsMu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.subsMu.Lock()
			delete(b.subs, s)
			b.subsMu.Unlock()
		})
	}
}

// publish sends events to every subscriber without blocking. It is called
// with mu held, so events reach subscribers in order.
func (b *Balancer) publish(evs []Event) {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	for _, ev := range evs {
		for s := range b.subs {
			select {
			case s.ch <- ev:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

// Run runs health checks and purges idle server connections until ctx is
// done, then waits for them to stop.
func (b *Balancer) Run(ctx context.Context) error {
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		t := time.NewTimer(maxPurgeWait)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				t.Reset(b.purgePools(time.Now()))
			}
		}
	}()
	b.checks.run(ctx)
	<-purged
	return nil
}

// maxPurgeWait is the longest the purger sleeps, so that a new pool's
// first purge comes at most this late.
const maxPurgeWait = time.Second

// purgePools purges each pool whose pool-purge-delay has passed and
// returns how long to wait for the next one that is due.
func (b *Balancer) purgePools(now time.Time) time.Duration {
	wait := maxPurgeWait
	b.eachPool(func(p *connPool) {
		wait = min(wait, p.purgeIfDue(now).Sub(now))
	})
	return max(wait, time.Millisecond)
}

// Close releases idle connections to servers.
func (b *Balancer) Close() {
	b.eachPool((*connPool).closeIdle)
}

// eachPool calls f with the connection pool of every server that has one.
func (b *Balancer) eachPool(f func(*connPool)) {
	for _, be := range b.tab.Load().backends {
		for _, s := range be.servers.All() {
			if p := s.live.pool.Load(); p != nil {
				f(p)
			}
		}
	}
}

// warnCollisions logs and publishes a warning for every new pair of servers
// sharing a generated cookie, as HAProxy does. prev is the backend before
// the change, or nil.
func (b *Balancer) warnCollisions(be *backendRT, prev *backendRT) []Event {
	cur := be.collisions()
	if len(cur) == 0 {
		return nil
	}
	var old map[string]string
	if prev != nil {
		old = prev.collisions()
	}
	var evs []Event
	for _, s := range be.servers.All() {
		other, ok := cur[s.cfg.Name]
		if !ok || !s.cookieDynamic || old[s.cfg.Name] == other {
			continue
		}
		msg := fmt.Sprintf("We generated two equal cookies for two different servers.\nPlease change the secret key for '%s'.", be.cfg.Name)
		b.log.Warn("dynamic cookie collision", "backend", be.cfg.Name, "server", s.cfg.Name, "other", other)
		evs = append(evs, Event{Kind: EventWarning, Backend: be.cfg.Name, Server: s.cfg.Name, Message: msg})
	}
	return evs
}
