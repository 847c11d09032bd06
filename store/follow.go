package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"tether/balancer"
)

// ErrConflict reports a commit refused because another node changed the
// state after the version the committing node applied.
var ErrConflict = errors.New("the configuration was changed on another node")

// ConflictError is the error of a refused CommitAt; it matches
// ErrConflict.
type ConflictError struct {
	// Applied is the version the committing node had applied; Newest the
	// newest row that changed the state since.
	Applied, Newest int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v (journal version %d, this node is at %d); retry once it is applied", ErrConflict, e.Newest, e.Applied)
}

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// journalChannel is the PostgreSQL notification channel of new journal
// rows; the payload is the row's version.
const journalChannel = "tether_journal"

// JournalRow is one journal row as a follower receives it.
type JournalRow struct {
	// Version is the row's place in the journal: versions increase in
	// commit order (gaps are possible).
	Version int64
	// Entry is the row's audit entry; Entry.ID is Version.
	Entry AuditEntry
	// Changes are the typed changes the row applied, with their keys; nil
	// for a refused command or a whole state.
	Changes []balancer.Change
	// State is the whole state the row stored, for a row that replaced the
	// state (an import or a reload); nil otherwise.
	State *balancer.State
}

// followBatch is how many rows one read of the journal returns.
const followBatch = 500

// JournalVersion returns the version of the newest journal row, 0 for an
// empty journal.
func (s *Store) JournalVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.rdb.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM journal").Scan(&v); err != nil {
		return 0, fmt.Errorf("read journal version: %w", err)
	}
	return v, nil
}

// JournalAfter returns at most limit journal rows with versions above
// after, oldest first.
func (s *Store) JournalAfter(ctx context.Context, after int64, limit int) ([]JournalRow, error) {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read journal after version %d: %w", after, err)
	}
	defer tx.Rollback()
	find := func(ref string) (string, bool) {
		var v string
		if tx.QueryRowContext(ctx, "SELECT value FROM secrets WHERE ref = ?", ref).Scan(&v) != nil {
			return "", false
		}
		return v, true
	}
	type raw struct {
		row     JournalRow
		changes string
		doc     sql.NullString
	}
	var raws []raw
	err = eachRow(ctx, tx, `SELECT j.id, j.time_ns, j.actor, j.channel, j.source, j.command, j.result, j.backend,
		j.server, j.state_before, j.state_after, j.detail, j.changes,
		CASE WHEN j.changes = '' THEN d.document END
		FROM journal j LEFT JOIN state_documents d ON d.journal_id = j.id
		WHERE j.id > ? ORDER BY j.id LIMIT ?`, func(r *sql.Rows) error {
		var w raw
		e := &w.row.Entry
		var ns int64
		if err := r.Scan(&e.ID, &ns, &e.Actor, &e.Channel, &e.Source, &e.Command, &e.Result, &e.Backend,
			&e.Server, &e.Before, &e.After, &e.Detail, &w.changes, &w.doc); err != nil {
			return err
		}
		e.Time = time.Unix(0, ns)
		w.row.Version = e.ID
		raws = append(raws, w)
		return nil
	}, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read journal after version %d: %w", after, err)
	}
	out := make([]JournalRow, len(raws))
	for i, w := range raws {
		row := w.row
		if w.changes != "" {
			cs, err := balancer.DecodeChanges([]byte(w.changes))
			if err == nil {
				err = openKeys(cs, find)
			}
			if err != nil {
				return nil, fmt.Errorf("journal row %d: %w", row.Version, err)
			}
			row.Changes = cs
		} else if w.doc.Valid {
			st, err := balancer.DecodeState([]byte(w.doc.String))
			if err == nil {
				err = st.ResolveSecrets(find)
			}
			if err != nil {
				return nil, fmt.Errorf("state document of journal row %d: %w", row.Version, err)
			}
			st = Normalize(st)
			row.State = &st
		}
		out[i] = row
	}
	return out, nil
}

// Follow calls deliver with every journal row after version after, in
// version order, then with every row committed later, by any process,
// until ctx ends or deliver fails; it returns deliver's error or ctx's.
// deliver runs on Follow's goroutine, one row at a time.
//
// On PostgreSQL, Follow listens for the notification each commit sends
// and reads the rows after the last one it delivered, so it misses none
// when notifications are lost: it catches up the same way after its
// connection fails, reconnecting with a growing pause (FollowRetry at
// first, at most FollowMaxRetry), and every FollowPoll without a
// notification. On SQLite it reads the journal every FollowPoll.
func (s *Store) Follow(ctx context.Context, after int64, deliver func(JournalRow) error) error {
	if s.engine != postgresEngine {
		return s.followByPolling(ctx, after, deliver)
	}
	pause := FollowRetry
	for {
		connected, err := s.followListening(ctx, &after, deliver)
		var d deliverError
		switch {
		case errors.As(err, &d):
			return d.err
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if connected {
			pause = FollowRetry
		}
		s.log.Warn("journal follower lost its database connection; reconnecting", "err", err, "version", after, "pause", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, FollowMaxRetry)
	}
}

// Follow's timings.
const (
	// FollowPoll is how long a follower waits for a notification before
	// it checks its connection and reads the journal anyway.
	FollowPoll = 2 * time.Second
	// FollowRetry is the first pause before reconnecting.
	FollowRetry = 100 * time.Millisecond
	// FollowMaxRetry is the longest pause before reconnecting.
	FollowMaxRetry = 2 * time.Second
)

// deliverError is deliver's error, which ends Follow.
type deliverError struct{ err error }

func (e deliverError) Error() string { return e.err.Error() }

// followListening follows the journal on one listening connection until
// it fails; connected reports whether it listened at all.
func (s *Store) followListening(ctx context.Context, after *int64, deliver func(JournalRow) error) (connected bool, err error) {
	cfg, err := pgx.ParseConfig(s.path)
	if err != nil {
		return false, fmt.Errorf("parse %s: %w", RedactDSN(s.path), err)
	}
	cfg.RuntimeParams["application_name"] = FollowApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("connect to listen: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	// Listen before reading, so a row committed meanwhile is either read
	// or notified.
	if _, err := conn.Exec(ctx, "LISTEN "+journalChannel); err != nil {
		return false, fmt.Errorf("listen for journal rows: %w", err)
	}
	for {
		if err := s.catchUp(ctx, after, deliver); err != nil {
			return true, err
		}
		wait, cancel := context.WithTimeout(ctx, FollowPoll)
		_, err := conn.WaitForNotification(wait)
		timedOut := wait.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case timedOut:
			if err := conn.Ping(ctx); err != nil {
				return true, fmt.Errorf("check the listening connection: %w", err)
			}
		case err != nil:
			return true, fmt.Errorf("wait for journal rows: %w", err)
		}
	}
}

// FollowApplicationName is the application_name of a follower's listening
// connection, as pg_stat_activity shows it.
const FollowApplicationName = "tether-follow"

// followByPolling follows the journal by reading it every FollowPoll.
func (s *Store) followByPolling(ctx context.Context, after int64, deliver func(JournalRow) error) error {
	t := time.NewTicker(FollowPoll)
	defer t.Stop()
	for {
		err := s.catchUp(ctx, &after, deliver)
		var d deliverError
		if errors.As(err, &d) {
			return d.err
		}
		if err != nil {
			s.log.Warn("journal follower cannot read the journal", "err", err, "version", after)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// catchUp delivers every row after *after, advancing it.
func (s *Store) catchUp(ctx context.Context, after *int64, deliver func(JournalRow) error) error {
	for {
		rows, err := s.JournalAfter(ctx, *after, followBatch)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := deliver(r); err != nil {
				return deliverError{err}
			}
			*after = r.Version
		}
		if len(rows) < followBatch {
			return nil
		}
	}
}
