package balancer

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"
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
}

// Balancer is a running load balancer built from a Config. All its methods
// are safe for concurrent use.
type Balancer struct {
	opts Options
}

var errNotBuilt = errors.New("balancer: not implemented")

// New validates cfg and builds a balancer from it. Health checks start with Run.
func New(cfg Config, opts Options) (*Balancer, error) {
	return nil, errNotBuilt
}

// Apply validates a change, hands it to the committer, and makes it visible
// to traffic, in that order; a change that fails validation or cannot be
// committed changes nothing. Subscribers are then notified.
func (b *Balancer) Apply(c Change, o Origin) error { return errNotBuilt }

// Snapshot returns the current configuration, states and counters.
func (b *Balancer) Snapshot() *Snapshot { return &Snapshot{} }

// State returns the durable state: configuration with runtime changes folded in.
func (b *Balancer) State() State { return State{} }

// Subscribe returns a channel receiving every event from now on, and a
// function that ends the subscription. A subscriber whose buffer is full
// loses events rather than slowing the balancer; it can tell by gaps in Seq.
func (b *Balancer) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event)
	return ch, func() {}
}

// Handler returns the proxy handler of the named frontend.
func (b *Balancer) Handler(frontend string) (http.Handler, error) { return nil, errNotBuilt }

// Run runs health checks until ctx is done.
func (b *Balancer) Run(ctx context.Context) error { <-ctx.Done(); return nil }
