-- The nodes sharing this database, each as it last reported itself in its
-- heartbeat: its Tether version, the journal version it applied, when it
-- started and its console's URL. A node that stops reporting stays listed,
-- as lost.

-- +goose Up
CREATE TABLE nodes (
    name         TEXT    PRIMARY KEY,
    version      TEXT    NOT NULL,
    applied      INTEGER NOT NULL,
    started_ns   INTEGER NOT NULL,
    heartbeat_ns INTEGER NOT NULL,
    console_url  TEXT    NOT NULL
);
