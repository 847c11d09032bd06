-- Console users and their login sessions.

-- +goose Up
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    -- PHC string: $argon2id$v=19$m=...,t=...,p=...$salt$hash
    password_hash TEXT    NOT NULL,
    created_ns    INTEGER NOT NULL
);

-- A session is found by the SHA-256 of its token; the token itself is
-- never stored.
CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_ns);
CREATE INDEX sessions_user ON sessions (user_id);
