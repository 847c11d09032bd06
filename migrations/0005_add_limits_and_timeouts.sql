-- Connection limits, buffer sizes and the timeouts HAProxy enforces beyond
-- connect/client/server: global maxconn and tune.bufsize/tune.maxrewrite,
-- frontend maxconn and timeout http-request/http-keep-alive/client-fin,
-- backend timeout tunnel/server-fin. 0 means HAProxy's default, as it does
-- for rows written before this migration.

-- +goose Up
ALTER TABLE global_settings ADD COLUMN maxconn INTEGER NOT NULL DEFAULT 0;
ALTER TABLE global_settings ADD COLUMN bufsize INTEGER NOT NULL DEFAULT 0;
ALTER TABLE global_settings ADD COLUMN maxrewrite INTEGER NOT NULL DEFAULT 0;
ALTER TABLE frontends ADD COLUMN maxconn INTEGER NOT NULL DEFAULT 0;
ALTER TABLE frontends ADD COLUMN timeout_http_request_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE frontends ADD COLUMN timeout_http_keep_alive_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE frontends ADD COLUMN timeout_client_fin_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE backends ADD COLUMN timeout_tunnel_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE backends ADD COLUMN timeout_server_fin_ns INTEGER NOT NULL DEFAULT 0;
