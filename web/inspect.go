package web

import (
	"net"
	"net/http"
	"strings"
	"time"

	"tether/balancer"
	"tether/templates"
)

// decodeCookieDate decodes one of HAProxy's 5-character cookie dates
// (s30tob64: 30 bits, 6 bits per character from the base64 alphabet, most
// significant first, in 4-second units). ok is false for an invalid or zero
// date, which HAProxy ignores.
func decodeCookieDate(s string) (time.Time, bool) {
	if len(s) != 5 {
		return time.Time{}, false
	}
	var v int64
	for i := 0; i < 5; i++ {
		c := s[i]
		var d int64
		switch {
		case c >= 'A' && c <= 'Z':
			d = int64(c - 'A')
		case c >= 'a' && c <= 'z':
			d = int64(c-'a') + 26
		case c >= '0' && c <= '9':
			d = int64(c-'0') + 52
		case c == '+':
			d = 62
		case c == '/':
			d = 63
		default:
			return time.Time{}, false
		}
		v = v<<6 | d
	}
	if v == 0 {
		return time.Time{}, false
	}
	return time.Unix(v<<2, 0), true
}

// splitCookie separates what a user pasted into the cookie name (if given
// as NAME=VALUE), the value, and for non-prefix modes the |LAST|FIRST
// dates; for prefix mode the application's value after '~'.
type cookieParts struct {
	name, value, app string
	last, first      string
}

func splitCookie(raw string, mode balancer.CookieMode) cookieParts {
	raw = strings.TrimSpace(raw)
	raw = strings.TrimPrefix(raw, "Cookie:")
	raw = strings.TrimPrefix(raw, "Set-Cookie:")
	raw = strings.TrimSpace(raw)
	if i := strings.IndexByte(raw, ';'); i >= 0 {
		raw = raw[:i]
	}
	var p cookieParts
	if name, v, ok := strings.Cut(raw, "="); ok {
		p.name, raw = strings.TrimSpace(name), strings.TrimSpace(v)
	}
	if mode == balancer.CookiePrefix {
		if v, app, ok := strings.Cut(raw, "~"); ok {
			p.value, p.app = v, app
			return p
		}
		p.value = raw
		return p
	}
	parts := strings.Split(raw, "|")
	p.value = parts[0]
	if len(parts) > 1 {
		p.last = parts[1]
	}
	if len(parts) > 2 {
		p.first = parts[2]
	}
	return p
}

// inspectCookie explains what a cookie value means for backend b at now,
// following HAProxy's request-side rules.
func inspectCookie(b *balancer.BackendStatus, raw string, now time.Time) templates.InspectResult {
	ck := b.Config.Cookie
	p := splitCookie(raw, ck.Mode)
	res := templates.InspectResult{Backend: b.Config.Name, CookieName: ck.Name, Mode: ck.Mode.String(),
		Value: p.value, AppValue: p.app}
	if res.Mode == "" {
		res.Mode = "passive"
	}
	for i := range b.Servers {
		if c := b.Servers[i].Cookie; c != "" {
			res.Servers = append(res.Servers, templates.PinChoice{Name: b.Servers[i].Config.Name, Cookie: c})
		}
	}
	res.Pinnable = len(res.Servers) > 0
	last, lastOK := decodeCookieDate(p.last)
	first, firstOK := decodeCookieDate(p.first)
	if lastOK {
		res.LastSeen = last.UTC().Format(time.RFC3339)
	}
	if firstOK {
		res.FirstSeen = first.UTC().Format(time.RFC3339)
	}
	switch {
	case firstOK && ck.MaxLife > 0 && (now.Sub(first) > ck.MaxLife || first.Sub(now) > 24*time.Hour):
		res.Expired = "yes: first seen " + since(first, now) + " ago, longer than maxlife " + balancer.FormatHAProxyTime(ck.MaxLife)
	case lastOK && ck.MaxIdle > 0 && (now.Sub(last) > ck.MaxIdle || last.Sub(now) > 24*time.Hour):
		res.Expired = "yes: idle for " + since(last, now) + ", longer than maxidle " + balancer.FormatHAProxyTime(ck.MaxIdle)
	}
	if p.value == "" {
		res.Outcome = "An empty value is ignored: the request is load-balanced."
		return res
	}
	var down *balancer.ServerStatus
	for i := range b.Servers {
		sv := &b.Servers[i]
		if sv.Cookie != p.value {
			continue
		}
		stopped := !sv.Running()
		if stopped {
			if down == nil {
				down = sv
			}
			continue
		}
		setServer(&res, b.Config.Name, sv)
		switch {
		case res.Expired != "":
			res.Outcome = "The cookie names " + sv.Config.Name + " but is expired: the request is load-balanced and gets a new cookie."
		case sv.Admin&balancer.AdminFDrain != 0 || sv.Weight == 0:
			res.Outcome = "Goes to " + sv.Config.Name + ": it is draining, and a drained server still takes clients pinned to it."
		default:
			res.Outcome = "Goes to " + sv.Config.Name + " (pinned)."
		}
		return res
	}
	if down != nil {
		setServer(&res, b.Config.Name, down)
		switch {
		case res.Expired != "":
			res.Outcome = "The cookie is expired: the request is load-balanced and gets a new cookie."
		case b.Config.Persist:
			res.Outcome = down.Config.Name + " is " + down.StatusText() + ", but option persist sends the request there anyway" + redispatchNote(b.Config)
		default:
			res.Outcome = down.Config.Name + " is " + down.StatusText() + ": the request is redispatched to another server (counted in Redisp) and gets that server's cookie."
		}
		return res
	}
	res.Outcome = "No server has this value: the cookie is invalid (counted in Invalid); the request is load-balanced"
	if ck.Mode == balancer.CookieInsert {
		res.Outcome += " and gets a new cookie."
	} else {
		res.Outcome += "."
	}
	if !b.DynamicCookies() && b.Config.Cookie.Dynamic {
		res.Outcome += " Dynamic cookies are off on this backend, so computed values match nothing."
	}
	return res
}

func redispatchNote(b balancer.Backend) string {
	if b.Redispatch {
		return "; option redispatch moves it elsewhere if the connection fails."
	}
	return "; without option redispatch it fails if the server does not answer."
}

func setServer(res *templates.InspectResult, backend string, sv *balancer.ServerStatus) {
	cls, _ := stateClass(sv)
	res.Server, res.ServerKey, res.Status, res.State, res.Dynamic =
		sv.Config.Name, "s:"+backend+"/"+sv.Config.Name, sv.StatusText(), cls, sv.CookieDynamic
}

func (s *Server) inspectPage(r *http.Request, snap *balancer.Snapshot, backend, value string) templates.InspectPage {
	in := templates.InspectPage{Backend: backend, Value: value, Perms: permsFor(mustUser(r))}
	for i := range snap.Backends {
		if snap.Backends[i].Config.Cookie != nil {
			in.Backends = append(in.Backends, snap.Backends[i].Config.Name)
		}
	}
	if strings.TrimSpace(value) == "" {
		return in
	}
	now := s.opts.Now()
	var all, matched []templates.InspectResult
	for i := range snap.Backends {
		b := &snap.Backends[i]
		if b.Config.Cookie == nil || (backend != "" && b.Config.Name != backend) {
			continue
		}
		p := splitCookie(value, b.Config.Cookie.Mode)
		if p.name != "" && backend == "" && p.name != b.Config.Cookie.Name {
			continue
		}
		res := inspectCookie(b, value, now)
		all = append(all, res)
		if res.Server != "" {
			matched = append(matched, res)
		}
	}
	switch {
	case len(matched) > 0:
		in.Results = matched
	case len(all) > 0:
		in.Results = all
	default:
		in.Error = "No backend uses a cookie by that name."
	}
	return in
}

func (s *Server) handleInspect() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		snap := s.deps.Balancer.Snapshot()
		q := r.URL.Query()
		in := s.inspectPage(r, snap, q.Get("backend"), q.Get("cookie"))
		p := s.livePage(w, r, snap, "Cookie inspector", "inspect")
		return s.render(w, r, http.StatusOK, templates.InspectView(p, in))
	})
}

// handlePin sets the backend's cookie, naming the chosen server, on the
// console's host. Browsers scope cookies by host name and not by port, so a
// frontend reached under the same host name receives it; for others the
// page gives a line to paste in that site's developer console.
func (s *Server) handlePin() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		snap := s.deps.Balancer.Snapshot()
		b := snap.Backend(r.PostFormValue("backend"))
		if b == nil || b.Config.Cookie == nil {
			return badRequest("No such backend with a cookie.")
		}
		sv := b.Server(r.PostFormValue("server"))
		if sv == nil || sv.Cookie == "" {
			return badRequest("No such server with a cookie value.")
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		name, value := b.Config.Cookie.Name, sv.Cookie
		http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", SameSite: http.SameSiteLaxMode})
		pin := &templates.PinResult{
			Backend: b.Config.Name, Server: sv.Config.Name, Cookie: name + "=" + value, Host: host,
			Snippet: `document.cookie = "` + name + "=" + value + `; path=/"`,
		}
		var target string
		for i := range snap.Frontends {
			f := &snap.Frontends[i]
			if f.Config.DefaultBackend != b.Config.Name {
				continue
			}
			for _, bind := range f.Config.Binds {
				bh, port, err := net.SplitHostPort(bind)
				if err != nil {
					continue
				}
				switch bh {
				case host, "", "0.0.0.0", "::", "*":
					pin.Frontends = append(pin.Frontends, net.JoinHostPort(host, port))
				}
				if target == "" {
					if bh == "" || bh == "0.0.0.0" || bh == "::" || bh == "*" {
						bh = host
					}
					target = net.JoinHostPort(bh, port)
				}
			}
		}
		if target == "" {
			target = host
		}
		pin.Curl = "curl -b '" + name + "=" + value + "' http://" + target + "/"
		in := s.inspectPage(r, snap, b.Config.Name, value)
		in.Pinned = pin
		s.log.Info("browser pinned", "user", mustUser(r).Name, "backend", b.Config.Name, "server", sv.Config.Name)
		p := s.livePage(w, r, snap, "Cookie inspector", "inspect")
		return s.render(w, r, http.StatusOK, templates.InspectView(p, in))
	})
}
