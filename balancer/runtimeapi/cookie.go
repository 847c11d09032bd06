package runtimeapi

import (
	"strings"

	"tether/balancer"
)

// cmdSetCookie runs "set cookie backend <bk> <cookie line words...>": the
// words after the backend are a cookie line as in the configuration,
// without the "cookie" keyword, checked by balancer.ParseCookieLine with
// HAProxy's messages.
func cmdSetCookie(c *call) {
	be := c.findBackend(c.d.b.Snapshot(), c.arg(3))
	if be == nil {
		return
	}
	var words []string
	if len(c.args) > 4 {
		words = c.args[4:]
	}
	ck, err := balancer.ParseCookieLine(words)
	if err != nil {
		c.err(err.Error() + "\n")
		return
	}
	c.applyReport(balancer.SetCookie{Backend: be.Config.Name, Cookie: ck})
}

// cmdShowCookie runs "show cookie backend <bk>": the backend's cookie line,
// "cookie" then its words escaped for this command language, or nothing
// when the backend has no cookie line.
func cmdShowCookie(c *call) {
	be := c.findBackend(c.d.b.Snapshot(), c.arg(3))
	if be == nil || be.Config.Cookie == nil {
		return
	}
	words := be.Config.Cookie.Words()
	var b strings.Builder
	b.WriteString("cookie")
	for _, w := range words {
		b.WriteByte(' ')
		b.WriteString(escapeWord(w))
	}
	b.WriteByte('\n')
	c.dump(b.String())
}

// cmdSetMaintWhenIdle runs "set maint-when-idle server <bk>/<srv> on|off":
// a standing, stored request that whoever watches the servers (the
// console) puts the server in maintenance once it has no sessions left.
func cmdSetMaintWhenIdle(c *call) {
	var asked bool
	switch c.arg(4) {
	case "on":
		asked = true
	case "off":
	default:
		c.err("'set maint-when-idle server' expects <bk>/<srv> on|off.\n")
		return
	}
	be, sv := c.findServer(c.d.b.Snapshot(), c.arg(3))
	if sv == nil {
		return
	}
	in := balancer.IdleIntent{Asked: asked}
	if asked {
		in.By, in.From = c.s.origin.Actor, c.s.origin.Source
		if in.By == "" {
			in.By = c.s.origin.Channel
		}
	}
	c.applyReport(balancer.SetMaintWhenIdle{ServerRef: balancer.ServerRef{Backend: be.Config.Name, Server: sv.Config.Name}, Intent: in})
}
