// Package storetest opens real, migrated Tether databases for tests.
package storetest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"tether/store"
)

// Open opens a new store in a file under t.TempDir() and closes it when the
// test ends, after checking the database's integrity.
func Open(t testing.TB) *store.Store {
	t.Helper()
	return OpenPath(t, filepath.Join(t.TempDir(), "tether.db"))
}

// OpenPath opens (creating if needed) the store at path, a SQLite file or
// a PostgreSQL URL. When the test ends
// it closes the store, if the test has not, then reopens the file and checks
// its integrity. Open the same path again after Close to test a restart.
func OpenPath(t testing.TB, path string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		Check(t, path)
	})
	return s
}

// Check opens the database at path and reports any damage
// Store.IntegrityCheck finds.
func Check(t testing.TB, path string) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Errorf("reopen %s for an integrity check: %v", path, err)
		return
	}
	defer s.Close()
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Errorf("integrity check: %v", err)
	}
}
