// Package migrations holds Tether's schema as numbered, forward-only goose
// migrations (NNNN_verb_noun.sql), embedded so the binary carries them.
// They are written for SQLite; PostgreSQL runs the same files through
// ForPostgres, so a migration keeps to SQL both engines read once
// rewritten (TestPostgresKeepsEveryMigration lists what must not appear).
//
// A migration, once released, is never edited: a schema change is a new file
// with the next number.
package migrations

import "embed"

// FS holds every migration file at its root, for goose.
//
//go:embed *.sql
var FS embed.FS
