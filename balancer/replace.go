package balancer

import (
	"fmt"
	"time"
)

// Replace runs a whole new state in one step, as a reload does: it
// validates st, hands it to the committer, and publishes it with one table
// swap, so every request sees either the old or the new configuration.
// Counters, connection pools and health of the servers, backends and
// frontends that keep their name live on; a server whose configured
// address, port or checks changed starts afresh. Connections to removed
// servers are closed. A state that fails validation or cannot be committed
// changes nothing. describe summarises the reload for the event subscribers
// receive.
func (b *Balancer) Replace(st State, o Origin, describe string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	cur := b.tab.Load()
	next, err := build(keepGraceSettings(cur, st.Config), st.Servers, cur, now)
	if err != nil {
		return fmt.Errorf("build balancer: %w", err)
	}
	if cp := b.committer.Load(); cp != nil {
		after := next.state()
		commit := Commit{Origin: o, Time: now, Before: cur.state(), After: after, Replaced: true, State: func() State { return after }}
		if err := (*cp)(commit); err != nil {
			return fmt.Errorf("persist reload: %w", err)
		}
	}
	next.version = cur.version + 1
	b.tab.Store(next)

	kept := make(map[*serverLive]bool)
	var evs []Event
	for _, be := range next.backends {
		be.publishRR()
		for _, s := range be.servers.All() {
			kept[s.live] = true
		}
		evs = append(evs, b.warnCollisions(be, cur.byName[be.cfg.Name])...)
	}
	for _, be := range cur.backends {
		for _, s := range be.servers.All() {
			if kept[s.live] {
				continue
			}
			if p := s.live.pool.Swap(nil); p != nil {
				p.shutdown()
			}
		}
	}
	b.checks.reconcile(next)
	evs = append([]Event{{Kind: EventChange, Origin: o, Message: describe}}, evs...)
	b.stamp(evs, now, next.version)
	b.publish(evs)
	return nil
}

// sameServer reports whether a server of a new configuration is the one a
// previous table ran, so its health carries over a reload.
func sameServer(old, s Server) bool {
	return old.Address == s.Address && old.Port == s.Port && old.PortSet == s.PortSet &&
		old.Check == s.Check && old.Rise == s.Rise && old.Fall == s.Fall
}

// Replay returns the durable state that results from applying changes to
// st in order, as Apply did when they were made; transient changes are
// skipped. It fails on the first change that does not apply, saying which.
func Replay(st State, changes []Change, now time.Time) (State, error) {
	if len(changes) == 0 {
		return st, nil
	}
	t, err := build(st.Config, st.Servers, nil, now)
	if err != nil {
		return State{}, fmt.Errorf("replay: build the stored state: %w", err)
	}
	for i, c := range changes {
		if ScopeOf(c) == Transient {
			continue
		}
		if t, _, err = t.apply(c, now); err != nil {
			return State{}, fmt.Errorf("replay: change %d (%s): %w", i+1, describeChange(c), err)
		}
	}
	return t.state(), nil
}
