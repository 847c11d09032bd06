package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/localcopy"
	"tether/web"
)

// fleetChannel is the origin channel of changes a node applies because
// another node committed them.
const fleetChannel = "fleet"

// Fleet timings.
const (
	// heartbeatEvery is how often a node reports itself in the registry.
	heartbeatEvery = 2 * time.Second
	// fleetCommitTimeout bounds one commit to the shared journal.
	fleetCommitTimeout = 5 * time.Second
)

// fleetNode joins a serve to the nodes sharing its PostgreSQL database: it
// commits this node's shared changes at the journal version the node
// applied (a commit made while another node's change is not yet applied
// is refused), applies the rows other nodes commit in journal order, and
// heartbeats in the node registry. Node-local changes (DNS-resolved
// addresses) stay on the node.
type fleetNode struct {
	name       string
	st         *store.Store
	log        *slog.Logger
	started    time.Time
	consoleURL string
	// bal is the node's balancer; replace applies a whole state to it and
	// to the frontends' listeners. Both are set before follow runs.
	bal     *balancer.Balancer
	replace func(balancer.State, balancer.Origin) error

	// applied is the newest journal version this node applied.
	applied atomic.Int64
	// following is the version of the row follow is applying.
	following atomic.Int64
	// saver, when set, keeps the node's local copy of the state.
	saver *localcopy.Saver
}

func newFleetNode(name string, st *store.Store, applied int64, log *slog.Logger) *fleetNode {
	n := &fleetNode{name: name, st: st, log: log.With("component", "fleet", "node", name), started: time.Now()}
	n.applied.Store(applied)
	return n
}

// advance raises applied to v.
func (n *fleetNode) advance(v int64) {
	for {
		cur := n.applied.Load()
		if v <= cur || n.applied.CompareAndSwap(cur, v) {
			return
		}
	}
}

// commit is the balancer's committer. It runs under the balancer's
// writer lock, so commits and applied rows take turns.
func (n *fleetNode) commit(c balancer.Commit) error {
	if c.Origin.Channel == fleetChannel {
		v := n.following.Load()
		n.advance(v)
		n.save(c, v)
		return nil
	}
	if !c.Replaced && !shares(c.Changes) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), fleetCommitTimeout)
	defer cancel()
	v, err := n.st.CommitAt(ctx, c, n.applied.Load())
	var conflict *store.ConflictError
	switch {
	case errors.As(err, &conflict):
		return refusal{err: err, reply: fmt.Sprintf("Change refused: another node changed the configuration first (journal version %d, this node has applied %d); retry once it is applied here.", conflict.Newest, conflict.Applied)}
	case err != nil:
		return refusal{err: err, reply: "Change refused: the shared database cannot be reached; this node keeps serving its last configuration."}
	}
	n.advance(v)
	n.save(c, v)
	return nil
}

// save offers the state once c is applied, at journal version v, for the
// node's local copy; the copy is written outside the writer lock.
func (n *fleetNode) save(c balancer.Commit, v int64) {
	if n.saver != nil && c.State != nil {
		n.saver.Offer(localcopy.Copy{Version: v, State: c.State()})
	}
}

// refusal is a commit the fleet refused, with the reply the Runtime API
// gives for it.
type refusal struct {
	err   error
	reply string
}

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// Reply is the Runtime API's reply to the refused command.
func (r refusal) Reply() string { return r.reply }

// shares reports whether changes hold one the fleet shares.
func shares(changes []balancer.Change) bool {
	for _, c := range changes {
		if balancer.ScopeOf(c) == balancer.Shared {
			return true
		}
	}
	return false
}

// follow applies the journal rows other nodes commit until ctx ends.
func (n *fleetNode) follow(ctx context.Context) error {
	return n.st.Follow(ctx, n.applied.Load(), n.apply)
}

// apply applies one followed row, unless this node applied it already
// (its own commits). A row that does not apply is logged and skipped: the
// node then differs from the fleet until the next whole state.
func (n *fleetNode) apply(r store.JournalRow) error {
	if r.Version <= n.applied.Load() {
		return nil
	}
	o := balancer.Origin{Channel: fleetChannel, Actor: r.Entry.Actor, Command: r.Entry.Command,
		Source: fmt.Sprintf("journal %d (%s %s)", r.Version, r.Entry.Channel, r.Entry.Source)}
	n.following.Store(r.Version)
	var err error
	switch {
	case r.State != nil:
		// The state this node stored at its start is the one it runs.
		if !reflect.DeepEqual(store.Normalize(*r.State), store.Normalize(n.bal.State())) {
			err = n.replace(*r.State, o)
		}
	case r.Changes != nil:
		var shared []balancer.Change
		for _, c := range r.Changes {
			if balancer.ScopeOf(c) == balancer.Shared {
				shared = append(shared, c)
			}
		}
		if len(shared) > 0 {
			err = n.bal.ApplyBatch(o, shared...)
		}
	}
	if err != nil {
		n.log.Error("journal row not applied: this node differs from the fleet until the next whole state is committed",
			"version", r.Version, "command", r.Entry.Command, "error", err)
	}
	n.advance(r.Version)
	return nil
}

// heartbeat reports the node in the registry, with its per-server
// counters for the fleet's consoles, now and every heartbeatEvery until
// ctx ends.
func (n *fleetNode) heartbeat(ctx context.Context) error {
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	for {
		counters, err := web.NodeCounters(n.bal.Snapshot())
		if err != nil {
			n.log.Warn("node counters not encoded", "error", err)
		}
		err = n.st.Heartbeat(ctx, store.Node{Name: n.name, Version: tetherVersion(), Applied: n.applied.Load(),
			Started: n.started, ConsoleURL: n.consoleURL, Counters: counters})
		if err != nil && ctx.Err() == nil {
			n.log.Warn("heartbeat not recorded", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// tetherVersion is the main module's version from the build information.
func tetherVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// localCopyPath is where a fleet node keeps its local copy of the state:
// NODE.tether-state in -state-dir, else beside its -stats-socket, else in
// the working directory.
func localCopyPath(sc serveConfig) string {
	dir := sc.stateDir
	if dir == "" && sc.statsSocket != "" && !strings.Contains(sc.statsSocket, "@") {
		dir = filepath.Dir(sc.statsSocket)
	}
	if dir == "" {
		dir = "."
	}
	name := strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(sc.node)
	return filepath.Join(dir, name+".tether-state")
}

// openOffline opens the fleet's database without connecting and reads the
// node's local copy of the state to start from, after openErr said the
// database cannot be reached. Without a usable copy it says why the node
// cannot start.
func openOffline(dsn, copyPath string, openErr error, log *slog.Logger) (*store.Store, *localcopy.Copy, error) {
	c, err := localcopy.Read(copyPath)
	switch {
	case localcopy.IsMissing(err):
		return nil, nil, fmt.Errorf("%w; this node has no local copy of the fleet's state (%s) to start from, so it starts only once the database can be reached", openErr, copyPath)
	case err != nil:
		return nil, nil, fmt.Errorf("%w; and this node's local copy of the state cannot be used: %v", openErr, err)
	}
	st, err := store.OpenOffline(dsn, log.With("component", "store"))
	if err != nil {
		return nil, nil, err
	}
	log.Warn("the shared database cannot be reached: serving this node's local copy of the state; changes are refused until the database is back",
		"copy", copyPath, "version", c.Version, "error", openErr)
	return st, &c, nil
}

// migrateOnceBack migrates the database of a node started offline as soon
// as it answers, trying every second until ctx ends.
func migrateOnceBack(ctx context.Context, st *store.Store, log *slog.Logger) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		err := st.Migrate(ctx)
		if err == nil {
			log.Info("the shared database is back: catching up on the journal")
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
