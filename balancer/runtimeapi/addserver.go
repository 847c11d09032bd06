package runtimeapi

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
)

// serverKeywords are HAProxy 2.6's server keywords, used to tell an
// unknown keyword from one refused for dynamic servers and to suggest the
// closest one, as HAProxy does.
var serverKeywords = strings.Fields(`addr agent-addr agent-check agent-inter agent-port
	agent-send allow-0rtt alpn backup ca-file check check-alpn check-proto check-send-proxy
	check-sni check-ssl check-via-socks4 ciphers ciphersuites cookie crl-file crt disabled
	downinter enabled error-limit fall fastinter force-sslv3 force-tlsv10 force-tlsv11
	force-tlsv12 force-tlsv13 id init-addr inter log-proto max-reuse maxconn maxqueue minconn
	namespace no-agent-check no-backup no-check no-check-ssl no-send-proxy no-send-proxy-v2
	no-send-proxy-v2-ssl no-send-proxy-v2-ssl-cn no-ssl no-ssl-reuse no-sslv3 no-tfo
	no-tls-tickets no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 no-verifyhost non-stick npn observe
	on-error on-marked-down on-marked-up pool-low-conn pool-max-conn pool-purge-delay port proto
	proxy-v2-options redir resolve-net resolve-opts resolve-prefer resolvers rise send-proxy
	send-proxy-v2 send-proxy-v2-ssl send-proxy-v2-ssl-cn slowstart sni socks4 source ssl
	ssl-max-ver ssl-min-ver ssl-reuse stick tcp-ut tfo tls-tickets track verify verifyhost
	weight ws`)

// dynamicRefused are keywords HAProxy 2.6 refuses on "add server".
var dynamicRefused = map[string]bool{
	"init-addr": true, "resolvers": true, "resolve-net": true, "resolve-opts": true,
	"resolve-prefer": true, "namespace": true, "redir": true, "error-limit": true,
	"on-error": true, "on-marked-down": true, "on-marked-up": true, "observe": true,
	"max-reuse": true, "tcp-ut": true,
}

// bestServerKeyword returns the closest server keyword to word, or "".
func bestServerKeyword(word string) string {
	var ws, ls fingerprint
	ws.update(word)
	best, bestDist := "", int(^uint(0)>>1)
	for _, kw := range serverKeywords {
		ls = fingerprint{}
		ls.update(kw)
		if d := ws.distance(&ls); d < bestDist {
			best, bestDist = kw, d
		}
	}
	if bestDist > 2*len(word) || bestDist > 2*len(best) {
		return ""
	}
	return best
}

// cmdAddServer implements "add server B/S ADDR[:PORT] [kw ...]" with HAProxy
// 2.6's checks and messages. The server starts in maintenance with its
// checks disabled, like HAProxy's dynamic servers.
func cmdAddServer(c *call) {
	beName, srvName, found := strings.Cut(c.arg(2), "/")
	if !found || srvName == "" || beName == "" {
		c.err("Require 'backend/server'.")
		return
	}
	snap := c.d.b.Snapshot()
	be := backendByName(snap, beName)
	if be == nil {
		c.err("No such backend.")
		return
	}
	if !be.Config.Balance.Dynamic() {
		c.err("Backend must use a dynamic load balancing to support dynamic servers.")
		return
	}
	for i := 0; i < len(srvName); i++ {
		ch := srvName[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-_.:", ch) >= 0) {
			c.err(fmt.Sprintf("character '%c' is not permitted in server name '%s'.\n", ch, srvName))
			return
		}
	}
	if c.arg(3) == "" {
		c.err("'server' expects <name> and <addr>[:<port>] as arguments.\n")
		return
	}
	srv := balancer.Server{Name: srvName, Weight: 1, Rise: 2, Fall: 3, Inter: 2 * time.Second}
	if msg := parseServerAddr(c.arg(3), &srv); msg != "" {
		c.err(msg)
		return
	}
	for i := 4; i < len(c.args); i++ {
		kw := c.args[i]
		next := c.arg(i + 1)
		var msg string
		switch kw {
		case "weight":
			i++
			w := atoi(next)
			if w < 0 || w > 256 {
				msg = fmt.Sprintf("weight of server %s is not within 0 and 256 (%d)..\n", srvName, w)
			}
			srv.Weight = w
		case "maxconn":
			i++
			srv.MaxConn = atoi(next)
		case "pool-max-conn":
			i++
			if srv.IdlePool.MaxIdle, srv.IdlePool.MaxIdleSet = atoi(next), true; srv.IdlePool.MaxIdle < -1 {
				msg = "'pool-max-conn' must be >= -1.\n"
			}
		case "pool-purge-delay":
			i++
			d, ok := parseMillis(next)
			if !ok {
				msg = fmt.Sprintf("unexpected character '%c' in argument to <pool-purge-delay>.\n", firstBadTimeChar(next))
			}
			srv.IdlePool.PurgeDelay, srv.IdlePool.PurgeDelaySet = d, true
		case "cookie":
			i++
			srv.Cookie = next
		case "backup":
			srv.Backup = true
		case "no-backup":
			srv.Backup = false
		case "check":
			srv.Check = true
		case "no-check":
			srv.Check = false
		case "disabled":
			srv.Disabled = true
		case "enabled":
			srv.Disabled = false
		case "rise", "fall":
			i++
			n := atoi(next)
			if n <= 0 {
				msg = fmt.Sprintf("'%s' has to be > 0..\n", kw)
			}
			if kw == "rise" {
				srv.Rise = n
			} else {
				srv.Fall = n
			}
		case "port":
			i++
			srv.CheckPort = atoi(next)
		case "inter", "fastinter", "downinter":
			i++
			d, ok := parseMillis(next)
			if !ok {
				msg = fmt.Sprintf("unexpected character '%c' in 'agent-inter' argument of server %s..\n", firstBadTimeChar(next), srvName)
				break
			}
			switch kw {
			case "inter":
				srv.Inter = d
			case "fastinter":
				srv.FastInter = d
			default:
				srv.DownInter = d
			}
		default:
			switch {
			case dynamicRefused[kw]:
				msg = fmt.Sprintf("'%s' option is not accepted for dynamic server\n", kw)
			case contains(serverKeywords, kw):
				msg = fmt.Sprintf("'%s' option is not supported by this server\n", kw)
			default:
				if best := bestServerKeyword(kw); best != "" {
					msg = fmt.Sprintf("unknown keyword '%s'; did you mean '%s' maybe ?\n", kw, best)
				} else {
					msg = fmt.Sprintf("unknown keyword '%s'.\n", kw)
				}
			}
		}
		if msg != "" {
			c.err(msg)
			return
		}
	}
	if serverByName(be, srvName) != nil {
		c.err("Already exists a server with the same name in backend.\n")
		return
	}
	if c.applyReport(balancer.AddServer{Backend: be.Config.Name, Server: srv}) {
		c.msg(sevInfo, "New server registered.\n")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parseServerAddr parses "ADDR[:PORT]", "[IPv6]:PORT" or "ipv4@"/"ipv6@"
// forms into srv, returning HAProxy's message on error.
func parseServerAddr(arg string, srv *balancer.Server) string {
	s := arg
	for _, p := range []string{"ipv4@", "ipv6@"} {
		s = strings.TrimPrefix(s, p)
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 || (end+1 < len(s) && s[end+1] != ':') {
			return fmt.Sprintf("invalid address: '%s'\n", arg)
		}
		host = s[1:end]
		if end+1 < len(s) {
			port = s[end+2:]
		}
	} else if _, err := netip.ParseAddr(s); err != nil {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
	}
	if port != "" {
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return fmt.Sprintf("invalid character '%c' in port number '%s' in '%s'\n\n", port[i], port, arg)
			}
		}
		p, err := strconv.Atoi(port)
		if err != nil || p > 65535 {
			return fmt.Sprintf("invalid port '%s'\n", port)
		}
		srv.Port, srv.PortSet = p, true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.String()
	}
	srv.Address = host
	return ""
}

// parseMillis parses an HAProxy time whose default unit is the millisecond.
func parseMillis(s string) (time.Duration, bool) {
	i := 0
	var v int64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		v = v*10 + int64(s[i]-'0')
		if v > 1<<40 {
			return 0, false
		}
		i++
	}
	if i == 0 {
		return 0, false
	}
	unit := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	d, ok := unit[s[i:]]
	if !ok {
		return 0, false
	}
	return time.Duration(v) * d, true
}

func firstBadTimeChar(s string) byte {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return s[i]
		}
	}
	return 0
}
