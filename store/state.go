package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"tether/balancer"
)

// LoadState reads the balancer's durable state. found is false when no state
// was ever stored (a new database), in which case the State is empty.
//
// The State comes back in the form Normalize gives: every empty slice or map
// is nil.
func (s *Store) LoadState(ctx context.Context) (st balancer.State, found bool, err error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return balancer.State{}, false, fmt.Errorf("load state: begin: %w", err)
	}
	defer tx.Rollback()
	st, found, err = loadState(ctx, tx)
	if err != nil {
		return balancer.State{}, false, fmt.Errorf("load state: %w", err)
	}
	return st, found, nil
}

// ReplaceState replaces the whole stored state with st and appends audit to
// the audit log, in one transaction. It is meant for the first seeding of a
// database and for imports. audit.Time defaults to now, audit.Result to
// "ok" and audit.Detail to a summary of st; dynamic-cookie keys found in
// audit's text are replaced by their fingerprints.
func (s *Store) ReplaceState(ctx context.Context, st balancer.State, audit AuditEntry) error {
	if err := checkRuntimeKeys(st); err != nil {
		return fmt.Errorf("replace state: %w", err)
	}
	if audit.Time.IsZero() {
		audit.Time = s.now()
	}
	if audit.Result == "" {
		audit.Result = ResultOK
	}
	if audit.Detail == "" {
		audit.Detail = summarizeState(st)
	}
	audit = scrubEntry(audit, stateKeys(st))
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Servers, templates, runtime settings, nameservers and holds go
		// with their backends and resolvers (ON DELETE CASCADE).
		for _, table := range []string{"frontends", "backends", "resolvers"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
				return fmt.Errorf("clear %s: %w", table, err)
			}
		}
		if err := writeGlobal(ctx, tx, st.Config.Global); err != nil {
			return err
		}
		for i, f := range st.Config.Frontends {
			if err := insertFrontend(ctx, tx, i, f); err != nil {
				return err
			}
		}
		sw := newServerWriter(tx)
		defer sw.close()
		ids := make(map[string]int64, len(st.Config.Backends))
		for i, b := range st.Config.Backends {
			id, err := insertBackend(ctx, tx, sw, i, b)
			if err != nil {
				return err
			}
			ids[b.Name] = id
		}
		for k, r := range st.Servers {
			b, name, _ := strings.Cut(k, "/")
			if err := sw.putRuntime(ctx, ids[b], name, r); err != nil {
				return fmt.Errorf("backend %q: %w", b, err)
			}
		}
		for i, r := range st.Config.Resolvers {
			if err := insertResolvers(ctx, tx, i, r); err != nil {
				return err
			}
		}
		return insertAudit(ctx, tx, audit)
	})
	if err != nil {
		return fmt.Errorf("replace state: %w", err)
	}
	return nil
}

// checkRuntimeKeys reports an error if st holds runtime settings under a
// key that is not "backend/server" for one of its backends: they could not
// be stored. Servers need not be configured ones: server-template slots
// have runtime settings only.
func checkRuntimeKeys(st balancer.State) error {
	for k := range st.Servers {
		b, s, ok := strings.Cut(k, "/")
		if !ok || s == "" || !hasBackend(st.Config, b) {
			return fmt.Errorf("runtime settings for %q, which names no server of a configured backend", k)
		}
	}
	return nil
}

func hasBackend(c balancer.Config, name string) bool {
	for i := range c.Backends {
		if c.Backends[i].Name == name {
			return true
		}
	}
	return false
}

func summarizeState(st balancer.State) string {
	n := 0
	for _, b := range st.Config.Backends {
		n += len(b.Servers)
	}
	return fmt.Sprintf("state replaced: %d frontends, %d backends, %d servers, %d resolvers",
		len(st.Config.Frontends), len(st.Config.Backends), n, len(st.Config.Resolvers))
}

// execer is what *sql.Tx and *sql.Stmt-backed helpers need.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func writeGlobal(ctx context.Context, tx *sql.Tx, g balancer.Global) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM global_settings"); err != nil {
		return fmt.Errorf("clear global settings: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM stats_sockets"); err != nil {
		return fmt.Errorf("clear stats sockets: %w", err)
	}
	_, err := tx.ExecContext(ctx,
		"INSERT INTO global_settings (id, stats_timeout_ns, stats_maxconn, maxconn, bufsize, maxrewrite) VALUES (1, ?, ?, ?, ?, ?)",
		int64(g.StatsTimeout), g.StatsMaxConn, g.MaxConn, g.BufSize, g.MaxRewrite)
	if err != nil {
		return fmt.Errorf("write global settings: %w", err)
	}
	for i, so := range g.StatsSockets {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO stats_sockets (position, address, mode, level, severity_output) VALUES (?, ?, ?, ?, ?)",
			i, so.Address, int64(so.Mode), int64(so.Level), so.SeverityOutput)
		if err != nil {
			return fmt.Errorf("write stats socket %q: %w", so.Address, err)
		}
	}
	return nil
}

func insertFrontend(ctx context.Context, tx execer, pos int, f balancer.Frontend) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO frontends
		(name, position, proxy_id, binds, default_backend, forward_for, timeout_client_ns,
		maxconn, timeout_http_request_ns, timeout_http_keep_alive_ns, timeout_client_fin_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.Name, pos, f.ID, encodeList(f.Binds), f.DefaultBackend, f.ForwardFor, int64(f.TimeoutClient),
		f.MaxConn, int64(f.TimeoutHTTPRequest), int64(f.TimeoutHTTPKeepAlive), int64(f.TimeoutClientFin))
	if err != nil {
		return fmt.Errorf("write frontend %q: %w", f.Name, err)
	}
	return nil
}

// backendColumns are the backends table's columns after id, name and
// position, in the order backendValues returns them.
const backendColumns = `proxy_id, balance, cookie_enabled, cookie_name, cookie_mode, cookie_indirect,
	cookie_nocache, cookie_postonly, cookie_preserve, cookie_httponly, cookie_secure, cookie_dynamic,
	cookie_domains, cookie_maxidle_ns, cookie_maxlife_ns, cookie_attrs, dynamic_cookie_key,
	persist, redispatch, redispatch_interval, retries, forward_for,
	httpchk_enabled, httpchk_method, httpchk_uri, httpchk_version, httpchk_expect_status,
	timeout_connect_ns, timeout_server_ns, timeout_check_ns, timeout_queue_ns,
	timeout_tunnel_ns, timeout_server_fin_ns`

const backendColumnCount = 33

func backendValues(b balancer.Backend) ([]any, error) {
	c := b.Cookie
	if c == nil {
		c = &balancer.CookieConfig{}
	}
	mode, err := cookieModeName(c.Mode)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", b.Name, err)
	}
	h := b.HTTPCheck
	if h == nil {
		h = &balancer.HTTPCheck{}
	}
	return []any{
		b.ID, string(b.Balance), b.Cookie != nil, c.Name, mode, c.Indirect,
		c.NoCache, c.PostOnly, c.Preserve, c.HTTPOnly, c.Secure, c.Dynamic,
		encodeList(c.Domains), int64(c.MaxIdle), int64(c.MaxLife), encodeList(c.Attrs), b.DynamicCookieKey,
		b.Persist, b.Redispatch, b.RedispatchInterval, b.Retries, b.ForwardFor,
		b.HTTPCheck != nil, h.Method, h.URI, h.Version, h.ExpectStatus,
		int64(b.TimeoutConnect), int64(b.TimeoutServer), int64(b.TimeoutCheck), int64(b.TimeoutQueue),
		int64(b.TimeoutTunnel), int64(b.TimeoutServerFin),
	}, nil
}

// insertBackend writes a backend with its servers and templates (not the
// servers' runtime settings) and returns its id.
func insertBackend(ctx context.Context, tx *sql.Tx, sw *serverWriter, pos int, b balancer.Backend) (int64, error) {
	vals, err := backendValues(b)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx,
		"INSERT INTO backends (name, position, "+backendColumns+") VALUES (?, ?"+strings.Repeat(", ?", backendColumnCount)+")",
		append([]any{b.Name, pos}, vals...)...)
	if err != nil {
		return 0, fmt.Errorf("write backend %q: %w", b.Name, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("write backend %q: %w", b.Name, err)
	}
	for i, sv := range b.Servers {
		if err := sw.insert(ctx, id, i, sv); err != nil {
			return 0, fmt.Errorf("backend %q: %w", b.Name, err)
		}
	}
	return id, insertTemplates(ctx, tx, id, b)
}

func insertTemplates(ctx context.Context, tx execer, backendID int64, b balancer.Backend) error {
	for i, t := range b.Templates {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO server_templates (backend_id, position, prefix, low, high, fqdn, "+serverColumns+
				") VALUES (?, ?, ?, ?, ?, ?"+strings.Repeat(", ?", serverColumnCount)+")",
			append([]any{backendID, i, t.Prefix, t.Low, t.High, t.FQDN}, serverValues(t.Params)...)...)
		if err != nil {
			return fmt.Errorf("write server-template %q of backend %q: %w", t.Prefix, b.Name, err)
		}
	}
	return nil
}

// serverColumns are the columns servers and server_templates share, in the
// order serverValues returns them.
const serverColumns = `name, address, port, port_set, cookie, health_check, inter_ns, fastinter_ns,
	downinter_ns, rise, fall, check_port, weight, backup, disabled, maxconn, resolvers,
	resolve_prefer, allow_dup_ip, init_addr`

const serverColumnCount = 20

func serverValues(sv balancer.Server) []any {
	return []any{
		sv.Name, sv.Address, sv.Port, sv.PortSet, sv.Cookie, sv.Check, int64(sv.Inter), int64(sv.FastInter),
		int64(sv.DownInter), sv.Rise, sv.Fall, sv.CheckPort, sv.Weight, sv.Backup, sv.Disabled, sv.MaxConn, sv.Resolvers,
		sv.ResolvePrefer, sv.AllowDupIP, encodeList(sv.InitAddr),
	}
}

// serverWriter writes servers through statements prepared on first use,
// so that a backend of a thousand servers is written without parsing SQL
// each time, and a commit that writes one server prepares one statement.
type serverWriter struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// Server statements.
const (
	insertServerSQL = "INSERT INTO servers (backend_id, position, " + serverColumns +
		") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	updateServerSQL = `UPDATE servers SET position = ?, name = ?, address = ?, port = ?, port_set = ?, cookie = ?,
		health_check = ?, inter_ns = ?, fastinter_ns = ?, downinter_ns = ?, rise = ?, fall = ?, check_port = ?,
		weight = ?, backup = ?, disabled = ?, maxconn = ?, resolvers = ?, resolve_prefer = ?, allow_dup_ip = ?,
		init_addr = ?
		WHERE backend_id = ? AND name = ?`
	deleteServerSQL = "DELETE FROM servers WHERE backend_id = ? AND name = ?"
	shiftServersSQL = "UPDATE servers SET position = position + ? WHERE backend_id = ? AND position >= ?"
	putRuntimeSQL   = `INSERT INTO server_runtime (backend_id, name, admin, weight, check_enabled, address, port, port_set)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (backend_id, name) DO UPDATE SET admin = excluded.admin, weight = excluded.weight,
		check_enabled = excluded.check_enabled, address = excluded.address, port = excluded.port,
		port_set = excluded.port_set`
	deleteRuntimeSQL = "DELETE FROM server_runtime WHERE backend_id = ? AND name = ?"
)

func newServerWriter(tx *sql.Tx) *serverWriter {
	return &serverWriter{tx: tx, stmts: make(map[string]*sql.Stmt)}
}

func (w *serverWriter) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, ok := w.stmts[query]
	if !ok {
		var err error
		if st, err = w.tx.PrepareContext(ctx, query); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		w.stmts[query] = st
	}
	return st.ExecContext(ctx, args...)
}

func (w *serverWriter) close() {
	for _, st := range w.stmts {
		st.Close()
	}
}

func (w *serverWriter) insert(ctx context.Context, backendID int64, pos int, sv balancer.Server) error {
	args := append([]any{backendID, pos}, serverValues(sv)...)
	if _, err := w.exec(ctx, insertServerSQL, args...); err != nil {
		return fmt.Errorf("write server %q: %w", sv.Name, err)
	}
	return nil
}

// update rewrites the server named name at pos.
func (w *serverWriter) update(ctx context.Context, backendID int64, name string, pos int, sv balancer.Server) error {
	args := append(append([]any{pos}, serverValues(sv)...), backendID, name)
	res, err := w.exec(ctx, updateServerSQL, args...)
	if err != nil {
		return fmt.Errorf("update server %q: %w", name, err)
	}
	return expectOneRow(res, "server "+name)
}

// putRuntime writes a server's runtime settings.
func (w *serverWriter) putRuntime(ctx context.Context, backendID int64, name string, r balancer.ServerRuntime) error {
	admin, err := adminName(r.Admin)
	if err != nil {
		return fmt.Errorf("server %q: %w", name, err)
	}
	if _, err := w.exec(ctx, putRuntimeSQL, backendID, name, admin, r.Weight, r.CheckEnabled, r.Address, r.Port, r.PortSet); err != nil {
		return fmt.Errorf("write runtime settings of server %q: %w", name, err)
	}
	return nil
}

// deleteRuntime deletes a server's runtime settings.
func (w *serverWriter) deleteRuntime(ctx context.Context, backendID int64, name string) error {
	if _, err := w.exec(ctx, deleteRuntimeSQL, backendID, name); err != nil {
		return fmt.Errorf("delete runtime settings of server %q: %w", name, err)
	}
	return nil
}

func (w *serverWriter) delete(ctx context.Context, backendID int64, name string) error {
	res, err := w.exec(ctx, deleteServerSQL, backendID, name)
	if err != nil {
		return fmt.Errorf("delete server %q: %w", name, err)
	}
	return expectOneRow(res, "server "+name)
}

// shiftPositions adds delta to the position of every server of the backend
// at position from or later.
func (w *serverWriter) shiftPositions(ctx context.Context, backendID int64, from, delta int) error {
	if _, err := w.exec(ctx, shiftServersSQL, delta, backendID, from); err != nil {
		return fmt.Errorf("renumber servers: %w", err)
	}
	return nil
}

func expectOneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if n != 1 {
		return fmt.Errorf("write %s: %d rows matched: %w", what, n, ErrOutOfSync)
	}
	return nil
}

func insertResolvers(ctx context.Context, tx *sql.Tx, pos int, r balancer.Resolvers) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO resolvers (name, position, accepted_payload_size,
		resolve_retries, timeout_resolve_ns, timeout_retry_ns, parse_resolv_conf) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.Name, pos, r.AcceptedPayloadSize, r.ResolveRetries, int64(r.TimeoutResolve), int64(r.TimeoutRetry), r.ParseResolvConf)
	if err != nil {
		return fmt.Errorf("write resolvers %q: %w", r.Name, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("write resolvers %q: %w", r.Name, err)
	}
	for i, ns := range r.Nameservers {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO nameservers (resolvers_id, position, name, address, tcp) VALUES (?, ?, ?, ?, ?)",
			id, i, ns.Name, ns.Address, ns.TCP)
		if err != nil {
			return fmt.Errorf("write nameserver %q of resolvers %q: %w", ns.Name, r.Name, err)
		}
	}
	for status, d := range r.Hold {
		_, err := tx.ExecContext(ctx,
			"INSERT INTO resolver_holds (resolvers_id, status, duration_ns) VALUES (?, ?, ?)",
			id, status, int64(d))
		if err != nil {
			return fmt.Errorf("write hold %s of resolvers %q: %w", status, r.Name, err)
		}
	}
	return nil
}

// querier is what loading needs from a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func loadState(ctx context.Context, q querier) (balancer.State, bool, error) {
	var st balancer.State
	var timeout int64
	g := &st.Config.Global
	err := q.QueryRowContext(ctx, "SELECT stats_timeout_ns, stats_maxconn, maxconn, bufsize, maxrewrite FROM global_settings WHERE id = 1").
		Scan(&timeout, &g.StatsMaxConn, &g.MaxConn, &g.BufSize, &g.MaxRewrite)
	if errors.Is(err, sql.ErrNoRows) {
		return balancer.State{}, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read global settings: %w", err)
	}
	st.Config.Global.StatsTimeout = time.Duration(timeout)

	err = eachRow(ctx, q, "SELECT address, mode, level, severity_output FROM stats_sockets ORDER BY position",
		func(r *sql.Rows) error {
			var so balancer.StatsSocket
			var mode, level int64
			if err := r.Scan(&so.Address, &mode, &level, &so.SeverityOutput); err != nil {
				return err
			}
			so.Mode, so.Level = uint32(mode), balancer.Level(level)
			st.Config.Global.StatsSockets = append(st.Config.Global.StatsSockets, so)
			return nil
		})
	if err != nil {
		return st, false, fmt.Errorf("read stats sockets: %w", err)
	}

	err = eachRow(ctx, q, `SELECT name, proxy_id, binds, default_backend, forward_for, timeout_client_ns,
		maxconn, timeout_http_request_ns, timeout_http_keep_alive_ns, timeout_client_fin_ns
		FROM frontends ORDER BY position`, func(r *sql.Rows) error {
		var f balancer.Frontend
		var binds string
		if err := r.Scan(&f.Name, &f.ID, &binds, &f.DefaultBackend, &f.ForwardFor, (*durationScanner)(&f.TimeoutClient),
			&f.MaxConn, (*durationScanner)(&f.TimeoutHTTPRequest), (*durationScanner)(&f.TimeoutHTTPKeepAlive),
			(*durationScanner)(&f.TimeoutClientFin)); err != nil {
			return err
		}
		var err error
		if f.Binds, err = decodeList(binds); err != nil {
			return fmt.Errorf("frontend %q binds: %w", f.Name, err)
		}
		st.Config.Frontends = append(st.Config.Frontends, f)
		return nil
	})
	if err != nil {
		return st, false, fmt.Errorf("read frontends: %w", err)
	}

	if err := loadBackends(ctx, q, &st); err != nil {
		return st, false, err
	}
	if err := loadResolvers(ctx, q, &st); err != nil {
		return st, false, err
	}
	return st, true, nil
}

func loadBackends(ctx context.Context, q querier, st *balancer.State) error {
	index := make(map[int64]int) // backend id → index in st.Config.Backends
	err := eachRow(ctx, q, "SELECT id, name, "+backendColumns+" FROM backends ORDER BY position",
		func(r *sql.Rows) error {
			var id int64
			b, err := scanBackend(r, &id)
			if err != nil {
				return err
			}
			index[id] = len(st.Config.Backends)
			st.Config.Backends = append(st.Config.Backends, b)
			return nil
		})
	if err != nil {
		return fmt.Errorf("read backends: %w", err)
	}

	err = eachRow(ctx, q, "SELECT backend_id, "+serverColumns+" FROM servers ORDER BY backend_id, position",
		func(r *sql.Rows) error {
			var bid int64
			var sv balancer.Server
			var initAddr string
			if err := r.Scan(append([]any{&bid}, serverDest(&sv, &initAddr)...)...); err != nil {
				return err
			}
			if err := finishServer(&sv, initAddr); err != nil {
				return err
			}
			i, ok := index[bid]
			if !ok {
				return fmt.Errorf("server %q belongs to no backend", sv.Name)
			}
			st.Config.Backends[i].Servers = append(st.Config.Backends[i].Servers, sv)
			return nil
		})
	if err != nil {
		return fmt.Errorf("read servers: %w", err)
	}

	err = eachRow(ctx, q, `SELECT backend_id, name, admin, weight, check_enabled, address, port, port_set
		FROM server_runtime`, func(r *sql.Rows) error {
		var bid int64
		var name, admin string
		var rt balancer.ServerRuntime
		if err := r.Scan(&bid, &name, &admin, &rt.Weight, &rt.CheckEnabled, &rt.Address, &rt.Port, &rt.PortSet); err != nil {
			return err
		}
		var err error
		if rt.Admin, err = parseAdmin(admin); err != nil {
			return fmt.Errorf("server %q: %w", name, err)
		}
		i, ok := index[bid]
		if !ok {
			return fmt.Errorf("runtime settings of %q belong to no backend", name)
		}
		if st.Servers == nil {
			st.Servers = make(map[string]balancer.ServerRuntime)
		}
		st.Servers[st.Config.Backends[i].Name+"/"+name] = rt
		return nil
	})
	if err != nil {
		return fmt.Errorf("read server runtime settings: %w", err)
	}

	err = eachRow(ctx, q, "SELECT backend_id, prefix, low, high, fqdn, "+serverColumns+
		" FROM server_templates ORDER BY backend_id, position", func(r *sql.Rows) error {
		var bid int64
		var t balancer.ServerTemplate
		var initAddr string
		dest := append([]any{&bid, &t.Prefix, &t.Low, &t.High, &t.FQDN}, serverDest(&t.Params, &initAddr)...)
		if err := r.Scan(dest...); err != nil {
			return err
		}
		if err := finishServer(&t.Params, initAddr); err != nil {
			return err
		}
		i, ok := index[bid]
		if !ok {
			return fmt.Errorf("server-template %q belongs to no backend", t.Prefix)
		}
		st.Config.Backends[i].Templates = append(st.Config.Backends[i].Templates, t)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read server templates: %w", err)
	}
	return nil
}

// serverDest returns Scan destinations for serverColumns. Durations are
// scanned as int64 through a durationScanner.
func serverDest(sv *balancer.Server, initAddr *string) []any {
	return []any{
		&sv.Name, &sv.Address, &sv.Port, &sv.PortSet, &sv.Cookie, &sv.Check,
		(*durationScanner)(&sv.Inter), (*durationScanner)(&sv.FastInter), (*durationScanner)(&sv.DownInter),
		&sv.Rise, &sv.Fall, &sv.CheckPort, &sv.Weight, &sv.Backup, &sv.Disabled, &sv.MaxConn,
		&sv.Resolvers, &sv.ResolvePrefer, &sv.AllowDupIP, initAddr,
	}
}

func finishServer(sv *balancer.Server, initAddr string) error {
	var err error
	if sv.InitAddr, err = decodeList(initAddr); err != nil {
		return fmt.Errorf("server %q init-addr: %w", sv.Name, err)
	}
	return nil
}

func scanBackend(r *sql.Rows, id *int64) (balancer.Backend, error) {
	var b balancer.Backend
	var c balancer.CookieConfig
	var h balancer.HTTPCheck
	var balance, mode, domains, attrs string
	var cookieOn, checkOn bool
	err := r.Scan(id, &b.Name,
		&b.ID, &balance, &cookieOn, &c.Name, &mode, &c.Indirect,
		&c.NoCache, &c.PostOnly, &c.Preserve, &c.HTTPOnly, &c.Secure, &c.Dynamic,
		&domains, (*durationScanner)(&c.MaxIdle), (*durationScanner)(&c.MaxLife), &attrs, &b.DynamicCookieKey,
		&b.Persist, &b.Redispatch, &b.RedispatchInterval, &b.Retries, &b.ForwardFor,
		&checkOn, &h.Method, &h.URI, &h.Version, &h.ExpectStatus,
		(*durationScanner)(&b.TimeoutConnect), (*durationScanner)(&b.TimeoutServer),
		(*durationScanner)(&b.TimeoutCheck), (*durationScanner)(&b.TimeoutQueue),
		(*durationScanner)(&b.TimeoutTunnel), (*durationScanner)(&b.TimeoutServerFin))
	if err != nil {
		return b, err
	}
	b.Balance = balancer.Algorithm(balance)
	if cookieOn {
		if c.Mode, err = parseCookieMode(mode); err != nil {
			return b, fmt.Errorf("backend %q: %w", b.Name, err)
		}
		if c.Domains, err = decodeList(domains); err != nil {
			return b, fmt.Errorf("backend %q cookie domains: %w", b.Name, err)
		}
		if c.Attrs, err = decodeList(attrs); err != nil {
			return b, fmt.Errorf("backend %q cookie attrs: %w", b.Name, err)
		}
		b.Cookie = &c
	}
	if checkOn {
		b.HTTPCheck = &h
	}
	return b, nil
}

func loadResolvers(ctx context.Context, q querier, st *balancer.State) error {
	index := make(map[int64]int)
	err := eachRow(ctx, q, `SELECT id, name, accepted_payload_size, resolve_retries, timeout_resolve_ns,
		timeout_retry_ns, parse_resolv_conf FROM resolvers ORDER BY position`, func(r *sql.Rows) error {
		var id int64
		var rs balancer.Resolvers
		if err := r.Scan(&id, &rs.Name, &rs.AcceptedPayloadSize, &rs.ResolveRetries,
			(*durationScanner)(&rs.TimeoutResolve), (*durationScanner)(&rs.TimeoutRetry), &rs.ParseResolvConf); err != nil {
			return err
		}
		index[id] = len(st.Config.Resolvers)
		st.Config.Resolvers = append(st.Config.Resolvers, rs)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read resolvers: %w", err)
	}
	err = eachRow(ctx, q, "SELECT resolvers_id, name, address, tcp FROM nameservers ORDER BY resolvers_id, position",
		func(r *sql.Rows) error {
			var id int64
			var ns balancer.Nameserver
			if err := r.Scan(&id, &ns.Name, &ns.Address, &ns.TCP); err != nil {
				return err
			}
			i, ok := index[id]
			if !ok {
				return fmt.Errorf("nameserver %q belongs to no resolvers section", ns.Name)
			}
			st.Config.Resolvers[i].Nameservers = append(st.Config.Resolvers[i].Nameservers, ns)
			return nil
		})
	if err != nil {
		return fmt.Errorf("read nameservers: %w", err)
	}
	err = eachRow(ctx, q, "SELECT resolvers_id, status, duration_ns FROM resolver_holds", func(r *sql.Rows) error {
		var id int64
		var status string
		var d time.Duration
		if err := r.Scan(&id, &status, (*durationScanner)(&d)); err != nil {
			return err
		}
		i, ok := index[id]
		if !ok {
			return fmt.Errorf("hold %s belongs to no resolvers section", status)
		}
		rs := &st.Config.Resolvers[i]
		if rs.Hold == nil {
			rs.Hold = make(map[string]time.Duration)
		}
		rs.Hold[status] = d
		return nil
	})
	if err != nil {
		return fmt.Errorf("read resolver holds: %w", err)
	}
	return nil
}

func eachRow(ctx context.Context, q querier, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// durationScanner scans an integer number of nanoseconds into a
// time.Duration.
type durationScanner time.Duration

// Scan implements sql.Scanner.
func (d *durationScanner) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("duration: want an integer, got %T", v)
	}
	*d = durationScanner(n)
	return nil
}

// encodeList encodes a string list as a JSON array; nil and empty lists
// both become "[]".
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, err := json.Marshal(l)
	if err != nil {
		// Marshalling a []string cannot fail.
		return "[]"
	}
	return string(b)
}

// decodeList decodes a JSON array of strings; an empty array gives nil.
func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

func cookieModeName(m balancer.CookieMode) (string, error) {
	switch m {
	case balancer.CookiePassive:
		return "passive", nil
	case balancer.CookieInsert, balancer.CookieRewrite, balancer.CookiePrefix:
		return m.String(), nil
	}
	return "", fmt.Errorf("unknown cookie mode %d", int(m))
}

func parseCookieMode(s string) (balancer.CookieMode, error) {
	for _, m := range []balancer.CookieMode{balancer.CookiePassive, balancer.CookieInsert, balancer.CookieRewrite, balancer.CookiePrefix} {
		if name, _ := cookieModeName(m); name == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown cookie mode %q", s)
}

func adminName(m balancer.AdminMode) (string, error) {
	switch m {
	case balancer.Ready, balancer.Drain, balancer.Maint:
		return m.String(), nil
	}
	return "", fmt.Errorf("unknown admin mode %d", int(m))
}

func parseAdmin(s string) (balancer.AdminMode, error) {
	for _, m := range []balancer.AdminMode{balancer.Ready, balancer.Drain, balancer.Maint} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown admin mode %q", s)
}
