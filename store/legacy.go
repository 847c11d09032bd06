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

// This file reads the configuration tables of schema versions 1 to 6, in
// which every configuration field had its own column, to fold them into the
// first state document (foldConfigTables) before migration 8 drops them.

// foldConfigTables stores what the configuration tables hold as a state
// document covering every journal row so far, unless a document exists
// already or the tables are empty. It runs in tx at schema version 7.
func foldConfigTables(ctx context.Context, tx *sql.Tx) error {
	var docs int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM state_documents").Scan(&docs); err != nil {
		return fmt.Errorf("fold configuration tables: %w", err)
	}
	if docs > 0 {
		return nil
	}
	st, found, err := loadState(ctx, tx)
	if err != nil {
		return fmt.Errorf("fold configuration tables: %w", err)
	}
	if !found {
		return nil
	}
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM journal").Scan(&last); err != nil {
		return fmt.Errorf("fold configuration tables: %w", err)
	}
	if err := insertDocument(ctx, tx, last, time.Now(), st); err != nil {
		return fmt.Errorf("fold configuration tables: %w", err)
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

// serverColumns are the columns servers and server_templates share, in the
// order serverValues returns them.
const serverColumns = `name, address, port, port_set, cookie, health_check, inter_ns, fastinter_ns,
	downinter_ns, rise, fall, check_port, weight, backup, disabled, maxconn, resolvers,
	resolve_prefer, allow_dup_ip, init_addr`

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
		addrs, err := decodeList(binds)
		if err != nil {
			return fmt.Errorf("frontend %q binds: %w", f.Name, err)
		}
		f.Binds = balancer.BindAddrs(addrs...)
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

// parseCookieMode reads the cookie_mode column.
func parseCookieMode(s string) (balancer.CookieMode, error) {
	switch s {
	case "passive":
		return balancer.CookiePassive, nil
	case "insert":
		return balancer.CookieInsert, nil
	case "rewrite":
		return balancer.CookieRewrite, nil
	case "prefix":
		return balancer.CookiePrefix, nil
	}
	return 0, fmt.Errorf("unknown cookie mode %q", s)
}

// parseAdmin reads the admin column of server_runtime.
func parseAdmin(s string) (balancer.AdminMode, error) {
	for _, m := range []balancer.AdminMode{balancer.Ready, balancer.Drain, balancer.Maint} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown admin mode %q", s)
}

// legacyLastImport reads the last import from the journal as releases
// before schema version 10 recorded it, in the command text
// "import PATH sha256:DIGEST", for databases with no import since.
func legacyLastImport(ctx context.Context, q querier) (balancer.ConfigFile, error) {
	var cmd string
	err := q.QueryRowContext(ctx, `SELECT command FROM journal WHERE channel = 'import' AND command LIKE 'import % sha256:%'
		ORDER BY id DESC LIMIT 1`).Scan(&cmd)
	if errors.Is(err, sql.ErrNoRows) {
		return balancer.ConfigFile{}, nil
	}
	if err != nil {
		return balancer.ConfigFile{}, fmt.Errorf("read last import: %w", err)
	}
	rest := strings.TrimPrefix(cmd, "import ")
	i := strings.LastIndex(rest, " sha256:")
	return balancer.ConfigFile{Path: rest[:i], Digest: rest[i+len(" sha256:"):]}, nil
}
