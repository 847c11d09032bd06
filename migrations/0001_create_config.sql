-- The balancer's durable state: its configuration with every runtime change
-- folded in, and each server's runtime settings. Lists keep their order in a
-- position column (0-based, dense); durations are integer nanoseconds; string
-- lists are JSON arrays.

-- +goose Up
CREATE TABLE global_settings (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    stats_timeout_ns INTEGER NOT NULL,
    stats_maxconn    INTEGER NOT NULL
);

CREATE TABLE stats_sockets (
    position        INTEGER PRIMARY KEY,
    address         TEXT    NOT NULL,
    mode            INTEGER NOT NULL,
    level           INTEGER NOT NULL,
    severity_output TEXT    NOT NULL
);

CREATE TABLE frontends (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    position          INTEGER NOT NULL,
    binds             TEXT    NOT NULL,
    default_backend   TEXT    NOT NULL,
    forward_for       INTEGER NOT NULL,
    timeout_client_ns INTEGER NOT NULL
);

CREATE TABLE backends (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT    NOT NULL UNIQUE,
    position              INTEGER NOT NULL,
    balance               TEXT    NOT NULL,
    cookie_enabled        INTEGER NOT NULL,
    cookie_name           TEXT    NOT NULL,
    cookie_mode           TEXT    NOT NULL CHECK (cookie_mode IN ('passive', 'insert', 'rewrite', 'prefix')),
    cookie_indirect       INTEGER NOT NULL,
    cookie_nocache        INTEGER NOT NULL,
    cookie_postonly       INTEGER NOT NULL,
    cookie_preserve       INTEGER NOT NULL,
    cookie_httponly       INTEGER NOT NULL,
    cookie_secure         INTEGER NOT NULL,
    cookie_dynamic        INTEGER NOT NULL,
    cookie_domains        TEXT    NOT NULL,
    cookie_maxidle_ns     INTEGER NOT NULL,
    cookie_maxlife_ns     INTEGER NOT NULL,
    cookie_attrs          TEXT    NOT NULL,
    -- The secret of dynamic cookies, kept to rebuild the balancer. It is
    -- never copied to the audit log, which records a fingerprint instead.
    dynamic_cookie_key    TEXT    NOT NULL,
    persist               INTEGER NOT NULL,
    redispatch            INTEGER NOT NULL,
    redispatch_interval   INTEGER NOT NULL,
    retries               INTEGER NOT NULL,
    forward_for           INTEGER NOT NULL,
    httpchk_enabled       INTEGER NOT NULL,
    httpchk_method        TEXT    NOT NULL,
    httpchk_uri           TEXT    NOT NULL,
    httpchk_version       TEXT    NOT NULL,
    httpchk_expect_status INTEGER NOT NULL,
    timeout_connect_ns    INTEGER NOT NULL,
    timeout_server_ns     INTEGER NOT NULL,
    timeout_check_ns      INTEGER NOT NULL,
    timeout_queue_ns      INTEGER NOT NULL
);

-- A server's configuration, as added by a server line or "add server".
-- Servers made by a server-template are not listed; their slots have
-- runtime settings only.
CREATE TABLE servers (
    id             INTEGER PRIMARY KEY,
    backend_id     INTEGER NOT NULL REFERENCES backends (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    name           TEXT    NOT NULL,
    address        TEXT    NOT NULL,
    port           INTEGER NOT NULL,
    port_set       INTEGER NOT NULL,
    cookie         TEXT    NOT NULL,
    health_check   INTEGER NOT NULL,
    inter_ns       INTEGER NOT NULL,
    fastinter_ns   INTEGER NOT NULL,
    downinter_ns   INTEGER NOT NULL,
    rise           INTEGER NOT NULL,
    fall           INTEGER NOT NULL,
    check_port     INTEGER NOT NULL,
    weight         INTEGER NOT NULL,
    backup         INTEGER NOT NULL,
    disabled       INTEGER NOT NULL,
    maxconn        INTEGER NOT NULL,
    resolvers      TEXT    NOT NULL,
    resolve_prefer TEXT    NOT NULL,
    allow_dup_ip   INTEGER NOT NULL,
    init_addr      TEXT    NOT NULL,
    UNIQUE (backend_id, name)
);
CREATE INDEX servers_backend_position ON servers (backend_id, position);

-- The runtime settings of a server of a backend (a configured server or a
-- server-template slot): what the Runtime API and DNS changed.
CREATE TABLE server_runtime (
    backend_id    INTEGER NOT NULL REFERENCES backends (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    admin         TEXT    NOT NULL CHECK (admin IN ('ready', 'drain', 'maint')),
    weight        INTEGER NOT NULL,
    check_enabled INTEGER NOT NULL,
    address       TEXT    NOT NULL,
    port          INTEGER NOT NULL,
    port_set      INTEGER NOT NULL,
    PRIMARY KEY (backend_id, name)
);

-- A server-template line; the server columns hold the shared parameters.
CREATE TABLE server_templates (
    backend_id     INTEGER NOT NULL REFERENCES backends (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    prefix         TEXT    NOT NULL,
    low            INTEGER NOT NULL,
    high           INTEGER NOT NULL,
    fqdn           TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    address        TEXT    NOT NULL,
    port           INTEGER NOT NULL,
    port_set       INTEGER NOT NULL,
    cookie         TEXT    NOT NULL,
    health_check   INTEGER NOT NULL,
    inter_ns       INTEGER NOT NULL,
    fastinter_ns   INTEGER NOT NULL,
    downinter_ns   INTEGER NOT NULL,
    rise           INTEGER NOT NULL,
    fall           INTEGER NOT NULL,
    check_port     INTEGER NOT NULL,
    weight         INTEGER NOT NULL,
    backup         INTEGER NOT NULL,
    disabled       INTEGER NOT NULL,
    maxconn        INTEGER NOT NULL,
    resolvers      TEXT    NOT NULL,
    resolve_prefer TEXT    NOT NULL,
    allow_dup_ip   INTEGER NOT NULL,
    init_addr      TEXT    NOT NULL,
    PRIMARY KEY (backend_id, position)
);

CREATE TABLE resolvers (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT    NOT NULL UNIQUE,
    position              INTEGER NOT NULL,
    accepted_payload_size INTEGER NOT NULL,
    resolve_retries       INTEGER NOT NULL,
    timeout_resolve_ns    INTEGER NOT NULL,
    timeout_retry_ns      INTEGER NOT NULL,
    parse_resolv_conf     INTEGER NOT NULL
);

CREATE TABLE nameservers (
    resolvers_id INTEGER NOT NULL REFERENCES resolvers (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    address      TEXT    NOT NULL,
    tcp          INTEGER NOT NULL,
    PRIMARY KEY (resolvers_id, position)
);

-- The hold periods of a resolvers section, keyed by status (nx, refused,
-- timeout, other, valid, obsolete).
CREATE TABLE resolver_holds (
    resolvers_id INTEGER NOT NULL REFERENCES resolvers (id) ON DELETE CASCADE,
    status       TEXT    NOT NULL,
    duration_ns  INTEGER NOT NULL,
    PRIMARY KEY (resolvers_id, status)
);
