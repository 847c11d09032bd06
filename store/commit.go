package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"tether/balancer"
)

// Committer returns the hook the balancer calls for every change
// (balancer.Options.Committer). Each call runs Commit with a 5 s timeout.
func (s *Store) Committer() balancer.Committer {
	return func(c balancer.Commit) error {
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		defer cancel()
		return s.Commit(ctx, c)
	}
}

// Commit writes one change in one transaction: the difference between
// c.Before and c.After (only the rows of what changed), and an audit entry
// saying who changed what, from what to what. On error nothing is written.
//
// Commit expects the database to hold c.Before; it returns an error
// wrapping ErrOutOfSync when a row it must change is missing.
func (s *Store) Commit(ctx context.Context, c balancer.Commit) error {
	if err := checkRuntimeKeys(c.After); err != nil {
		return fmt.Errorf("commit change: %w", err)
	}
	e := AuditEntry{
		Time:    c.Time,
		Actor:   c.Origin.Actor,
		Channel: c.Origin.Channel,
		Source:  c.Origin.Source,
		Command: c.Origin.Command,
		Result:  ResultOK,
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	primary := ""
	if c.Change != nil {
		e.Backend = c.Change.BackendName()
		primary = changeServer(c.Change)
	}
	d := description{backend: e.Backend}
	start := time.Now()
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := writeDiff(ctx, tx, c.Before, c.After, &d); err != nil {
			return err
		}
		e.Server = primary
		if e.Server == "" && len(d.servers) == 1 {
			for name := range d.servers {
				e.Server = name
			}
		}
		d.render(&e, primary)
		if e.Command == "" && c.Change != nil {
			e.Command = changeCommand(c.Change)
		}
		keys := append(stateKeys(c.Before), stateKeys(c.After)...)
		return insertAudit(ctx, tx, scrubEntry(e, keys))
	})
	if err != nil {
		if c.Change != nil {
			return fmt.Errorf("commit %T to backend %q: %w", c.Change, c.Change.BackendName(), err)
		}
		return fmt.Errorf("commit change: %w", err)
	}
	if took := time.Since(start); took > slowCommit {
		s.log.Warn("slow commit", "backend", e.Backend, "server", e.Server, "took", took)
	}
	return nil
}

// slowCommit is the commit duration above which a warning is logged.
const slowCommit = time.Second

// changeServer returns the server a change names, or "".
func changeServer(c balancer.Change) string {
	if a, ok := c.(balancer.AddServer); ok {
		return a.Server.Name
	}
	if ref, ok := serverRef(c); ok {
		return ref.Server
	}
	return ""
}

// serverRef extracts the ServerRef embedded in a change, if any.
func serverRef(c any) (balancer.ServerRef, bool) {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Struct {
		return balancer.ServerRef{}, false
	}
	f := v.FieldByName("ServerRef")
	if !f.IsValid() {
		return balancer.ServerRef{}, false
	}
	ref, ok := f.Interface().(balancer.ServerRef)
	return ref, ok
}

// changeCommand names a change for an audit entry whose origin carried no
// command text. It never includes a key.
func changeCommand(c balancer.Change) string {
	name := strings.TrimPrefix(fmt.Sprintf("%T", c), "balancer.")
	if ref, ok := serverRef(c); ok {
		return name + " " + ref.String()
	}
	return name + " " + c.BackendName()
}

// writeDiff writes what differs between before and after.
func writeDiff(ctx context.Context, tx *sql.Tx, before, after balancer.State, d *description) error {
	bc, ac := before.Config, after.Config
	if !reflect.DeepEqual(bc.Global, ac.Global) {
		d.section("global", bc.Global, ac.Global)
		if err := writeGlobal(ctx, tx, ac.Global); err != nil {
			return err
		}
	}
	if !reflect.DeepEqual(bc.Frontends, ac.Frontends) {
		describeNamed(d, "frontend", bc.Frontends, ac.Frontends, func(f balancer.Frontend) string { return f.Name })
		if _, err := tx.ExecContext(ctx, "DELETE FROM frontends"); err != nil {
			return fmt.Errorf("clear frontends: %w", err)
		}
		for i, f := range ac.Frontends {
			if err := insertFrontend(ctx, tx, i, f); err != nil {
				return err
			}
		}
	}
	if !reflect.DeepEqual(bc.Resolvers, ac.Resolvers) {
		describeNamed(d, "resolvers", bc.Resolvers, ac.Resolvers, func(r balancer.Resolvers) string { return r.Name })
		if _, err := tx.ExecContext(ctx, "DELETE FROM resolvers"); err != nil {
			return fmt.Errorf("clear resolvers: %w", err)
		}
		for i, r := range ac.Resolvers {
			if err := insertResolvers(ctx, tx, i, r); err != nil {
				return err
			}
		}
	}
	return writeBackends(ctx, tx, before, after, d)
}

// describeNamed describes changes to a list of named sections.
func describeNamed[T any](d *description, kind string, a, b []T, name func(T) string) {
	old := make(map[string]T, len(a))
	for _, x := range a {
		old[name(x)] = x
	}
	seen := make(map[string]bool, len(b))
	for _, x := range b {
		n := name(x)
		seen[n] = true
		if o, ok := old[n]; !ok {
			d.add("", "add "+kind+" "+n, "", "")
		} else if !reflect.DeepEqual(o, x) {
			d.section(kind+" "+n, o, x)
		}
	}
	for _, x := range a {
		if !seen[name(x)] {
			d.add("", "del "+kind+" "+name(x), "", "")
		}
	}
}

// backendIDs finds backend ids by name within one transaction, querying
// each at most once.
type backendIDs struct {
	tx  *sql.Tx
	ids map[string]int64
}

func (b *backendIDs) get(ctx context.Context, name string) (int64, error) {
	if id, ok := b.ids[name]; ok {
		return id, nil
	}
	var id int64
	err := b.tx.QueryRowContext(ctx, "SELECT id FROM backends WHERE name = ?", name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("find backend %q: %w", name, ErrOutOfSync)
	}
	if err != nil {
		return 0, fmt.Errorf("find backend %q: %w", name, err)
	}
	b.ids[name] = id
	return id, nil
}

func writeBackends(ctx context.Context, tx *sql.Tx, before, after balancer.State, d *description) error {
	sw := newServerWriter(tx)
	defer sw.close()
	ids := &backendIDs{tx: tx, ids: make(map[string]int64)}

	oldIdx := make(map[string]int, len(before.Config.Backends))
	for i, b := range before.Config.Backends {
		oldIdx[b.Name] = i
	}
	newNames := make(map[string]bool, len(after.Config.Backends))
	for _, b := range after.Config.Backends {
		newNames[b.Name] = true
	}
	for _, b := range before.Config.Backends {
		if newNames[b.Name] {
			continue
		}
		d.add("", "del backend "+b.Name, "", "")
		res, err := tx.ExecContext(ctx, "DELETE FROM backends WHERE name = ?", b.Name)
		if err != nil {
			return fmt.Errorf("delete backend %q: %w", b.Name, err)
		}
		if err := expectOneRow(res, "backend "+b.Name); err != nil {
			return err
		}
	}

	for pos, ab := range after.Config.Backends {
		j, existed := oldIdx[ab.Name]
		if !existed {
			d.add("", "add backend "+ab.Name, "", "")
			d.markBackendAdded(ab.Name)
			id, err := insertBackend(ctx, tx, sw, pos, ab)
			if err != nil {
				return err
			}
			ids.ids[ab.Name] = id
			continue
		}
		bb := before.Config.Backends[j]
		if pos != j || !backendSettingsEqual(bb, ab) {
			d.backendSettings(d.backendObject(ab.Name), bb, ab)
			id, err := ids.get(ctx, ab.Name)
			if err != nil {
				return err
			}
			if err := updateBackend(ctx, tx, id, pos, ab); err != nil {
				return err
			}
		}
		if !reflect.DeepEqual(bb.Templates, ab.Templates) {
			d.add(d.backendObject(ab.Name), "server-templates", templatesText(bb.Templates), templatesText(ab.Templates))
			id, err := ids.get(ctx, ab.Name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM server_templates WHERE backend_id = ?", id); err != nil {
				return fmt.Errorf("clear server templates of backend %q: %w", ab.Name, err)
			}
			if err := insertTemplates(ctx, tx, id, ab); err != nil {
				return err
			}
		}
		if err := writeServers(ctx, sw, ids, ab.Name, bb.Servers, ab.Servers, before.Servers, after.Servers, d); err != nil {
			return fmt.Errorf("backend %q: %w", ab.Name, err)
		}
	}
	return writeRuntime(ctx, sw, ids, before.Servers, after.Servers, newNames, d)
}

// writeRuntime writes the runtime settings that differ between before and
// after. Settings of a deleted backend went with it.
func writeRuntime(ctx context.Context, sw *serverWriter, ids *backendIDs, before, after map[string]balancer.ServerRuntime,
	backends map[string]bool, d *description) error {
	var changed, gone []string
	for k, ra := range after {
		if rb, ok := before[k]; !ok || rb != ra {
			changed = append(changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			gone = append(gone, k)
		}
	}
	slices.Sort(changed)
	slices.Sort(gone)
	for _, k := range changed {
		b, name, _ := strings.Cut(k, "/")
		id, err := ids.get(ctx, b)
		if err != nil {
			return err
		}
		ra := after[k]
		if !d.addedOrDeleted(b, name) {
			var rb *balancer.ServerRuntime
			if r, ok := before[k]; ok {
				rb = &r
			}
			d.touchServer(b, name)
			d.serverRuntime(d.serverObject(b, name), rb, &ra)
		}
		if err := sw.putRuntime(ctx, id, name, ra); err != nil {
			return fmt.Errorf("backend %q: %w", b, err)
		}
	}
	for _, k := range gone {
		b, name, _ := strings.Cut(k, "/")
		if !backends[b] {
			continue
		}
		id, err := ids.get(ctx, b)
		if err != nil {
			return err
		}
		if !d.addedOrDeleted(b, name) {
			rb := before[k]
			d.touchServer(b, name)
			d.serverRuntime(d.serverObject(b, name), &rb, nil)
		}
		if err := sw.deleteRuntime(ctx, id, name); err != nil {
			return fmt.Errorf("backend %q: %w", b, err)
		}
	}
	return nil
}

func templatesText(ts []balancer.ServerTemplate) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%s[%d-%d] %s", t.Prefix, t.Low, t.High, t.FQDN)
	}
	return strings.Join(parts, ",")
}

// backendSettingsEqual compares two backends without their servers and
// templates.
func backendSettingsEqual(a, b balancer.Backend) bool {
	a.Servers, b.Servers, a.Templates, b.Templates = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

func updateBackend(ctx context.Context, tx *sql.Tx, id int64, pos int, b balancer.Backend) error {
	vals, err := backendValues(b)
	if err != nil {
		return err
	}
	cols := strings.Split(backendColumns, ",")
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c) + " = ?"
	}
	args := append(append([]any{pos}, vals...), id)
	res, err := tx.ExecContext(ctx, "UPDATE backends SET position = ?, "+strings.Join(cols, ", ")+" WHERE id = ?", args...)
	if err != nil {
		return fmt.Errorf("update backend %q: %w", b.Name, err)
	}
	return expectOneRow(res, "backend "+b.Name)
}

// runtimeOf returns a server's runtime settings, or nil.
func runtimeOf(m map[string]balancer.ServerRuntime, backend, server string) *balancer.ServerRuntime {
	r, ok := m[backend+"/"+server]
	if !ok {
		return nil
	}
	return &r
}

// writeServers writes the configured servers of one backend that differ
// between before and after (runtime settings are written by writeRuntime).
// Stored positions are kept equal to the servers' indexes in the list,
// renumbering with one statement per insertion or deletion.
func writeServers(ctx context.Context, sw *serverWriter, ids *backendIDs, backend string,
	before, after []balancer.Server, rtBefore, rtAfter map[string]balancer.ServerRuntime, d *description) error {
	sameOrder := len(before) == len(after)
	for i := 0; sameOrder && i < len(before); i++ {
		sameOrder = before[i].Name == after[i].Name
	}
	if sameOrder {
		for i := range after {
			if serverEqual(&before[i], &after[i]) {
				continue
			}
			if err := updateServer(ctx, sw, ids, backend, i, before[i], after[i], d); err != nil {
				return err
			}
		}
		return nil
	}

	id, err := ids.get(ctx, backend)
	if err != nil {
		return err
	}
	oldIdx := make(map[string]int, len(before))
	for i, sv := range before {
		oldIdx[sv.Name] = i
	}
	newIdx := make(map[string]int, len(after))
	for i, sv := range after {
		newIdx[sv.Name] = i
	}
	// order mirrors the stored positions as rows are deleted and inserted.
	order := make([]string, len(before))
	for i, sv := range before {
		order[i] = sv.Name
	}
	for i := len(before) - 1; i >= 0; i-- {
		sv := before[i]
		if _, ok := newIdx[sv.Name]; ok {
			continue
		}
		d.touchServer(backend, sv.Name)
		d.markAddedOrDeleted(backend, sv.Name)
		d.add(d.serverObject(backend, sv.Name), "del", serverText(sv, runtimeOf(rtBefore, backend, sv.Name)), "")
		if err := sw.delete(ctx, id, sv.Name); err != nil {
			return err
		}
		if err := sw.shiftPositions(ctx, id, i+1, -1); err != nil {
			return err
		}
		order = slices.Delete(order, i, i+1)
	}
	for i, sv := range after {
		if _, ok := oldIdx[sv.Name]; ok {
			continue
		}
		d.touchServer(backend, sv.Name)
		d.markAddedOrDeleted(backend, sv.Name)
		d.add(d.serverObject(backend, sv.Name), "add", "", serverText(sv, runtimeOf(rtAfter, backend, sv.Name)))
		pos := min(i, len(order))
		if err := sw.shiftPositions(ctx, id, pos, 1); err != nil {
			return err
		}
		if err := sw.insert(ctx, id, pos, sv); err != nil {
			return err
		}
		order = slices.Insert(order, pos, sv.Name)
	}
	reordered := false
	for i, sv := range after {
		if order[i] != sv.Name && !reordered {
			reordered = true
			d.add(d.backendObject(backend), "servers reordered", "", "")
		}
		j, existed := oldIdx[sv.Name]
		switch {
		case !existed && order[i] == sv.Name:
			continue
		case !existed:
			if err := sw.update(ctx, id, sv.Name, i, sv); err != nil {
				return err
			}
		case order[i] == sv.Name && serverEqual(&before[j], &sv):
			continue
		default:
			if err := updateServer(ctx, sw, ids, backend, i, before[j], sv, d); err != nil {
				return err
			}
		}
	}
	return nil
}

func updateServer(ctx context.Context, sw *serverWriter, ids *backendIDs, backend string, pos int,
	before, after balancer.Server, d *description) error {
	id, err := ids.get(ctx, backend)
	if err != nil {
		return err
	}
	d.touchServer(backend, after.Name)
	d.serverConfig(d.serverObject(backend, after.Name), before, after)
	return sw.update(ctx, id, after.Name, pos, after)
}

// serverEqual reports whether two servers are the same. It compares field
// by field, without reflection, since it runs for every server of a changed
// backend; TestServerEqualSeesEveryField keeps it complete.
func serverEqual(a, b *balancer.Server) bool {
	return a.Name == b.Name && a.Address == b.Address && a.Port == b.Port && a.PortSet == b.PortSet &&
		a.Cookie == b.Cookie && a.Check == b.Check && a.Inter == b.Inter && a.FastInter == b.FastInter &&
		a.DownInter == b.DownInter && a.Rise == b.Rise && a.Fall == b.Fall && a.CheckPort == b.CheckPort &&
		a.Weight == b.Weight && a.Backup == b.Backup && a.Disabled == b.Disabled && a.MaxConn == b.MaxConn &&
		a.Resolvers == b.Resolvers && a.ResolvePrefer == b.ResolvePrefer && a.AllowDupIP == b.AllowDupIP &&
		slices.Equal(a.InitAddr, b.InitAddr)
}
