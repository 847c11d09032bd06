package haproxycfg

import "strings"

// This file lists HAProxy 2.6 keywords that Tether knows but does not act on,
// so that a valid HAProxy file gets a warning for them rather than an
// "unknown keyword" error. Keywords missing from every list are errors, as in
// HAProxy. The lists are space-separated words, looked up with hasWord.

// quietGlobal are process-level global keywords that change nothing about
// what Tether serves or how; they are accepted without a warning:
// daemon, master-worker, nbthread, user, group, uid, gid, pidfile, chroot,
// ulimit-n, quiet, zero-warning, ca-base, crt-base, node, description,
// localpeer, expose-experimental-directives, insecure-fork-wanted.
const quietGlobal = `
	daemon master-worker nbthread user group uid gid pidfile chroot ulimit-n quiet
	zero-warning ca-base crt-base node description localpeer expose-experimental-directives
	insecure-fork-wanted
`

// warnGlobal are other global keywords HAProxy 2.6 knows; Tether ignores them
// with a warning.
const warnGlobal = `
	maxconn log log-send-hostname log-tag setenv presetenv unsetenv resetenv hard-stop-after
	grace maxconnrate maxcomprate maxcompcpuusage maxpipes maxsessrate maxsslconn maxsslrate
	maxzlibmem noepoll nokqueue noevports nopoll nosplice nogetaddrinfo noreuseport
	profiling.tasks profiling.memory spread-checks max-spread-checks server-state-base
	server-state-file stats busy-polling set-dumpable strict-limits cpu-map thread-groups
	thread-group numa-cpu-mapping external-check lua-load lua-load-per-thread lua-prepend-path
	h1-case-adjust h1-case-adjust-file h2-workaround-bogus-websocket-clients
	issuers-chain-path pp2-never-send-local unix-bind set-var set-var-fmt
	httpclient.resolvers.disabled httpclient.resolvers.id httpclient.resolvers.prefer
	httpclient.ssl.ca-file httpclient.ssl.verify httpclient.retries httpclient.timeout.connect
	fd-hard-limit anonkey cluster-secret default-path stats-file wurfl-data-file
	wurfl-information-list wurfl-information-list-separator wurfl-cache-size
	deviceatlas-json-file deviceatlas-log-level deviceatlas-separator
	deviceatlas-properties-cookie 51degrees-data-file 51degrees-property-name-list
	51degrees-property-separator 51degrees-cache-size ssl-engine ssl-mode-async
	ssl-server-verify ssl-dh-param-file ssl-load-extra-files ssl-load-extra-del-ext
	ssl-skip-self-issued-ca ssl-propquery ssl-provider ssl-provider-path mworker-max-reloads
	quick-exit no-memory-trimming
`

// proxyKeywords are the proxy-section keywords of HAProxy 2.6 that Tether
// does not implement; they are warned about. "option", "timeout", "http-check"
// and the implemented keywords are handled separately.
const proxyKeywords = `
	acl backlog bind-process capture clitcpka-cnt clitcpka-idle clitcpka-intvl srvtcpka-cnt
	srvtcpka-idle srvtcpka-intvl compression declare description disabled enabled dispatch
	email-alert errorfile errorfiles errorloc errorloc302 errorloc303 error-log-format
	force-persist filter fullconn grace hash-type hash-balance-factor http-after-response
	http-error http-request http-response http-reuse http-send-name-header ignore-persist
	load-server-state-from-file log log-format log-format-sd log-tag max-keep-alive-queue
	max-session-srv-conns maxconn monitor monitor-uri persist rate-limit redirect retry-on
	server-state-file-name source stats stick stick-table tcp-check tcp-request tcp-response
	unique-id-format unique-id-header use_backend use-fcgi-app use-server external-check guid
`

// proxyOptions are "option" names of HAProxy 2.6 that Tether does not
// implement; they are warned about.
const proxyOptions = `
	abortonclose accept-invalid-http-request accept-invalid-http-response allbackups
	checkcache clitcpka contstats disable-h2-upgrade dontlog-normal dontlognull
	h1-case-adjust-bogus-client h1-case-adjust-bogus-server http-buffer-request
	http-ignore-probes http-keep-alive http-no-delay http-pretend-keepalive
	http-restrict-req-hdr-names http-server-close http-use-proxy-header httpclose httplog
	httpslog idle-close-on-response independent-streams ldap-check external-check
	log-health-checks log-separate-errors logasap mysql-check nolinger originalto pgsql-check
	prefer-last-server redis-check smtpchk socket-stats splice-auto splice-request
	splice-response spop-check srvtcpka ssl-hello-chk tcp-check tcp-smart-accept
	tcp-smart-connect tcpka tcplog transparent http-drop-request-trailers
	http-drop-response-trailers
`

// timeoutNames are the "timeout" names HAProxy 2.6 accepts in proxies.
const timeoutNames = `
	client server connect check queue http-keep-alive http-request tarpit tunnel client-fin
	server-fin
`

// otherSections are HAProxy section keywords whose content Tether ignores
// (with one warning on the section line).
const otherSections = `
	peers userlist mailers program http-errors ring cache fcgi-app
`

// serverKeywords0 and serverKeywords1 are the server and default-server
// keywords of HAProxy 2.6 that Tether does not implement, taking no argument
// and one argument. "source" (one argument, then optional "usesrc" and
// "interface" pairs) is handled apart. They are warned about.
const serverKeywords0 = `
	agent-check allow-0rtt check-send-proxy check-ssl check-via-socks4 force-sslv3
	force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13 no-agent-check no-check-ssl
	no-send-proxy no-send-proxy-v2 no-send-proxy-v2-ssl no-send-proxy-v2-ssl-cn no-ssl
	no-ssl-reuse no-sslv3 no-tfo no-tls-tickets no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13
	no-verifyhost no-check-send-proxy non-stick send-proxy send-proxy-v2 send-proxy-v2-ssl
	send-proxy-v2-ssl-cn ssl ssl-reuse stick tfo tls-tickets
`

const serverKeywords1 = `
	addr agent-addr agent-inter agent-port agent-send alpn ca-file check-alpn check-proto
	check-sni ciphers ciphersuites client-sigalgs crl-file crt curves error-limit hash-key id
	max-reuse maxqueue minconn namespace npn observe on-error on-marked-down on-marked-up
	pool-low-conn pool-max-conn pool-purge-delay proto proxy-v2-options redir resolve-net
	shard sigalgs slowstart sni socks4 ssl-max-ver ssl-min-ver tcp-ut track usesrc verify
	verifyhost ws
`

// implementedServerKeywords0 and implementedServerKeywords1 are the server
// keywords Tether acts on, taking no argument and one argument. They also
// spot a server line whose address is missing ("server web1 check").
const implementedServerKeywords0 = `
	backup no-backup check no-check disabled enabled
`

const implementedServerKeywords1 = `
	cookie downinter fall fastinter init-addr inter maxconn port resolve-opts resolve-prefer
	resolvers rise weight
`

// bindKeywords0 and bindKeywords1 are the bind (and "stats socket")
// parameters of HAProxy 2.6 taking no argument and one argument. Tether acts
// on none of them for "bind" and on mode, level and severity-output for
// "stats socket".
const bindKeywords0 = `
	accept-proxy allow-0rtt defer-accept force-sslv3 force-tlsv10 force-tlsv11 force-tlsv12
	force-tlsv13 generate-certificates no-ca-names no-sslv3 no-tls-tickets no-tlsv10 no-tlsv11
	no-tlsv12 no-tlsv13 prefer-client-ciphers quic-force-retry ssl strict-sni tfo transparent
	v4v6 v6only
`

const bindKeywords1 = `
	accept-netscaler-cip alpn backlog ca-file ca-ignore-err ca-sign-file ca-sign-pass
	ca-verify-file ciphers ciphersuites client-sigalgs crl-file crt crt-ignore-err crt-list
	curves ecdhe expose-fd gid group id interface level maxconn mode mss name namespace nice
	npn process proto quic-cc-algo severity-output sigalgs ssl-max-ver ssl-min-ver tcp-ut
	thread tls-ticket-keys uid user verify
`

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

// knownGlobal reports whether kw is a global keyword HAProxy 2.6 accepts.
func knownGlobal(kw string) bool {
	if hasWord(quietGlobal, kw) || hasWord(warnGlobal, kw) {
		return true
	}
	for _, p := range []string{"tune.", "ssl-default-", "ssl-security-", "debug."} {
		if strings.HasPrefix(kw, p) {
			return true
		}
	}
	return false
}

// serverKeywordArgs returns how many arguments the server keyword kw takes,
// and whether Tether implements it; known is false for unknown keywords.
func serverKeywordArgs(kw string) (n int, implemented, known bool) {
	switch {
	case hasWord(implementedServerKeywords0, kw):
		return 0, true, true
	case hasWord(implementedServerKeywords1, kw):
		return 1, true, true
	case hasWord(serverKeywords0, kw):
		return 0, false, true
	case hasWord(serverKeywords1, kw), kw == "source":
		return 1, false, true
	}
	return 0, false, false
}

// isServerKeyword reports whether w is any server keyword HAProxy knows.
func isServerKeyword(w string) bool {
	_, _, known := serverKeywordArgs(w)
	return known
}

// bindKeywordArgs returns how many arguments the bind parameter kw takes,
// and false when HAProxy does not know it.
func bindKeywordArgs(kw string) (int, bool) {
	switch {
	case hasWord(bindKeywords0, kw):
		return 0, true
	case hasWord(bindKeywords1, kw):
		return 1, true
	}
	return 0, false
}
