-- Every change and every refused command, whatever its channel. Secrets are
-- never written here: a dynamic-cookie key appears as its fingerprint.

-- +goose Up
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns      INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    command      TEXT    NOT NULL,
    result       TEXT    NOT NULL,
    backend      TEXT    NOT NULL,
    server       TEXT    NOT NULL,
    state_before TEXT    NOT NULL,
    state_after  TEXT    NOT NULL,
    detail       TEXT    NOT NULL
);
CREATE INDEX audit_log_backend ON audit_log (backend, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_channel ON audit_log (channel, id);
