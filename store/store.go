// Package store keeps Tether's durable data in one SQLite file
// (modernc.org/sqlite, no cgo) or in a PostgreSQL database shared by
// several nodes (github.com/jackc/pgx/v5): the balancer's configuration with
// every runtime change folded in, server runtime settings, console users and
// sessions, and the audit log.
//
// The schema comes from package migrations and is brought up to date by Open.
// A Store is safe for concurrent use. Writes go through a single connection,
// so writers of one process queue in Go rather than fail with "database is
// locked"; reads use a separate pool and see the last committed data (WAL).
// On PostgreSQL every write transaction first takes one advisory lock, so
// writers of all processes are serialised as SQLite's BEGIN IMMEDIATE
// serialises them.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"tether/migrations"
)

// Errors returned by the store, matched with errors.Is.
var (
	// ErrNotFound reports that the user or session asked for does not exist
	// (an expired session does not exist).
	ErrNotFound = errors.New("not found")
	// ErrBadCredentials reports a wrong user name or password; it does not
	// say which.
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrExists reports that a user with the same name already exists.
	ErrExists = errors.New("already exists")
	// ErrLastAdmin reports a change that would leave no admin user.
	ErrLastAdmin = errors.New("refusing to remove the last admin")
	// ErrInvalidRole reports a role other than viewer, operator or admin.
	ErrInvalidRole = errors.New("invalid role: want viewer, operator or admin")
	// ErrInvalidName reports an empty or malformed user name.
	ErrInvalidName = errors.New("invalid user name: want 1 to 64 ASCII letters, digits or .-_@+")
	// ErrWeakPassword reports a password shorter than MinPasswordLen bytes,
	// longer than MaxPasswordLen, or too easy to guess.
	ErrWeakPassword = errors.New("password too weak")
)

// commitTimeout bounds one commit made through Committer, which has no
// context of its own.
const commitTimeout = 5 * time.Second

// Store is an open Tether database. All its methods are safe for concurrent
// use.
type Store struct {
	// path is the SQLite file, or the PostgreSQL URL.
	path   string
	engine engine
	log    *slog.Logger
	// wdb has a single connection and begins IMMEDIATE transactions: every
	// write of this process is serialised here.
	wdb *sql.DB
	// rdb is a pool of read-only connections.
	rdb *sql.DB
	// now returns the current time; tests replace it.
	now func() time.Time

	dummyOnce sync.Once
	dummyHash string

	closeOnce sync.Once
	closeErr  error
	// readOnly is set by OpenReadOnly; wdb and rdb are then one handle.
	readOnly bool
	// sinceDocument counts the journal rows with changes written after the
	// newest state document; at checkpointEvery, a commit writes one.
	sinceDocument   atomic.Int64
	checkpointEvery int64
}

// Open opens the database dsn names and migrates it to the newest schema:
// PostgreSQL when dsn is a postgres:// or postgresql:// URL, else the
// SQLite file at path dsn, created with mode 0600 if it does not exist.
// log receives the store's messages; nil discards them.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var s *Store
	var err error
	if IsPostgresDSN(dsn) {
		s, err = openPostgresStore(ctx, dsn, log)
	} else {
		s, err = openSQLite(ctx, dsn, log)
	}
	if err != nil {
		return nil, err
	}
	var since int64
	err = s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM journal WHERE changes != ''
		AND id > (SELECT COALESCE(MAX(journal_id), 0) FROM state_documents)`).Scan(&since)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: count journal rows: %w", RedactDSN(dsn), err)
	}
	s.sinceDocument.Store(since)
	return s, nil
}

// openSQLite opens and migrates the SQLite file at path.
func openSQLite(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open store: %q is not a database file path", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open store: create %s: %w", path, err)
	}

	s := &Store{path: path, log: log.With("component", "store"), now: time.Now, checkpointEvery: defaultCheckpointEvery}
	s.wdb, err = sql.Open("sqlite", dsn(path, "immediate"))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxIdleTime(0)
	s.wdb.SetConnMaxLifetime(0)

	if err := migrate(ctx, s.wdb, goose.DialectSQLite3, migrations.FS, 0); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}

	s.rdb, err = sql.Open("sqlite", dsn(path, "deferred")+"&_pragma=query_only(1)")
	if err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	if err := s.rdb.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// OpenReadOnly opens an existing database for reading only: it creates no
// file, runs no migration and writes nothing, so a dry run can read what a
// running process keeps. It fails with an error matching os.ErrNotExist
// when path does not exist, and when the schema is not the newest one (the
// database was not yet migrated by this version of Tether). Methods that
// write fail.
func OpenReadOnly(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if IsPostgresDSN(path) {
		return nil, fmt.Errorf("open store %s read-only: only SQLite files open read-only", RedactDSN(path))
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{path: path, log: log.With("component", "store"), now: time.Now}
	dsn, err := readOnlyDSN(path)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s.wdb, s.rdb = db, db
	s.readOnly = true
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	have, err := s.SchemaVersion(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if want := newestMigration(); have != want {
		db.Close()
		return nil, fmt.Errorf("open store %s: schema version %d, this Tether needs %d (a read-only open does not migrate)", path, have, want)
	}
	return s, nil
}

// newestMigration returns the version of the newest embedded migration:
// the number its file name starts with.
func newestMigration() int64 {
	entries, _ := fs.ReadDir(migrations.FS, ".")
	var newest int64
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseInt(num, 10, 64); err == nil && v > newest {
			newest = v
		}
	}
	return newest
}

// readOnlyDSN opens path without creating or changing any file. While
// another process has the database open, its write-ahead log and shared
// memory files exist and a read-only connection uses them; otherwise the
// file is read as immutable, which needs neither. A leftover log with
// content but no shared memory (after a crash) cannot be read without
// creating a file, and is refused.
func readOnlyDSN(path string) (string, error) {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	base := "file:" + esc + "?_pragma=busy_timeout(5000)&_pragma=query_only(1)"
	_, shmErr := os.Stat(path + "-shm")
	wal, walErr := os.Stat(path + "-wal")
	switch {
	case shmErr == nil && walErr == nil:
		return base + "&mode=ro", nil
	case walErr != nil || wal.Size() == 0:
		return base + "&mode=ro&immutable=1", nil
	}
	return "", fmt.Errorf("%s has a write-ahead log that was not checkpointed; start Tether on it once, or open it read-write", path)
}

// dsn returns the modernc.org/sqlite data source name for path. Every
// connection gets WAL, foreign keys, a 5 s busy timeout and full
// synchronous commits (a change acknowledged after its commit survives a
// crash of the process or of the machine).
func dsn(path, txlock string) string {
	// The path is a URI filename: escape what would end it early.
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc +
		"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)" +
		"&_pragma=synchronous(FULL)&_txlock=" + txlock
}

// migrate brings db to version, or to the newest version when version is 0.
// It uses a goose Provider, which keeps its configuration per call, so
// stores opened concurrently do not share goose's package-level settings.
// On its way through version foldVersion it folds the configuration tables
// into a state document (foldConfigTables), before the next migration
// drops them.
func migrate(ctx context.Context, db *sql.DB, dialect goose.Dialect, fsys fs.FS, version int64) error {
	p, err := goose.NewProvider(dialect, db, fsys)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	have, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	if have <= foldVersion && (version == 0 || version > foldVersion) {
		if _, err := p.UpTo(ctx, foldVersion); err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
		defer tx.Rollback()
		if err := foldConfigTables(ctx, tx); err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate schema: fold configuration tables: %w", err)
		}
	}
	if version == 0 {
		_, err = p.Up(ctx)
	} else {
		_, err = p.UpTo(ctx, version)
	}
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	return nil
}

// foldVersion is the schema version at which the configuration tables are
// folded into a state document: the journal exists, the tables still do.
const foldVersion = 7

// Close closes the database. Calls made after Close fail; calling Close
// again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	var errs []error
	if s.readOnly {
		if err := s.rdb.Close(); err != nil {
			return fmt.Errorf("close store %s: %w", s.path, err)
		}
		return nil
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wdb != nil {
		// Fold the WAL back into the database file so that a closed
		// database is one self-contained file.
		if s.engine == sqliteEngine {
			if _, err := s.wdb.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				s.log.Warn("checkpoint on close failed", "err", err)
			}
		}
		errs = append(errs, s.wdb.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store %s: %w", RedactDSN(s.path), err)
	}
	return nil
}

// Path returns the database file's path, or the PostgreSQL URL it was
// opened with.
func (s *Store) Path() string { return s.path }

// SchemaVersion returns the version of the newest migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.rdb.QueryRowContext(ctx,
		"SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// IntegrityCheck runs SQLite's PRAGMA integrity_check and foreign_key_check
// and returns an error describing any problem found. PostgreSQL enforces
// foreign keys itself and checks its pages as it reads them: there it
// checks that the schema is the newest this Tether knows.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	if s.engine == postgresEngine {
		have, err := s.SchemaVersion(ctx)
		if err != nil {
			return fmt.Errorf("check database: %w", err)
		}
		if want := newestMigration(); have != want {
			return fmt.Errorf("database %s is at schema version %d, want %d", RedactDSN(s.path), have, want)
		}
		return nil
	}
	rows, err := s.rdb.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("check database integrity: %w", err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return fmt.Errorf("check database integrity: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check database integrity: %w", err)
	}
	rows, err = s.rdb.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("check foreign keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int64
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("check foreign keys: %w", err)
		}
		problems = append(problems, fmt.Sprintf("row %d of %s refers to a missing %s row", rowid.Int64, table, parent))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check foreign keys: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("database %s is damaged: %s", s.path, strings.Join(problems, "; "))
	}
	return nil
}

// write runs fn in one IMMEDIATE transaction on the write connection and
// commits it if fn returns nil.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()
	if s.engine == postgresEngine {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", int64(writeLockKey)); err != nil {
			return fmt.Errorf("wait for the write lock: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// querier is what loading needs from a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
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
