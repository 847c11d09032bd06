-- The journal: every change and every refused command, in order, whatever
-- its channel. A row is both the audit entry and, in its changes column,
-- the typed changes it applied (balancer.EncodeChanges; '' for a refused
-- command or a whole-state import). State documents hold the whole durable
-- state as of a journal row; the state is the newest document with the
-- changes of the rows after it applied in order.

-- +goose Up
ALTER TABLE audit_log RENAME TO journal;
ALTER TABLE journal ADD COLUMN changes TEXT NOT NULL DEFAULT '';
DROP INDEX audit_log_backend;
DROP INDEX audit_log_actor;
DROP INDEX audit_log_channel;
CREATE INDEX journal_backend ON journal (backend, id);
CREATE INDEX journal_actor ON journal (actor, id);
CREATE INDEX journal_channel ON journal (channel, id);

-- Secrets named by the journal: a journalled dynamic-cookie key is stored
-- as "sha256:" and the hex SHA-256 of the key, and the key itself here, so
-- that journal rows, which are also the audit log, never hold one.
CREATE TABLE secrets (
    ref   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A document is balancer.EncodeState of the state once every journal row
-- up to journal_id is applied.
CREATE TABLE state_documents (
    journal_id INTEGER PRIMARY KEY,
    time_ns    INTEGER NOT NULL,
    document   TEXT    NOT NULL
);
