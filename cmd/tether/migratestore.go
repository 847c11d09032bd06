package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"tether/store"
)

// runMigrateStore moves a single node's SQLite database into an empty
// PostgreSQL database: the state with its journal, the audit log, users
// and sessions, and traffic history.
func runMigrateStore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate-store", stderr)
	from := fs.String("from", envOr(getenv, "TETHER_DB", "tether.db"), "SQLite database file to copy (env TETHER_DB)")
	to := fs.String("to", "", "postgres:// URL of the empty database to copy into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("migrate-store: unexpected argument %q", fs.Arg(0))
	case !store.IsPostgresDSN(*to):
		return errors.New("migrate-store: -to must be a postgres:// or postgresql:// URL")
	case store.IsPostgresDSN(*from):
		return errors.New("migrate-store: -from must be a SQLite database file")
	}
	if _, err := os.Stat(*from); err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	// No Tether may run on the file while it is copied.
	lock, err := store.Lock(*from)
	if err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	defer lock.Release()
	src, err := store.Open(ctx, *from, nil)
	if err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	defer src.Close()
	dst, err := store.Open(ctx, *to, nil)
	if err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	defer dst.Close()
	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		return fmt.Errorf("migrate-store: %w", err)
	}
	var parts []string
	for _, table := range slices.Sorted(func(yield func(string) bool) {
		for k := range counts {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s %d", table, counts[table]))
	}
	fmt.Fprintf(stdout, "Copied %s into %s: %s rows.\n", *from, store.RedactDSN(*to), strings.Join(parts, ", "))
	return nil
}
