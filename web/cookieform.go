package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
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
		f.MaxIdle = haDuration(c.MaxIdle)
	}
	if c.MaxLife > 0 {
		f.MaxLife = haDuration(c.MaxLife)
	}
	return f
}

// parseHATime parses a time as HAProxy does: a number with an optional unit
// us, ms, s, m, h or d; no unit means seconds for maxidle and maxlife.
func parseHATime(s string) (time.Duration, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 9 {
		return 0, false
	}
	n, _ := strconv.ParseInt(s[:i], 10, 64)
	unit := map[string]time.Duration{"": time.Second, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	u, ok := unit[s[i:]]
	if !ok {
		return 0, false
	}
	return time.Duration(n) * u, true
}

// cookieWords checks a submitted cookie form with HAProxy's rules for the
// cookie line and returns the line's words (without "cookie"), or the
// message HAProxy's parser gives for the first problem.
func cookieWords(f templates.CookieForm) ([]string, string) {
	if f.Name == "" {
		return nil, "'cookie' expects <cookie_name> as argument."
	}
	if !validCookieName(f.Name) {
		return nil, "the cookie name '" + f.Name + "' holds characters a cookie name may not have."
	}
	w := []string{f.Name}
	switch f.Mode {
	case "", "insert", "rewrite", "prefix":
		if f.Mode != "" {
			w = append(w, f.Mode)
		}
	default:
		return nil, "cookie mode must be rewrite, insert or prefix."
	}
	if f.Mode == "rewrite" && f.Indirect {
		return nil, "cookie 'rewrite' mode is incompatible with the 'indirect' option."
	}
	if f.Preserve && f.Mode != "insert" && !f.Indirect {
		return nil, "cookie 'preserve' requires at least 'insert' or 'indirect'."
	}
	for _, o := range []struct {
		on   bool
		word string
	}{{f.Indirect, "indirect"}, {f.NoCache, "nocache"}, {f.PostOnly, "postonly"}, {f.Preserve, "preserve"},
		{f.HTTPOnly, "httponly"}, {f.Secure, "secure"}} {
		if o.on {
			w = append(w, o.word)
		}
	}
	for _, d := range strings.Fields(f.Domains) {
		if !validDomain(d) {
			return nil, "cookie 'domain' '" + d + "' holds invalid characters."
		}
		w = append(w, "domain", d)
	}
	for _, t := range []struct{ name, v string }{{"maxidle", f.MaxIdle}, {"maxlife", f.MaxLife}} {
		if t.v == "" {
			continue
		}
		if _, ok := parseHATime(t.v); !ok {
			return nil, "cookie '" + t.name + "' expects a time, e.g. 30m or 8h; got '" + t.v + "'."
		}
		w = append(w, t.name, t.v)
	}
	if f.Dynamic {
		w = append(w, "dynamic")
	}
	for _, a := range strings.Split(f.Attrs, "\n") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if strings.ContainsAny(a, ";") || strings.IndexFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return nil, "cookie 'attr' '" + a + "' may not hold control characters or ';'."
		}
		w = append(w, "attr", a)
	}
	return w, ""
}

func validCookieName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return s != ""
}

func validDomain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return s != ""
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
		words, problem := cookieWords(f)
		if problem == "" {
			esc := make([]string, len(words))
			for i, wd := range words {
				esc[i] = cliEscape(wd)
			}
			fl := s.execute(r, cmd("set cookie backend "+be+" "+strings.Join(esc, " ")))
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
