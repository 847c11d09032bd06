package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"

	"tether/balancer"
)

// reloader re-reads the config file a serve runs and applies what changed,
// live and in one step: HAProxy's reload (SIGUSR2 to its master, SIGHUP),
// without a new process. It is safe for concurrent use; reloads run one at
// a time.
type reloader struct {
	file  string
	bal   *balancer.Balancer
	binds *frontendBinds
	log   *slog.Logger

	mu sync.Mutex
}

// errNothingToReload reports a serve that runs no config file.
var errNothingToReload = errors.New("no configuration file to reload: tether serve was started without -f")

// reload validates the file and applies it; on any error nothing changes.
// It returns what changed, one line per change, including runtime changes
// that the file overrides.
func (r *reloader) reload(ctx context.Context, via string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file == "" {
		return nil, errNothingToReload
	}
	src, err := os.ReadFile(r.file)
	if err != nil {
		return nil, fmt.Errorf("reload: read config: %w", err)
	}
	cur := r.bal.State()
	var warnings strings.Builder
	next, nwarn, err := importedState(r.file, src, cur, false, &warnings)
	if nwarn > 0 {
		r.log.Warn("reload: the file has warnings", "file", r.file, "warnings", strings.TrimSpace(warnings.String()))
	}
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	if err := needsRestart(cur.Config, next.Config); err != nil {
		return nil, fmt.Errorf("reload: %w; nothing changed", err)
	}
	changes := append(diffStates(cur, next), overriddenRuntime(cur, next)...)
	if len(changes) == 0 {
		return nil, nil
	}
	plan, err := r.binds.listen(next.Config)
	if err != nil {
		return nil, fmt.Errorf("reload: %w; nothing changed", err)
	}
	o := balancer.Origin{Channel: "import", Source: via, Actor: "tether", Command: importCommand(r.file),
		File: balancer.ConfigFile{Path: r.file, Digest: fileDigest(src)}}
	if err := r.bal.Replace(next, o, fmt.Sprintf("reload of %s: %s", r.file, strings.Join(changes, "; "))); err != nil {
		plan.abort()
		return nil, fmt.Errorf("reload: %w; nothing changed", err)
	}
	r.binds.apply(plan)
	return changes, nil
}

// needsRestart returns an error naming what a reload cannot change in a
// running process: the Runtime API sockets, global settings and DNS
// discovery (resolvers sections, server templates, servers that resolve).
func needsRestart(cur, next balancer.Config) error {
	var what []string
	if !reflect.DeepEqual(cur.Global, next.Global) {
		what = append(what, "the global section")
	}
	if !reflect.DeepEqual(cur.Resolvers, next.Resolvers) {
		what = append(what, "resolvers sections")
	}
	for _, fe := range next.Frontends {
		for _, o := range cur.Frontends {
			if o.Name == fe.Name && o.MaxConn != fe.MaxConn {
				what = append(what, fmt.Sprintf("maxconn of frontend %s", fe.Name))
			}
		}
	}
	old := make(map[string]balancer.Backend)
	for _, be := range cur.Backends {
		old[be.Name] = be
	}
	for _, be := range next.Backends {
		o, ok := old[be.Name]
		if !reflect.DeepEqual(o.Templates, be.Templates) && (ok || len(be.Templates) > 0) {
			what = append(what, fmt.Sprintf("server-template lines of backend %s", be.Name))
		}
		for _, s := range be.Servers {
			if s.Resolvers != "" && !sameResolvedServer(o, s) {
				what = append(what, fmt.Sprintf("server %s/%s, which resolves through DNS", be.Name, s.Name))
			}
		}
	}
	if len(what) > 0 {
		return fmt.Errorf("changes to %s need a restart", strings.Join(what, ", "))
	}
	return nil
}

func sameResolvedServer(be balancer.Backend, s balancer.Server) bool {
	for _, o := range be.Servers {
		if o.Name == s.Name {
			return reflect.DeepEqual(o, s)
		}
	}
	return false
}

// overriddenRuntime lists the runtime changes of servers that the new state
// drops because the file changed those servers.
func overriddenRuntime(cur, next balancer.State) []string {
	var out []string
	for _, be := range cur.Config.Backends {
		for _, s := range be.Servers {
			k := be.Name + "/" + s.Name
			rt, had := cur.Servers[k]
			if !had {
				continue
			}
			if _, kept := next.Servers[k]; kept {
				continue
			}
			var what []string
			if rt.Admin != balancer.Ready && !(rt.Admin == balancer.Maint && s.Disabled) {
				what = append(what, "state "+rt.Admin.String())
			}
			if rt.Weight != s.Weight {
				what = append(what, fmt.Sprintf("weight %d", rt.Weight))
			}
			if rt.Address != "" && rt.Address != s.Address {
				what = append(what, "address "+rt.Address)
			}
			if len(what) > 0 && serverIn(next.Config, be.Name, s.Name) {
				out = append(out, fmt.Sprintf("! server %s/%s: runtime %s replaced by the file", be.Name, s.Name, strings.Join(what, ", ")))
			}
		}
	}
	return out
}

func serverIn(cfg balancer.Config, backend, server string) bool {
	for _, be := range cfg.Backends {
		if be.Name == backend {
			for _, s := range be.Servers {
				if s.Name == server {
					return true
				}
			}
		}
	}
	return false
}

// report formats a reload's outcome for a log line or a Runtime API reply.
func reportReload(changes []string, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case len(changes) == 0:
		return "Reload: no change."
	}
	return fmt.Sprintf("Reload: %d change(s) applied.\n%s", len(changes), strings.Join(changes, "\n"))
}

// logReload logs a reload's outcome.
func logReload(log *slog.Logger, changes []string, err error) {
	switch {
	case err != nil:
		log.Error("reload refused; nothing changed", "error", err)
	case len(changes) == 0:
		log.Info("reload: no change")
	default:
		log.Info("reload applied", "changes", len(changes))
		for _, c := range changes {
			log.Info("reload", "change", c)
		}
	}
}
