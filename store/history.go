package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Kinds of HistoryEvent.
const (
	// HistoryHealth is a server's operational state transition (UP, DOWN).
	HistoryHealth = "health"
	// HistoryAdmin is an operator's change: state, weight, address, a
	// server added or deleted, cookie settings.
	HistoryAdmin = "admin"
)

// ErrBadHistoryQuery reports a history query without a backend, or whose
// range ends before it starts.
var ErrBadHistoryQuery = errors.New("history query needs a backend and From before To")

// HistoryBucket is what one server did during one minute. Counts are
// deltas over the minute, never cumulative counters.
type HistoryBucket struct {
	Backend string
	Server  string
	// Minute is the start of the minute, in UTC.
	Minute       time.Time
	Requests     int64
	NewSessions  int64
	Pinned       int64
	Redispatched int64
	// Errors counts 5xx responses, connection errors and response errors.
	Errors   int64
	BytesIn  int64
	BytesOut int64
}

// zero reports whether the bucket counts nothing.
func (b *HistoryBucket) zero() bool {
	return b.Requests == 0 && b.NewSessions == 0 && b.Pinned == 0 && b.Redispatched == 0 &&
		b.Errors == 0 && b.BytesIn == 0 && b.BytesOut == 0
}

// HistoryEvent is a state change of a server (or of a backend, with Server
// ""), kept with the history so charts can mark it. Message must not hold
// an address, a cookie value or a key: every console user may read it.
type HistoryEvent struct {
	Time    time.Time
	Backend string
	Server  string
	Kind    string // HistoryHealth or HistoryAdmin
	Message string
}

// HistoryQuery selects a backend's history, or one server's, over the
// minutes that start in [From, To).
type HistoryQuery struct {
	Backend string
	// Server is "" for every server of the backend.
	Server string
	From   time.Time
	To     time.Time
}

func (q HistoryQuery) check() error {
	if q.Backend == "" || !q.From.Before(q.To) {
		return ErrBadHistoryQuery
	}
	return nil
}

// unixMinute returns the number of the minute t falls in.
func unixMinute(t time.Time) int64 {
	s := t.Unix()
	if s < 0 && s%60 != 0 {
		return s/60 - 1
	}
	return s / 60
}

// firstMinute returns the number of the first minute that starts at or
// after t.
func firstMinute(t time.Time) int64 {
	m := unixMinute(t)
	if time.Unix(m*60, 0).Before(t) {
		m++
	}
	return m
}

// AppendHistory records buckets and events in one transaction, and adds
// each bucket to its backend's total of the minute. A bucket for a server
// and minute already recorded is added to it, so a minute split by a
// restart counts once in full. Buckets that count nothing are not stored.
func (s *Store) AppendHistory(ctx context.Context, buckets []HistoryBucket, events []HistoryEvent) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if len(buckets) > 0 {
			if err := appendBuckets(ctx, tx, buckets); err != nil {
				return err
			}
		}
		if len(events) > 0 {
			if err := appendEvents(ctx, tx, events); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d history buckets and %d events: %w", len(buckets), len(events), err)
	}
	return nil
}

func appendBuckets(ctx context.Context, tx *sql.Tx, buckets []HistoryBucket) error {
	series, err := tx.PrepareContext(ctx,
		`INSERT INTO history_series (backend, server) VALUES (?, ?) ON CONFLICT (backend, server) DO NOTHING`)
	if err != nil {
		return err
	}
	defer series.Close()
	add, err := tx.PrepareContext(ctx, `
		INSERT INTO server_history (minute, series_id, requests, new_sessions, pinned, redispatched, errors, bytes_in, bytes_out)
		VALUES (?, (SELECT id FROM history_series WHERE backend = ? AND server = ?), ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (series_id, minute) DO UPDATE SET
			requests = server_history.requests + excluded.requests,
			new_sessions = server_history.new_sessions + excluded.new_sessions,
			pinned = server_history.pinned + excluded.pinned,
			redispatched = server_history.redispatched + excluded.redispatched,
			errors = server_history.errors + excluded.errors,
			bytes_in = server_history.bytes_in + excluded.bytes_in,
			bytes_out = server_history.bytes_out + excluded.bytes_out`)
	if err != nil {
		return err
	}
	defer add.Close()
	type backendMinute struct {
		backend string
		minute  int64
	}
	totals := make(map[backendMinute]*HistoryBucket)
	var order []backendMinute
	put := func(b *HistoryBucket, minute int64) error {
		if _, err := series.ExecContext(ctx, b.Backend, b.Server); err != nil {
			return fmt.Errorf("add history series %s/%s: %w", b.Backend, b.Server, err)
		}
		if _, err := add.ExecContext(ctx, minute, b.Backend, b.Server,
			b.Requests, b.NewSessions, b.Pinned, b.Redispatched, b.Errors, b.BytesIn, b.BytesOut); err != nil {
			return fmt.Errorf("add history of %s/%s: %w", b.Backend, b.Server, err)
		}
		return nil
	}
	for i := range buckets {
		b := &buckets[i]
		if b.zero() {
			continue
		}
		if b.Backend == "" || b.Server == "" {
			return fmt.Errorf("history bucket without backend or server name (%q/%q)", b.Backend, b.Server)
		}
		m := unixMinute(b.Minute)
		if err := put(b, m); err != nil {
			return err
		}
		k := backendMinute{b.Backend, m}
		t := totals[k]
		if t == nil {
			t = &HistoryBucket{Backend: b.Backend}
			totals[k] = t
			order = append(order, k)
		}
		t.Requests += b.Requests
		t.NewSessions += b.NewSessions
		t.Pinned += b.Pinned
		t.Redispatched += b.Redispatched
		t.Errors += b.Errors
		t.BytesIn += b.BytesIn
		t.BytesOut += b.BytesOut
	}
	// Each backend's total is a series of its own (server ""), so a
	// backend's chart reads one row per minute however many servers it has.
	for _, k := range order {
		if err := put(totals[k], k.minute); err != nil {
			return err
		}
	}
	return nil
}

func appendEvents(ctx context.Context, tx *sql.Tx, events []HistoryEvent) error {
	ins, err := tx.PrepareContext(ctx,
		`INSERT INTO server_events (time_ns, minute, backend, server, kind, message) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, e := range events {
		if e.Kind != HistoryHealth && e.Kind != HistoryAdmin {
			return fmt.Errorf("history event of kind %q: want %q or %q", e.Kind, HistoryHealth, HistoryAdmin)
		}
		if _, err := ins.ExecContext(ctx, e.Time.UnixNano(), unixMinute(e.Time), e.Backend, e.Server, e.Kind, e.Message); err != nil {
			return fmt.Errorf("add history event of %s/%s: %w", e.Backend, e.Server, err)
		}
	}
	return nil
}

// History returns the buckets q selects, by minute then server name.
// Minutes without traffic have no bucket.
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]HistoryBucket, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	query := `
		SELECT h.minute, s.server, h.requests, h.new_sessions, h.pinned, h.redispatched, h.errors, h.bytes_in, h.bytes_out
		FROM history_series s JOIN server_history h ON h.series_id = s.id
		WHERE s.backend = ?1 AND CASE WHEN ?2 = '' THEN s.server <> '' ELSE s.server = ?2 END AND h.minute >= ?3 AND h.minute < ?4
		ORDER BY h.minute, s.server`
	rows, err := s.rdb.QueryContext(ctx, query, q.Backend, q.Server, firstMinute(q.From), firstMinute(q.To))
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", q.name(), err)
	}
	defer rows.Close()
	var out []HistoryBucket
	for rows.Next() {
		b := HistoryBucket{Backend: q.Backend}
		var minute int64
		if err := rows.Scan(&minute, &b.Server, &b.Requests, &b.NewSessions, &b.Pinned, &b.Redispatched,
			&b.Errors, &b.BytesIn, &b.BytesOut); err != nil {
			return nil, fmt.Errorf("read history of %s: %w", q.name(), err)
		}
		b.Minute = time.Unix(minute*60, 0).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", q.name(), err)
	}
	return out, nil
}

// HistorySums returns the buckets q selects summed over its servers and
// over steps of step (a whole number of minutes, at least one) counted
// from q.From, oldest first. A backend's sums include its servers removed
// since, as long as their history is kept. Each sum has Server "" and Minute the start
// of its step; steps without traffic have none.
func (s *Store) HistorySums(ctx context.Context, q HistoryQuery, step time.Duration) ([]HistoryBucket, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if step < time.Minute || step%time.Minute != 0 {
		return nil, fmt.Errorf("sum history of %s by %s: want a whole number of minutes", q.name(), step)
	}
	from, width := firstMinute(q.From), int64(step/time.Minute)
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT (h.minute - ?1) / ?2 AS n, SUM(h.requests), SUM(h.new_sessions), SUM(h.pinned), SUM(h.redispatched),
			SUM(h.errors), SUM(h.bytes_in), SUM(h.bytes_out)
		FROM history_series s JOIN server_history h ON h.series_id = s.id
		WHERE s.backend = ?3 AND s.server = ?4 AND h.minute >= ?1 AND h.minute < ?5
		GROUP BY n ORDER BY n`,
		from, width, q.Backend, q.Server, firstMinute(q.To))
	if err != nil {
		return nil, fmt.Errorf("sum history of %s: %w", q.name(), err)
	}
	defer rows.Close()
	var out []HistoryBucket
	for rows.Next() {
		b := HistoryBucket{Backend: q.Backend}
		var n int64
		if err := rows.Scan(&n, &b.Requests, &b.NewSessions, &b.Pinned, &b.Redispatched,
			&b.Errors, &b.BytesIn, &b.BytesOut); err != nil {
			return nil, fmt.Errorf("sum history of %s: %w", q.name(), err)
		}
		b.Minute = time.Unix((from+n*width)*60, 0).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sum history of %s: %w", q.name(), err)
	}
	return out, nil
}

// HistoryEvents returns the events q selects, oldest first. A query for one
// server includes the backend-wide events.
func (s *Store) HistoryEvents(ctx context.Context, q HistoryQuery) ([]HistoryEvent, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT time_ns, server, kind, message FROM server_events
		WHERE backend = ? AND (? = '' OR server = ? OR server = '') AND minute >= ? AND minute < ?
		ORDER BY time_ns, id`,
		q.Backend, q.Server, q.Server, firstMinute(q.From), firstMinute(q.To))
	if err != nil {
		return nil, fmt.Errorf("read history events of %s: %w", q.name(), err)
	}
	defer rows.Close()
	var out []HistoryEvent
	for rows.Next() {
		e := HistoryEvent{Backend: q.Backend}
		var ns int64
		if err := rows.Scan(&ns, &e.Server, &e.Kind, &e.Message); err != nil {
			return nil, fmt.Errorf("read history events of %s: %w", q.name(), err)
		}
		e.Time = time.Unix(0, ns).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history events of %s: %w", q.name(), err)
	}
	return out, nil
}

func (q HistoryQuery) name() string {
	if q.Server == "" {
		return "backend " + q.Backend
	}
	return "server " + q.Backend + "/" + q.Server
}

// PruneHistory deletes the buckets and events of minutes that start before
// before, and the names no bucket refers to any more, in one transaction.
// It returns the number of buckets and events deleted.
func (s *Store) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	cut := firstMinute(before)
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM server_history WHERE minute < ?`,
			`DELETE FROM server_events WHERE minute < ?`,
		} {
			res, err := tx.ExecContext(ctx, q, cut)
			if err != nil {
				return err
			}
			d, _ := res.RowsAffected()
			n += d
		}
		_, err := tx.ExecContext(ctx,
			`DELETE FROM history_series WHERE NOT EXISTS (SELECT 1 FROM server_history h WHERE h.series_id = history_series.id)`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune history before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}
