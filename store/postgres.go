package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"tether/migrations"
)

// engine is the database engine a Store runs on.
type engine int

const (
	sqliteEngine engine = iota
	postgresEngine
)

// IsPostgresDSN reports whether dsn names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a SQLite file.
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// RedactDSN returns dsn without its password, for messages.
func RedactDSN(dsn string) string {
	if !IsPostgresDSN(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…"
	}
	return u.Redacted()
}

// writeLockKey is the transaction-level advisory lock every write
// transaction on PostgreSQL takes first: it serialises writers of every
// process sharing the database, as BEGIN IMMEDIATE does on SQLite, so
// journal rows commit in the order of their ids.
const writeLockKey = 0x7e7e_0001

// openPostgres returns a handle on the PostgreSQL database dsn names
// through pgx's database/sql driver. The store's SQL is written once, with
// ? placeholders; the handle rewrites them to PostgreSQL's $n. readOnly
// makes every transaction of the handle read-only.
func openPostgres(dsn string, readOnly bool) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", RedactDSN(dsn), err)
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	cfg.RuntimeParams["application_name"] = "tether"
	return sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg)}), nil
}

// rebindConnector hands out connections that rewrite ? placeholders.
type rebindConnector struct{ driver.Connector }

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return rebindConn{conn.(*stdlib.Conn)}, nil
}

// rebindConn is a pgx connection that rewrites ? placeholders in the
// queries it is given; its other methods are pgx's.
type rebindConn struct{ *stdlib.Conn }

func (c rebindConn) Prepare(query string) (driver.Stmt, error) { return c.Conn.Prepare(rebind(query)) }

func (c rebindConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(query))
}

func (c rebindConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(query), args)
}

func (c rebindConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(query), args)
}

// rebind rewrites SQLite placeholders to PostgreSQL's: each ? becomes the
// next $n, and ?NNN becomes $NNN. Quoted strings, quoted identifiers and
// comments are left as they are.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		ch := query[i]
		switch {
		case ch == '\'' || ch == '"':
			end := strings.IndexByte(query[i+1:], ch)
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+2])
			i += end + 1
		case ch == '-' && i+1 < len(query) && query[i+1] == '-':
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+1])
			i += end
		case ch == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(query[i+1 : j])
			} else {
				n++
				fmt.Fprint(&b, n)
			}
			i = j - 1
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// migrateLockKey is the session-level advisory lock held while one process
// migrates a PostgreSQL database, so nodes starting together migrate it
// once, one after the other.
const migrateLockKey = 0x7e7e_0002

// openPostgresStore opens and migrates the PostgreSQL database dsn names.
func openPostgresStore(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	s, err := postgresStore(dsn, log)
	if err != nil {
		return nil, err
	}
	if err := s.migratePostgres(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", RedactDSN(dsn), err)
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", RedactDSN(dsn), err)
	}
	return s, nil
}

// postgresStore returns a Store with its pools on the database dsn names:
// one connection for writes, a few for reads. database/sql connects on
// first use.
func postgresStore(dsn string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := RedactDSN(dsn)
	s := &Store{path: dsn, engine: postgresEngine, log: log.With("component", "store"), now: time.Now, checkpointEvery: defaultCheckpointEvery}
	var err error
	if s.wdb, err = openPostgres(dsn, false); err != nil {
		return nil, fmt.Errorf("open store %s: %w", name, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	if s.rdb, err = openPostgres(dsn, true); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open store %s: %w", name, err)
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	return s, nil
}

// migratePostgres migrates the database while holding migrateLockKey on a
// connection of its own.
func (s *Store) migratePostgres(ctx context.Context) error {
	fsys, err := migrations.Postgres()
	if err != nil {
		return err
	}
	lockDB, err := openPostgres(s.path, false)
	if err != nil {
		return err
	}
	defer lockDB.Close()
	conn, err := lockDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", int64(migrateLockKey)); err != nil {
		return fmt.Errorf("wait for the migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", int64(migrateLockKey))
	return migrate(ctx, s.wdb, goose.DialectPostgres, fsys, 0)
}

// OpenOffline returns a Store on the PostgreSQL database dsn names without
// connecting to it, for a node that starts from its local copy of the
// state while the database cannot be reached: every call fails until the
// database answers. The database is not migrated; call Migrate once it
// answers.
func OpenOffline(dsn string, log *slog.Logger) (*Store, error) {
	if !IsPostgresDSN(dsn) {
		return nil, fmt.Errorf("open store %s offline: only a PostgreSQL database opens offline", dsn)
	}
	return postgresStore(dsn, log)
}

// Migrate brings a PostgreSQL database opened offline up to the schema
// this Tether needs, as Open does.
func (s *Store) Migrate(ctx context.Context) error {
	if s.engine != postgresEngine {
		return fmt.Errorf("migrate %s: only a PostgreSQL store opened offline needs it", s.path)
	}
	if err := s.migratePostgres(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", RedactDSN(s.path), err)
	}
	return nil
}

// startLockKey is the session-level advisory lock a node holds from
// reading the stored state at start until it stored what it runs and made
// sure of the first admin user, so that nodes starting together on an
// empty database seed it once.
const startLockKey = 0x7e7e_0003

// LockStart waits until this process is the only one starting on the
// database and returns the function that lets the next one start. On
// PostgreSQL it holds an advisory lock on a connection of its own (ended
// with the process if it dies); a SQLite file is locked by its single
// process already, so there it returns at once.
func (s *Store) LockStart(ctx context.Context) (release func(), err error) {
	if s.engine != postgresEngine {
		return func() {}, nil
	}
	db, err := openPostgres(s.path, false)
	if err != nil {
		return nil, fmt.Errorf("take the start lock: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", int64(startLockKey))
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("take the start lock on %s: %w", RedactDSN(s.path), err)
	}
	return func() {
		conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", int64(startLockKey))
		conn.Close()
		db.Close()
	}, nil
}
