package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/pressly/goose/v3"

	"tether/migrations"
)

// MigrateTo migrates db to version (0 for the newest).
func MigrateTo(ctx context.Context, db *sql.DB, version int64) error {
	return migrate(ctx, db, goose.DialectSQLite3, migrations.FS, version)
}

// DSN returns the data source name Open uses for path.
func DSN(path string) string { return dsn(path, "immediate") }

// SetNow replaces the store's clock.
func SetNow(s *Store, now func() time.Time) { s.now = now }

// RawDB returns the store's read pool, for tests that inspect tables.
func RawDB(s *Store) *sql.DB { return s.rdb }

// ServerEqual is serverEqual.
var ServerEqual = serverEqual

// SetCheckpointEvery changes how many journal rows with changes may follow
// the newest state document.
func SetCheckpointEvery(s *Store, n int64) { s.checkpointEvery = n }
