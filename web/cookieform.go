package web

import (
	"net/http"
	"strings"

	"tether/balancer"
	"tether/balancer/runtimeapi"
	"tether/templates"
)

// cookieFormFrom fills the cookie settings form from a backend's settings.
func cookieFormFrom(c *balancer.CookieConfig) templates.CookieForm {
	if c == nil {
		return templates.CookieForm{Name: "SERVERID", Mode: "insert", Indirect: true, NoCache: true}
	}
	f := templates.CookieForm{
		Name: c.Name, Mode: c.Mode.String(), Indirect: c.Indirect, NoCache: c.NoCache, PostOnly: c.PostOnly,
		Preserve: c.Preserve, HTTPOnly: c.HTTPOnly, Secure: c.Secure, Dynamic: c.Dynamic,
		Domains: strings.Join(c.Domains, " "), Attrs: strings.Join(c.Attrs, "\n"),
	}
	if c.MaxIdle > 0 {
		f.MaxIdle = balancer.FormatHAProxyTime(c.MaxIdle)
	}
	if c.MaxLife > 0 {
		f.MaxLife = balancer.FormatHAProxyTime(c.MaxLife)
	}
	return f
}

// cookieFormWords turns a submitted cookie form into the words of a cookie
// line, without checking them: balancer.ParseCookieLine does, with
// HAProxy's rules and messages.
func cookieFormWords(f templates.CookieForm) []string {
	w := []string{f.Name}
	if f.Mode != "" {
		w = append(w, f.Mode)
	}
	for _, o := range []struct {
		on   bool
		word string
	}{{f.Indirect, "indirect"}, {f.NoCache, "nocache"}, {f.PostOnly, "postonly"}, {f.Preserve, "preserve"},
		{f.HTTPOnly, "httponly"}, {f.Secure, "secure"}, {f.Dynamic, "dynamic"}} {
		if o.on {
			w = append(w, o.word)
		}
	}
	for _, d := range strings.Fields(f.Domains) {
		w = append(w, "domain", d)
	}
	if f.MaxIdle != "" {
		w = append(w, "maxidle", f.MaxIdle)
	}
	if f.MaxLife != "" {
		w = append(w, "maxlife", f.MaxLife)
	}
	for _, a := range strings.Split(f.Attrs, "\n") {
		if a = strings.TrimSpace(a); a != "" {
			w = append(w, "attr", a)
		}
	}
	return w
}

// parseCookieForm checks a submitted cookie form with
// balancer.ParseCookieLine and returns the cookie line it stands for, or
// the parser's message (HAProxy's) for the first problem.
func parseCookieForm(f templates.CookieForm) (*balancer.CookieConfig, string) {
	c, err := balancer.ParseCookieLine(cookieFormWords(f))
	if err != nil {
		return nil, err.Error()
	}
	// HAProxy takes any cookie name; a control character cannot be sent in
	// a header nor carried by a Runtime API line.
	if strings.ContainsFunc(c.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, "The cookie name may not hold control characters."
	}
	return c, ""
}

// setCookieCommand is the Runtime API command that sets c on backend be.
func setCookieCommand(be string, c *balancer.CookieConfig) runtimeapi.Command {
	return cmd(append([]string{"set", "cookie", "backend", be}, c.Words()...)...)
}

// handleCookie replaces a backend's cookie line with the Tether extension
// command "set cookie backend <b> <cookie line words>".
func (s *Server) handleCookie() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, _, err := urlNames(r)
		if err != nil {
			return err
		}
		f := templates.CookieForm{
			Name: strings.TrimSpace(r.PostFormValue("name")), Mode: r.PostFormValue("mode"),
			Indirect: r.PostFormValue("indirect") != "", NoCache: r.PostFormValue("nocache") != "",
			PostOnly: r.PostFormValue("postonly") != "", Preserve: r.PostFormValue("preserve") != "",
			HTTPOnly: r.PostFormValue("httponly") != "", Secure: r.PostFormValue("secure") != "",
			Dynamic: r.PostFormValue("dynamic") != "", Domains: r.PostFormValue("domain"),
			MaxIdle: strings.TrimSpace(r.PostFormValue("maxidle")), MaxLife: strings.TrimSpace(r.PostFormValue("maxlife")),
			Attrs: r.PostFormValue("attr"),
		}
		ck, problem := parseCookieForm(f)
		if problem == "" {
			fl := s.execute(r, setCookieCommand(be, ck))
			if strings.HasPrefix(fl.Reply, "Unknown command") {
				fl.Reply = "This Runtime API does not offer the Tether extension \"set cookie backend\"; change the cookie line in the configuration instead."
			}
			if fl.OK || wantsJSON(r) {
				s.respond(w, r, fl, "/backends/"+be)
				return nil
			}
			problem = fl.Reply
		}
		if wantsJSON(r) {
			writeJSON(w, http.StatusUnprocessableEntity, actionReply{OK: false, Message: problem})
			return nil
		}
		return s.rerenderBackend(w, r, be, func(bp *templates.BackendPage) {
			f.Error = problem
			bp.Cookie = f
		})
	})
}
