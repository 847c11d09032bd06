package haproxycfg

import "strings"

// This file classifies every HAProxy 2.6 keyword that Tether does not
// implement. A keyword whose absence would change who gets what, over which
// protocol, or what is refused is refused: Parse reports it as an error with
// its file and line, so a configuration never runs fail-open. A keyword that
// changes nothing but logging, tuning or process management is ignored with a
// warning. A few ask for what Tether does anyway and are accepted silently.
// Keywords missing from every table are "unknown keyword" errors, as in
// HAProxy. docs/haproxy-keywords.md is generated from these tables.

// verdict says what Parse does with a keyword Tether does not implement.
type verdict int

const (
	// refused keywords are errors naming their line.
	refused verdict = iota + 1
	// warned keywords are ignored with a warning.
	warned
	// accepted keywords ask for Tether's own behaviour; they are accepted
	// without a warning.
	accepted
)

func (v verdict) String() string {
	switch v {
	case refused:
		return "refused"
	case warned:
		return "warned"
	case accepted:
		return "accepted"
	}
	return "unknown"
}

// keywordGroup is a set of keywords sharing a verdict and its reason.
type keywordGroup struct {
	verdict verdict
	// why is a short phrase saying what the keywords do, used in messages
	// and in the documentation.
	why string
	// words are the space-separated keywords.
	words string
	// args is how many arguments each keyword takes, for bind and server
	// parameters.
	args int
}

// keywordTable is a list of keyword groups; a keyword is in one group only.
type keywordTable []keywordGroup

// lookup returns the group holding w.
func (t keywordTable) lookup(w string) (keywordGroup, bool) {
	for _, g := range t {
		if hasWord(g.words, w) {
			return g, true
		}
	}
	return keywordGroup{}, false
}

// Reasons shared by several tables.
const (
	whyTLS        = "TLS: Tether would serve or connect in clear text"
	whyTLSTuning  = "TLS tuning"
	whyTLSBind    = "TLS setting: who may connect, with which certificate or protocol"
	whyTLSServer  = "TLS setting of server connections: which servers are trusted, over which protocol"
	whyLogging    = "logging"
	whyLogTarget  = "log targets other than stdout, stderr and syslog over UDP to an IP address: UNIX sockets, fd@, ring@, host names, sample"
	whyPrivileges = "privileges: Tether does not chroot or drop privileges"
	whyProxyProto = "PROXY protocol: the peer's framing would be misread"
	whyHealth     = "health-check rules decide which servers get traffic"
	whySocketTune = "socket tuning"
)

// globalKeywords are the global-section keywords of HAProxy 2.6 (as built by
// Debian) that Tether does not implement. "stats socket/timeout/maxconn",
// "maxconn", "tune.bufsize", "tune.maxrewrite", "setenv", "presetenv",
// "unsetenv", "resetenv" and "zero-warning" are implemented.
var globalKeywords = keywordTable{
	{verdict: refused, why: whyPrivileges, words: "chroot user group uid gid"},
	{verdict: refused, why: "owner and mode of UNIX sockets, the Runtime API socket included", words: "unix-bind"},
	{verdict: refused, why: "connection and session rate limits", words: "maxconnrate maxsessrate"},
	{verdict: refused, why: "header count limit: requests with more headers are refused", words: "tune.http.maxhdr"},
	{verdict: refused, why: "accepts bodies on HTTP/1.0 GET, HEAD and DELETE that HAProxy refuses by default", words: "h1-accept-payload-with-any-method"},
	{verdict: warned, why: whyLogTarget, words: "log"},
	{verdict: warned, why: whyLogging, words: "quiet tune.http.cookielen tune.http.logurilen"},
	{verdict: warned, why: "process management: Tether runs as one foreground process", words: `
		daemon master-worker pidfile mworker-max-reloads hard-stop-after grace close-spread-time
		set-dumpable strict-limits no-memory-trimming profiling.tasks`},
	{verdict: warned, why: "threads and CPU placement", words: "nbthread thread-groups thread-group cpu-map numa-cpu-mapping busy-polling"},
	{verdict: warned, why: "file-descriptor limits (tuning)", words: "ulimit-n fd-hard-limit"},
	{verdict: warned, why: "polling and socket tuning", words: "noepoll nokqueue noevports nopoll nosplice noreuseport maxpipes"},
	{verdict: warned, why: "name resolution method: Tether uses Go's resolver", words: "nogetaddrinfo"},
	{verdict: warned, why: "spreading of health checks (tuning)", words: "spread-checks max-spread-checks"},
	{verdict: warned, why: "server state across reloads: Tether keeps it in its database", words: "server-state-base server-state-file"},
	{verdict: warned, why: "names shown by HAProxy's statistics", words: "node description"},
	{verdict: warned, why: "peers: stick tables are refused", words: "localpeer tune.peers.max-updates-at-once"},
	{verdict: warned, why: "Lua: scripts act only through rules Tether refuses", words: "lua-load lua-load-per-thread lua-prepend-path"},
	{verdict: warned, why: "switches allowing features Tether does not have", words: "expose-experimental-directives insecure-fork-wanted insecure-setuid-wanted external-check"},
	{verdict: warned, why: "variables are read only by rules Tether refuses", words: "set-var set-var-fmt"},
	{verdict: warned, why: "HAProxy's internal HTTP client (Lua, OCSP)", words: "httpclient.resolvers.id httpclient.resolvers.prefer httpclient.ssl.ca-file httpclient.ssl.verify"},
	{verdict: warned, why: "base directory of files that Tether does not load", words: "default-path"},
	{verdict: warned, why: whyTLSTuning, words: `
		issuers-chain-path maxsslconn maxsslrate ssl-default-server-ciphers ssl-default-server-ciphersuites ssl-default-server-options
		ssl-dh-param-file ssl-mode-async ssl-load-extra-files
		ssl-load-extra-del-ext ssl-skip-self-issued-ca ssl-propquery ssl-provider ssl-provider-path
		tune.ssl.cachesize tune.ssl.capture-buffer-size tune.ssl.capture-cipherlist-size
		tune.ssl.default-dh-param tune.ssl.force-private-cache tune.ssl.hard-maxrecord
		tune.ssl.keylog tune.ssl.lifetime tune.ssl.maxrecord tune.ssl.ssl-ctx-cache-size`},
	{verdict: refused, why: whyTLSBind, words: "ssl-default-bind-curves"},
	{verdict: warned, why: "compression tuning: responses are not compressed", words: "maxcomprate maxcompcpuusage maxzlibmem tune.comp.maxlevel"},
	{verdict: warned, why: "letter case of HTTP/1 header names", words: "h1-case-adjust h1-case-adjust-file"},
	{verdict: warned, why: "HTTP/2 tuning: Tether's listeners speak HTTP/1.1", words: `
		h2-workaround-bogus-websocket-clients tune.h2.header-table-size tune.h2.initial-window-size
		tune.h2.max-concurrent-streams tune.h2.max-frame-size`},
	{verdict: warned, why: "QUIC tuning: QUIC listeners are refused", words: "cluster-secret"},
	{verdict: warned, why: "PROXY protocol to servers, which is refused", words: "pp2-never-send-local"},
	{verdict: warned, why: "buffer, memory and scheduler tuning", words: `
		tune.buffers.limit tune.buffers.reserve tune.fail-alloc tune.fd.edge-triggered
		tune.idle-pool.shared tune.idletimer tune.listener.multi-queue tune.maxaccept
		tune.maxpollevents tune.pattern.cache-size tune.pipesize tune.pool-high-fd-ratio
		tune.pool-low-fd-ratio tune.recv_enough tune.runqueue-depth tune.sched.low-latency
		tune.vars.check-max-size tune.vars.global-max-size tune.vars.proc-max-size
		tune.vars.reqres-max-size tune.vars.sess-max-size tune.vars.txn-max-size
		tune.lua.forced-yield tune.lua.maxmem tune.lua.service-timeout tune.lua.session-timeout
		tune.lua.task-timeout`},
	{verdict: warned, why: whySocketTune, words: "tune.rcvbuf.client tune.rcvbuf.server tune.sndbuf.client tune.sndbuf.server"},
}

// proxyKeywords are the defaults/frontend/backend/listen keywords of HAProxy
// 2.6 that Tether does not implement, "option", "timeout", "http-check" and
// the multi-word cases of balance, hash-type, http-reuse and retry-on aside.
var proxyKeywords = keywordTable{
	{verdict: refused, why: "content switching decides which server gets a request", words: "use-server dispatch"},
	{verdict: refused, why: "request and response rules: deny, redirect, header changes …", words: "http-after-response tcp-request tcp-response"},
	{verdict: refused, why: "custom error pages change what clients receive", words: "errorfile errorfiles errorloc errorloc302 errorloc303 http-error"},
	{verdict: refused, why: "stick tables and persistence overrides decide which server gets a client", words: "stick stick-table force-persist ignore-persist persist"},
	{verdict: refused, why: "HAProxy answers these requests itself instead of a server", words: "monitor-uri monitor stats"},
	{verdict: refused, why: "the proxy is disabled: Tether would run it", words: "disabled"},
	{verdict: refused, why: "source address of server connections", words: "source"},
	{verdict: refused, why: "filters change the traffic: bandwidth limits, cache, SPOE …", words: "filter"},
	{verdict: refused, why: "session rate limit", words: "rate-limit"},
	{verdict: refused, why: "adds a header to requests", words: "unique-id-header http-send-name-header"},
	{verdict: refused, why: "FastCGI servers", words: "use-fcgi-app"},
	{verdict: refused, why: whyHealth, words: "tcp-check external-check"},
	{verdict: warned, why: whyLogTarget, words: "log"},
	{verdict: warned, why: whyLogging, words: "log-format-sd error-log-format unique-id-format declare"},
	{verdict: warned, why: "e-mail notifications", words: "email-alert"},
	{verdict: warned, why: "compression: responses are sent uncompressed", words: "compression"},
	{verdict: warned, why: "connection tuning", words: "backlog max-keep-alive-queue max-session-srv-conns"},
	{verdict: warned, why: "TCP keep-alive tuning", words: "clitcpka-cnt clitcpka-idle clitcpka-intvl srvtcpka-cnt srvtcpka-idle srvtcpka-intvl"},
	{verdict: warned, why: "process management", words: "bind-process grace"},
	{verdict: warned, why: "description shown by HAProxy's statistics", words: "description"},
	{verdict: warned, why: "only used with minconn, which is refused", words: "fullconn"},
	{verdict: warned, why: "only used by consistent hashing, which is refused", words: "hash-balance-factor"},
	{verdict: warned, why: "server state across reloads: Tether keeps it in its database", words: "load-server-state-from-file server-state-file-name"},
	{verdict: accepted, why: "the default: the proxy runs", words: "enabled"},
}

// proxyOptions are the "option" names of HAProxy 2.6 that Tether does not
// implement. "no option NAME" for any of them asks for HAProxy's default,
// which is Tether's behaviour, and is accepted.
var proxyOptions = keywordTable{
	{verdict: refused, why: "accepts malformed requests or responses: clients and servers would get other answers", words: "accept-invalid-http-request accept-invalid-http-response"},
	{verdict: refused, why: "changes which servers get traffic", words: "allbackups prefer-last-server"},
	{verdict: refused, why: "refuses cacheable responses that set cookies", words: "checkcache"},
	{verdict: refused, why: "waits for the request body before choosing a server; 408 on slow bodies", words: "http-buffer-request"},
	{verdict: refused, why: "proxy requests and Proxy-Connection header", words: "http-use-proxy-header"},
	{verdict: refused, why: "connection mode: Tether keeps connections open and shares server connections", words: "http-server-close httpclose"},
	{verdict: refused, why: "adds a header to requests", words: "originalto"},
	{verdict: refused, why: "transparent proxying to the client's destination", words: "transparent"},
	{verdict: refused, why: whyHealth, words: "tcp-check ldap-check mysql-check pgsql-check redis-check smtpchk spop-check ssl-hello-chk external-check"},
	{verdict: refused, why: "deletes or refuses request headers with unusual names", words: "http-restrict-req-hdr-names"},
	{verdict: warned, why: whyLogging, words: "contstats socket-stats dontlog-normal httpslog tcplog log-health-checks log-separate-errors logasap"},
	{verdict: warned, why: "TCP keep-alive tuning", words: "clitcpka srvtcpka tcpka"},
	{verdict: warned, why: whySocketTune, words: "http-no-delay nolinger splice-auto splice-request splice-response tcp-smart-accept tcp-smart-connect independent-streams"},
	{verdict: warned, why: "Tether abandons a request whose client has gone", words: "abortonclose"},
	{verdict: warned, why: "letter case of HTTP/1 header names", words: "h1-case-adjust-bogus-client h1-case-adjust-bogus-server"},
	{verdict: warned, why: "Tether does not accept HTTP/2 on clear-text connections anyway", words: "disable-h2-upgrade"},
	{verdict: warned, why: "empty connections are not logged or answered", words: "http-ignore-probes"},
	{verdict: warned, why: "only used with the refused connection modes", words: "http-pretend-keepalive"},
	{verdict: warned, why: "process management on soft stop", words: "idle-close-on-response"},
	{verdict: accepted, why: "the default connection mode", words: "http-keep-alive"},
}

// bindParams are the bind parameters of HAProxy 2.6 (as built by Debian).
// Tether implements none on bind lines; on "stats socket" lines it
// implements mode, level and severity-output (see statsParams).
var bindParams = keywordTable{
	{verdict: refused, why: whyTLSBind, args: 0, words: `
		allow-0rtt force-sslv3 force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13
		generate-certificates no-ca-names no-sslv3 no-tlsv10 no-tlsv11 no-tlsv12
		no-tlsv13 prefer-client-ciphers`},
	{verdict: refused, why: whyTLSBind, args: 1, words: `
		ca-ignore-err ca-sign-file ca-sign-pass ca-verify-file
		crl-file crt-ignore-err curves ecdhe npn tls-ticket-keys`},
	{verdict: refused, why: whyProxyProto, args: 0, words: "accept-proxy"},
	{verdict: refused, why: "NetScaler client IP insertion: the peer's framing would be misread", args: 1, words: "accept-netscaler-cip"},
	{verdict: refused, why: "which addresses and interfaces accept clients", args: 0, words: "transparent v6only"},
	{verdict: refused, why: "which addresses and interfaces accept clients", args: 1, words: "interface namespace"},
	{verdict: refused, why: "forces a protocol (HTTP/2) on the listener", args: 1, words: "proto"},
	{verdict: refused, why: "per-listener connection limit", args: 1, words: "maxconn"},
	{verdict: warned, why: "listener tuning", args: 0, words: "defer-accept tfo"},
	{verdict: warned, why: "listener tuning", args: 1, words: "backlog mss tcp-ut nice"},
	{verdict: warned, why: "names and numbers shown by HAProxy's statistics", args: 1, words: "id name"},
	{verdict: warned, why: "threads and processes", args: 1, words: "process thread shards"},
	{verdict: warned, why: "Runtime API settings, used only on stats sockets", args: 1, words: "expose-fd level severity-output"},
	{verdict: warned, why: "owner and mode of UNIX listeners, which are refused", args: 1, words: "gid group mode uid user"},
	{verdict: accepted, why: "Tether's IPv6 wildcard listeners accept IPv4 too", args: 0, words: "v4v6"},
}

// statsParams overrides bindParams on "stats socket" lines; mode, level and
// severity-output are implemented there.
var statsParams = keywordTable{
	{verdict: refused, why: "owner of the Runtime API socket", args: 1, words: "gid group uid user"},
	{verdict: warned, why: "file-descriptor passing across reloads", args: 1, words: "expose-fd"},
}

// serverParams are the server and default-server parameters of HAProxy 2.6
// that Tether does not implement. "source" (one argument, then optional
// "usesrc" and "interface" pairs) is refused apart.
var serverParams = keywordTable{
	{verdict: refused, why: whyTLSServer, args: 0, words: `
		allow-0rtt force-sslv3 force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13
		no-sslv3 no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 no-ssl-reuse ssl-reuse no-tls-tickets
		tls-tickets`},
	{verdict: refused, why: whyTLSServer, args: 1, words: `
		alpn check-alpn check-sni ciphers ciphersuites crl-file npn ssl-max-ver ssl-min-ver verifyhost`},
	{verdict: refused, why: whyProxyProto, args: 0, words: "send-proxy send-proxy-v2 send-proxy-v2-ssl send-proxy-v2-ssl-cn check-send-proxy"},
	{verdict: refused, why: whyProxyProto, args: 1, words: "proxy-v2-options"},
	{verdict: refused, why: "how server connections are made: SOCKS4, namespace, protocol", args: 0, words: "check-via-socks4"},
	{verdict: refused, why: "how server connections are made: SOCKS4, namespace, protocol", args: 1, words: "socks4 namespace proto ws"},
	{verdict: refused, why: whyHealth, args: 0, words: "agent-check"},
	{verdict: refused, why: whyHealth, args: 1, words: `
		addr agent-addr agent-inter agent-port agent-send check-proto track observe on-error
		on-marked-down on-marked-up error-limit`},
	{verdict: refused, why: "queue and connection limits", args: 1, words: "maxqueue minconn"},
	{verdict: refused, why: "redirects clients to the server", args: 1, words: "redir"},
	{verdict: refused, why: "which resolved address is used", args: 1, words: "resolve-net"},
	{verdict: warned, why: "weight ramp-up of a recovering server: tuning", args: 1, words: "slowstart"},
	{verdict: warned, why: "numbers shown by HAProxy's statistics", args: 1, words: "id"},
	{verdict: warned, why: "connection pool tuning", args: 1, words: "pool-low-conn tcp-ut"},
	{verdict: accepted, why: "HAProxy 2.6 applies it to HTTP/2 server connections only; Tether's are HTTP/1.1", args: 1, words: "max-reuse"},
	{verdict: warned, why: "connection tuning", args: 0, words: "tfo"},
	{verdict: warned, why: "stick tables are refused", args: 0, words: "non-stick stick"},
	{verdict: warned, why: "log servers of ring sections", args: 1, words: "log-proto"},
	{verdict: accepted, why: "restores the default, Tether's behaviour", args: 0, words: `
		no-send-proxy no-send-proxy-v2 no-send-proxy-v2-ssl
		no-send-proxy-v2-ssl-cn no-check-send-proxy no-agent-check no-tfo`},
}

// otherSections are HAProxy section keywords whose content Tether ignores,
// with one warning on the section line: what they define is used only by
// directives Tether refuses or by logging.
var otherSections = keywordTable{
	{verdict: warned, why: "used only by refused directives: stick tables, auth rules, error pages, caches, FastCGI", words: "peers userlist http-errors cache fcgi-app"},
	{verdict: warned, why: "notifications and logging", words: "mailers ring log-forward"},
	{verdict: warned, why: "process management", words: "program"},
}

// timeoutNames are the "timeout" names Tether implements.
const timeoutNames = `
	client server connect check queue http-keep-alive http-request tunnel client-fin server-fin
`

// timeoutKeywords are the "timeout" names of HAProxy 2.6 that Tether does
// not implement.
var timeoutKeywords = keywordTable{
	{verdict: warned, why: "used only by http-request tarpit, which is refused", words: "tarpit"},
}

// httpCheckKeywords are the "http-check" directives Tether does not
// implement; "expect status N" and "send meth/uri/ver" are implemented.
var httpCheckKeywords = keywordTable{
	{verdict: refused, why: whyHealth, words: "connect disable-on-404 send-state set-var set-var-fmt unset-var"},
	{verdict: warned, why: "a comment for logs", words: "comment"},
}

// detailRows document the verdicts that depend on a keyword's arguments;
// the parser applies them in parseBalance, parseHashType, parseHTTPReuse,
// parseRetryOn, parseOption and parseHTTPCheck.
var detailRows = []docRow{
	{"global", "stats bind-process", warned, "process management"},
	{"proxy", "balance uri | url_param | hdr | rdp-cookie | hash", refused, "hash-based server choice Tether does not implement"},
	{"proxy", "balance random(N), N other than 2", refused, "Tether draws two servers"},
	{"proxy", "hash-type consistent, avalanche", refused, "another server choice for balance source"},
	{"proxy", "hash-type map-based [function]", accepted, "Tether's hashing for balance source"},
	{"proxy", "http-reuse never", refused, "Tether shares idle server connections between clients"},
	{"proxy", "http-reuse safe | aggressive | always", warned, "connection reuse tuning"},
	{"proxy", "retry-on other than conn-failure", refused, "Tether retries only failed connections"},
	{"proxy", "retry-on conn-failure", accepted, "what Tether does"},
	{"option", "forwardfor except | header | if-none", accepted, "as HAProxy: the backend's header name over the frontend's, either's except network"},
	{"option", "http-restrict-req-hdr-names preserve", accepted, "the default"},
	{"http-check", "expect (other than status N)", refused, whyHealth},
	{"http-check", "expect status N with options", refused, whyHealth},
	{"http-check", "send hdr | body | body-lf | uri-lf", refused, whyHealth},
	{"http-check", "send comment", warned, "a comment for logs"},
	{"server", "source, usesrc, interface", refused, "source address of server connections"},
	{"server", "resolve-opts ignore-weight", refused, "DNS SRV weights would be ignored"},
}

// docRow is one row of the keyword documentation.
type docRow struct {
	scope, keyword string
	verdict        verdict
	why            string
}

// hasWord reports whether w is one of the space-separated words of list.
func hasWord(list, w string) bool {
	if w == "" {
		return false
	}
	for from := 0; from < len(list); {
		i := strings.Index(list[from:], w)
		if i < 0 {
			return false
		}
		start, end := from+i, from+i+len(w)
		if (start == 0 || isSpace(list[start-1])) && (end == len(list) || isSpace(list[end])) {
			return true
		}
		from = start + 1
	}
	return false
}

// implementedServerKeywords0 and implementedServerKeywords1 are the server
// keywords Tether acts on, taking no argument and one argument. They also
// spot a server line whose address is missing ("server web1 check").
const implementedServerKeywords0 = `
	backup no-backup check no-check disabled enabled ssl no-ssl check-ssl no-check-ssl
`

const implementedServerKeywords1 = `
	cookie downinter fall fastinter init-addr inter maxconn port resolve-opts resolve-prefer
	resolvers rise weight verify ca-file sni crt pool-max-conn pool-purge-delay
`

// serverKeyword returns how a server keyword is handled: its argument
// count, and either implemented, or the group that classifies it; known is
// false for keywords HAProxy does not know.
func serverKeyword(kw string) (n int, implemented bool, g keywordGroup, known bool) {
	switch {
	case hasWord(implementedServerKeywords0, kw):
		return 0, true, g, true
	case hasWord(implementedServerKeywords1, kw):
		return 1, true, g, true
	case kw == "source":
		return 1, false, keywordGroup{verdict: refused, why: "source address of server connections"}, true
	}
	g, known = serverParams.lookup(kw)
	return g.args, false, g, known
}

// isServerKeyword reports whether w is any server keyword HAProxy knows.
func isServerKeyword(w string) bool {
	_, _, _, known := serverKeyword(w)
	return known
}
