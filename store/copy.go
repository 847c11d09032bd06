package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// copiedTables are the tables CopyTo copies, parents first, with their
// columns. The node registry is not copied: it describes running nodes.
var copiedTables = []struct {
	name, columns string
	// identity names the column a database numbers itself, "" for none.
	identity string
}{
	{"journal", "id, time_ns, actor, channel, source, command, result, backend, server, state_before, state_after, detail, changes", "id"},
	{"secrets", "ref, value", ""},
	{"state_documents", "journal_id, time_ns, document, source_file, source_digest", ""},
	{"users", "id, name, role, password_hash, created_ns", "id"},
	{"sessions", "token_hash, user_id, created_ns, expires_ns", ""},
	{"history_series", "id, backend, server", "id"},
	{"server_history", "minute, series_id, requests, new_sessions, pinned, redispatched, errors, bytes_in, bytes_out", ""},
	{"server_events", "id, time_ns, minute, backend, server, kind, message", "id"},
}

// CopyTo copies everything s holds (the journal with its state documents
// and secrets, users and sessions, traffic history) into dst, in one
// transaction on dst, keeping row ids, so that dst loads the same state
// and shows the same audit log. dst must hold no journal row and no user.
// It returns how many rows it copied, by table.
func (s *Store) CopyTo(ctx context.Context, dst *Store) (map[string]int64, error) {
	src, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("copy store: begin reading: %w", err)
	}
	defer src.Rollback()
	counts := make(map[string]int64)
	err = dst.write(ctx, func(tx *sql.Tx) error {
		var rows int64
		if err := tx.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM journal) + (SELECT COUNT(*) FROM users)").Scan(&rows); err != nil {
			return err
		}
		if rows > 0 {
			return fmt.Errorf("%s is not empty: it has journal rows or users", RedactDSN(dst.path))
		}
		for _, t := range copiedTables {
			n, err := copyTable(ctx, src, tx, t.name, t.columns)
			if err != nil {
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
			counts[t.name] = n
			if t.identity != "" && dst.engine == postgresEngine {
				// Explicit ids leave the identity's sequence behind.
				_, err := tx.ExecContext(ctx, fmt.Sprintf("SELECT setval(pg_get_serial_sequence('%s', '%s'), COALESCE(MAX(%s), 0) + 1, false) FROM %s",
					t.name, t.identity, t.identity, t.name))
				if err != nil {
					return fmt.Errorf("copy %s: number the next row: %w", t.name, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy store %s to %s: %w", RedactDSN(s.path), RedactDSN(dst.path), err)
	}
	var since int64
	err = dst.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM journal WHERE changes != ''
		AND id > (SELECT COALESCE(MAX(journal_id), 0) FROM state_documents)`).Scan(&since)
	if err != nil {
		return nil, fmt.Errorf("copy store: count journal rows: %w", err)
	}
	dst.sinceDocument.Store(since)
	return counts, nil
}

// copyTable copies every row of table from src to dst.
func copyTable(ctx context.Context, src, dst *sql.Tx, table, columns string) (int64, error) {
	n := len(strings.Split(columns, ","))
	ins, err := dst.PrepareContext(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, columns,
		strings.TrimSuffix(strings.Repeat("?, ", n), ", ")))
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	rows, err := src.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s", columns, table))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var copied int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return copied, err
		}
		if _, err := ins.ExecContext(ctx, vals...); err != nil {
			return copied, err
		}
		copied++
	}
	return copied, rows.Err()
}
