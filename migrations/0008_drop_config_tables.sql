-- The configuration now lives in state documents and the journal. Before
-- this migration runs, Open folds what these tables hold into a first
-- state document (store.foldConfigTables).

-- +goose Up
DROP TABLE nameservers;
DROP TABLE resolver_holds;
DROP TABLE resolvers;
DROP TABLE server_templates;
DROP TABLE server_runtime;
DROP TABLE servers;
DROP TABLE backends;
DROP TABLE frontends;
DROP TABLE stats_sockets;
DROP TABLE global_settings;
