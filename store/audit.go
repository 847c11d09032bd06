package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"tether/balancer"
)

// ResultOK is the Result of an audit entry whose change was applied.
const ResultOK = "ok"

// AuditEntry is one row of the audit log: a change that was applied, or a
// command that was refused. It never holds a secret in clear text: a
// dynamic-cookie key appears as "key fp 1a2b3c4d".
type AuditEntry struct {
	ID   int64
	Time time.Time
	// Actor is the console user, or "" when unknown.
	Actor string
	// Channel is "console", "socket", "ctl", "import", "dns" or "health".
	Channel string
	// Source details the channel (a socket path, a TCP address, a page).
	Source string
	// Command is the command as issued, with secrets masked.
	Command string
	// Result is ResultOK for an applied change, else the error text.
	Result string
	// Backend and Server name the object changed ("" when not one).
	Backend string
	Server  string
	// Before and After list the touched settings before and after the
	// change, e.g. "state ready" and "state drain".
	Before string
	After  string
	// Detail says what changed in one line, e.g. "state ready → drain".
	Detail string
	// File, on an import, is the configuration file read; ReplaceState
	// keeps it with the state document, not in the row.
	File balancer.ConfigFile
}

// AuditFilter selects audit entries. Empty fields match everything.
type AuditFilter struct {
	Backend string
	Server  string
	Actor   string
	Channel string
	// Limit caps the number of entries returned: 100 when 0 or less, at
	// most MaxAuditLimit.
	Limit int
	// BeforeID, when positive, returns only entries older than that ID
	// (for paging).
	BeforeID int64
}

// MaxAuditLimit is the most entries one ListAudit call returns.
const MaxAuditLimit = 10000

// AppendAudit appends e to the audit log; use it for commands that were
// refused or failed, with the error text in Result (Committer records
// applied changes itself). e.Time defaults to now and e.Result to ResultOK.
// A dynamic-cookie key in a "set dynamic-cookie-key" command is masked.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if e.Result == "" {
		e.Result = ResultOK
	}
	e = scrubEntry(e, nil)
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := s.insertJournal(ctx, tx, e, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// ListAudit returns the entries matching f, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	for _, c := range []struct {
		col, val string
	}{{"backend", f.Backend}, {"server", f.Server}, {"actor", f.Actor}, {"channel", f.Channel}} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if f.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxAuditLimit)
	q := `SELECT id, time_ns, actor, channel, source, command, result, backend, server,
		state_before, state_after, detail FROM journal`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)

	var out []AuditEntry
	err := eachRow(ctx, s.rdb, q, func(r *sql.Rows) error {
		var e AuditEntry
		var ns int64
		if err := r.Scan(&e.ID, &ns, &e.Actor, &e.Channel, &e.Source, &e.Command, &e.Result,
			&e.Backend, &e.Server, &e.Before, &e.After, &e.Detail); err != nil {
			return err
		}
		e.Time = time.Unix(0, ns)
		out = append(out, e)
		return nil
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return out, nil
}

// KeyFingerprint identifies a dynamic-cookie key without revealing it, the
// same way the balancer does.
func KeyFingerprint(key string) string { return balancer.KeyFingerprint(key) }

// maskedKey is how a key appears in audit text.
func maskedKey(key string) string { return "[key fp " + KeyFingerprint(key) + "]" }

// stateKeys returns the non-empty dynamic-cookie keys of st.
func stateKeys(st balancer.State) []string {
	var keys []string
	for _, b := range st.Config.Backends {
		if b.DynamicCookieKey != "" {
			keys = append(keys, b.DynamicCookieKey.Reveal())
		}
	}
	return keys
}

// scrubEntry masks secrets in e's text: the argument of a "set
// dynamic-cookie-key" command, and any of keys.
func scrubEntry(e AuditEntry, keys []string) AuditEntry {
	e.Command = maskKeyCommand(e.Command)
	for _, p := range []*string{&e.Command, &e.Source, &e.Result, &e.Before, &e.After, &e.Detail} {
		*p = scrubKeys(*p, keys)
	}
	return e
}

// maskKeyCommand masks the key of a Runtime API "set dynamic-cookie-key
// backend <backend> <key>" command.
func maskKeyCommand(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) < 5 || f[0] != "set" || f[1] != "dynamic-cookie-key" || f[2] != "backend" {
		return cmd
	}
	// The key is the rest of the line, as the Runtime API reads it.
	key := strings.Join(f[4:], " ")
	if strings.Trim(key, "*") == "" || strings.Contains(key, "[key fp ") {
		return cmd // already masked
	}
	return strings.Join(f[:4], " ") + " " + maskedKey(key)
}

// scrubKeys replaces each key in text by its masked form. Keys of six bytes
// or more are replaced wherever they occur; shorter ones only as whole
// space-separated words, so that a short key does not garble other words.
func scrubKeys(text string, keys []string) string {
	if text == "" {
		return text
	}
	for _, k := range keys {
		if k == "" || !strings.Contains(text, k) {
			continue
		}
		if len(k) >= 6 {
			text = strings.ReplaceAll(text, k, maskedKey(k))
			continue
		}
		words := strings.Split(text, " ")
		for i, w := range words {
			if w == k {
				words[i] = maskedKey(k)
			}
		}
		text = strings.Join(words, " ")
	}
	return text
}

// PruneAudit deletes audit entries older than before and returns how many
// it deleted. It keeps the newest import entry of each source, which
// records what configuration file the stored state came from. When rows to
// delete hold changes the state is loaded from, it first stores the state
// as a new document; older documents go too.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var replayed int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM journal WHERE time_ns < ? AND changes != ''
			AND id > (SELECT COALESCE(MAX(journal_id), 0) FROM state_documents)`, before.UnixNano()).Scan(&replayed)
		if err != nil {
			return err
		}
		if replayed > 0 {
			if err := s.checkpoint(ctx, tx); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM journal WHERE time_ns < ?
			AND id NOT IN (SELECT MAX(id) FROM journal WHERE channel = 'import' GROUP BY source)`, before.UnixNano())
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM state_documents WHERE time_ns < ?
			AND journal_id < (SELECT MAX(journal_id) FROM state_documents)`, before.UnixNano())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune audit log: %w", err)
	}
	return n, nil
}
