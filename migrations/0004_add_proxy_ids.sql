-- Proxy numbers, as HAProxy gives them: the iid of show stat, the be_id of
-- show servers state. A listen section is a frontend and a backend with the
-- same name and number. 0 lets the balancer number the proxy, as it does
-- for rows written before this migration.

-- +goose Up
ALTER TABLE frontends ADD COLUMN proxy_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE backends ADD COLUMN proxy_id INTEGER NOT NULL DEFAULT 0;
