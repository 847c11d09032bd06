-- Each node's per-server counters as its last heartbeat published them: a
-- small JSON document (backend -> server -> pinned requests, new sticky
-- sessions, requests), bounded by the node, that the console sums over
-- the fleet's live nodes.

-- +goose Up
ALTER TABLE nodes ADD COLUMN counters TEXT NOT NULL DEFAULT '';
