package haproxycfg

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// parseUint reads a plain non-negative decimal integer no larger than max.
func parseUint(s string, max int) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > max {
		return 0, false
	}
	return n, true
}

// parseInt reads a decimal integer with an optional sign, within ±max.
func parseInt(s string, max int) (int, bool) {
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	n, ok := parseUint(s, max)
	if neg {
		n = -n
	}
	return n, ok
}

// parsePort reads a TCP port, 1..65535.
func parsePort(s string) (int, bool) {
	n, ok := parseUint(s, 65535)
	return n, ok && n > 0
}

// unsupportedFamily reports whether addr names a socket family Tether
// cannot use for a TCP connection (UNIX sockets, abstract namespace, fds).
func unsupportedFamily(addr string) (string, bool) {
	if strings.HasPrefix(addr, "/") {
		return "UNIX socket", true
	}
	if at := strings.IndexByte(addr, '@'); at > 0 {
		switch p := addr[:at]; p {
		case "ipv4", "ipv6", "tcp", "tcp4", "tcp6":
			return "", false
		default:
			return "'" + p + "@'", true
		}
	}
	return "", false
}

// hostPort is an address split the way HAProxy's str2sa_range splits it.
type hostPort struct {
	Host    string // IP literal (IPv6 without brackets) or host name; "" for any
	Port    int
	PortSet bool
	// Family is "ipv4" or "ipv6" when forced by a prefix, else "".
	Family string
}

// splitHostPort splits "[PREFIX@]HOST[:PORT]" the HAProxy way: the port is
// after the last colon unless the host is in brackets. A bare IPv6 address
// needs brackets or a trailing port. An empty port ("h:") means no port.
func splitHostPort(addr string) (hostPort, error) {
	var hp hostPort
	if at := strings.IndexByte(addr, '@'); at > 0 {
		switch p := addr[:at]; p {
		case "ipv4", "tcp4":
			hp.Family = "ipv4"
		case "ipv6", "tcp6":
			hp.Family = "ipv6"
		case "tcp":
		default:
			return hp, fmt.Errorf("address family '%s@' is not supported", p)
		}
		addr = addr[at+1:]
	}
	host, port := addr, ""
	if strings.HasPrefix(addr, "[") {
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return hp, fmt.Errorf("missing ']' in address '%s'", addr)
		}
		host = addr[1:end]
		rest := addr[end+1:]
		switch {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			port = rest[1:]
		default:
			return hp, fmt.Errorf("unexpected '%s' after ']' in address '%s'", rest, addr)
		}
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return hp, fmt.Errorf("invalid IPv6 address '%s'", host)
		}
	} else if c := strings.LastIndexByte(addr, ':'); c >= 0 {
		host, port = addr[:c], addr[c+1:]
		if strings.Contains(host, ":") {
			if _, err := netip.ParseAddr(host); err != nil {
				return hp, fmt.Errorf("invalid address '%s' (write IPv6 addresses as [ADDR]:PORT)", addr)
			}
		}
	}
	if port != "" {
		if port[0] == '+' || port[0] == '-' {
			return hp, fmt.Errorf("port offsets ('%s') are not supported", port)
		}
		if strings.Contains(port, "-") {
			return hp, fmt.Errorf("port ranges ('%s') are not supported", port)
		}
		p, ok := parsePort(port)
		if !ok {
			return hp, fmt.Errorf("invalid port '%s'", port)
		}
		hp.Port, hp.PortSet = p, true
	}
	if host == "*" {
		host = ""
	}
	if host != "" {
		ip, err := netip.ParseAddr(host)
		switch {
		case err == nil:
			if ip.Zone() != "" {
				return hp, fmt.Errorf("scoped IPv6 address '%s' is not supported", host)
			}
			if hp.Family == "ipv4" && !ip.Is4() || hp.Family == "ipv6" && !ip.Is6() {
				return hp, fmt.Errorf("address '%s' is not an %s address", host, hp.Family)
			}
			host = ip.String()
		case !validHostName(host):
			return hp, fmt.Errorf("invalid address '%s'", host)
		}
	}
	hp.Host = host
	return hp, nil
}

// validHostName reports whether h may be a DNS name: letters, digits, '-',
// '_' and '.', not empty.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// joinHostPort writes host and port in the form both HAProxy and Go's net
// package accept: "h:p", "[v6]:p", ":p" for any address.
func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// invalidChar returns the first character of s that HAProxy's invalid_char
// refuses in proxy, server and section names ([A-Za-z0-9_.:-] are allowed),
// or 0 and false when s is fine.
func invalidChar(s string) (byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || isDigit(c) || c == '_' || c == '.' || c == ':' || c == '-') {
			return c, true
		}
	}
	return 0, false
}

// invalidDomainChar is HAProxy's invalid_domainchar: [A-Za-z0-9_.-] only.
func invalidDomainChar(s string) (byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || isDigit(c) || c == '_' || c == '.' || c == '-') {
			return c, true
		}
	}
	return 0, false
}

// invalidPrefixChar is the check HAProxy applies to server-template prefixes.
func invalidPrefixChar(s string) (byte, bool) { return invalidDomainChar(s) }

// atoi32 reads s the way HAProxy reads an "id": C's atol (leading spaces,
// an optional sign, then digits up to the first other character; 0 when
// there are none; saturated at the 64-bit limits), stored in a 32-bit int.
func atoi32(s string) int {
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var n uint64
	overflow := false
	for ; i < len(s) && isDigit(s[i]); i++ {
		if n > (1<<63)/10 || (n == (1<<63)/10 && uint64(s[i]-'0') > (1<<63)%10) {
			overflow = true
			continue
		}
		n = n*10 + uint64(s[i]-'0')
	}
	var v int64
	switch {
	case overflow && neg:
		v = math.MinInt64
	case overflow, !neg && n > math.MaxInt64:
		v = math.MaxInt64
	case neg:
		v = -int64(n)
	default:
		v = int64(n)
	}
	return int(int32(v))
}

// badNumericHost reports whether host is written in digits and dots only
// but is no IPv4 address in any of the forms getaddrinfo accepts (a.b.c.d,
// a.b.c, a.b, a; octal with a leading 0): HAProxy fails to resolve such a host and rejects the
// line, where a real host name would be looked up.
func badNumericHost(host string) bool {
	if host == "" || strings.Trim(host, "0123456789.") != "" {
		return false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return true
	}
	for i, part := range parts {
		limit := uint64(255)
		if i == len(parts)-1 {
			// The last part fills the remaining bytes.
			limit = 1<<(8*(5-len(parts))) - 1
		}
		// Base 0: a leading 0 makes the part octal, as for inet_aton.
		n, err := strconv.ParseUint(part, 0, 64)
		if part == "" || err != nil || n > limit {
			return true
		}
	}
	return false
}
