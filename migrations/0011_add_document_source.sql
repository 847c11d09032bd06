-- The configuration file an import or reload read, kept with the state
-- document it produced: its path and the hex prefix of its SHA-256. A start
-- with the same file (same digest as the newest document that has one) runs
-- the stored state with its runtime changes instead of importing again.
-- Checkpoint documents carry the newest import's values forward.

-- +goose Up
ALTER TABLE state_documents ADD COLUMN source_file TEXT NOT NULL DEFAULT '';
ALTER TABLE state_documents ADD COLUMN source_digest TEXT NOT NULL DEFAULT '';

