package web

import (
	"regexp"
	"strings"
)

// hidden stands in for what a viewer may not see.
const hidden = "‹hidden›"

var (
	// ipv4 matches an IPv4 address, with a port when one follows.
	ipv4 = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b`)
	// ipv6 matches an IPv6 address, bracketed or bare, with a port after
	// brackets. It also hides clock times, which a viewer can spare.
	ipv6 = regexp.MustCompile(`\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\](?::\d+)?|\b[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}\b`)
	// serverCookie matches a server's cookie value after the word cookie
	// ("add server b/s 10.0.0.1:80 cookie s1", "cookie s1 → s2").
	serverCookie = regexp.MustCompile(`\bcookie\s+(?:=\s*)?([^\s,;]+)(\s*→\s*[^\s,;]+)?`)
)

// redactForViewer hides addresses and server cookie values in audit text,
// which HAProxy's user level does not show either. The words of a cookie
// line ("set cookie backend …") are settings, not values, and stay.
func redactForViewer(s string) string {
	if s == "" {
		return s
	}
	s = ipv4.ReplaceAllString(s, hidden)
	s = ipv6.ReplaceAllString(s, hidden)
	return serverCookie.ReplaceAllStringFunc(s, func(m string) string {
		sub := serverCookie.FindStringSubmatch(m)
		word, next := sub[1], sub[2]
		if word == "backend" || word == "key" || word == hidden || strings.HasPrefix(word, "'") {
			return m
		}
		out := strings.TrimSuffix(strings.TrimSuffix(m, next), word) + hidden
		if next != "" {
			out += " → " + hidden
		}
		return out
	})
}
