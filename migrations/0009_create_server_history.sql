-- Per-server traffic history: what each server did in each minute, and the
-- state changes (health transitions, operator actions) that explain it.
-- Kept for a retention the console chooses (24 hours by default); rows are
-- keyed by names, so the history of a removed server stays until it ages
-- out. A minute without traffic has no row.

-- +goose Up
-- A series with server '' is its backend's total, kept beside its servers'
-- so a backend's chart reads one row per minute whatever its size.
CREATE TABLE history_series (
    id      INTEGER PRIMARY KEY,
    backend TEXT    NOT NULL,
    server  TEXT    NOT NULL,
    UNIQUE (backend, server)
);

-- minute is Unix seconds / 60. errors counts 5xx responses, connection
-- errors and response errors. Rows are clustered by server, so a chart
-- reads one contiguous range per server.
CREATE TABLE server_history (
    minute       INTEGER NOT NULL,
    series_id    INTEGER NOT NULL REFERENCES history_series (id),
    requests     INTEGER NOT NULL,
    new_sessions INTEGER NOT NULL,
    pinned       INTEGER NOT NULL,
    redispatched INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    bytes_in     INTEGER NOT NULL,
    bytes_out    INTEGER NOT NULL,
    PRIMARY KEY (series_id, minute)
) WITHOUT ROWID;
CREATE INDEX server_history_minute ON server_history (minute);

-- server is '' for a backend-wide change. message never holds an address,
-- a cookie value or a key: viewers read it.
CREATE TABLE server_events (
    id      INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    minute  INTEGER NOT NULL,
    backend TEXT    NOT NULL,
    server  TEXT    NOT NULL,
    kind    TEXT    NOT NULL CHECK (kind IN ('health', 'admin')),
    message TEXT    NOT NULL
);
CREATE INDEX server_events_backend ON server_events (backend, minute);
CREATE INDEX server_events_minute ON server_events (minute);
