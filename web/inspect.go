package web

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
	"tether/templates"
)

// cookieHeader turns what an operator pasted into the Cookie header a
// request would carry to a backend whose cookie is named name: a Cookie or
// Set-Cookie header (its name=value part), a "name=value; other=..." line,
// or a bare value (with its |dates, or a prefix~value).
func cookieHeader(pasted, name string) string {
	s := strings.TrimSpace(pasted)
	if len(s) >= 11 && strings.EqualFold(s[:11], "Set-Cookie:") {
		s, _, _ = strings.Cut(strings.TrimSpace(s[11:]), ";")
	} else if len(s) >= 7 && strings.EqualFold(s[:7], "Cookie:") {
		s = strings.TrimSpace(s[7:])
	}
	if k, _, ok := strings.Cut(s, "="); ok && strings.TrimSpace(k) != "" && !strings.ContainsAny(k, "~|;,\"") {
		return s
	}
	return name + "=" + s
}

// maxTargets bounds the servers listed with the Set-Cookie they give.
const maxTargets = 12

// inspectResult describes for the page what a request carrying the cookie
// gets from backend b, as the balancer explained it.
func inspectResult(e balancer.Explanation, b *balancer.BackendStatus, now time.Time) templates.InspectResult {
	res := templates.InspectResult{
		Backend: e.Backend, CookieName: e.Cookie.Name, CookieLine: "cookie " + strings.Join(e.Cookie.Words(), " "),
		Value: e.Value, ServerValue: e.ServerValue, AppValue: e.AppValue,
		Code: string(e.Verdict.Code()), Verdict: e.Verdict.String(),
		Forwarded: strings.Join(e.Forwarded, "\n"),
	}
	if !e.LastSeen.IsZero() {
		res.LastSeen = e.LastSeen.Format(time.RFC3339) + " (" + since(now, e.LastSeen) + " ago)"
	}
	if !e.FirstSeen.IsZero() {
		res.FirstSeen = e.FirstSeen.Format(time.RFC3339) + " (" + since(now, e.FirstSeen) + " ago)"
	}
	switch e.Verdict {
	case balancer.VerdictIdle:
		res.Expired = "yes: last seen " + e.LastSeen.Format(time.RFC3339) + ", outside maxidle " + balancer.FormatHAProxyTime(e.Cookie.MaxIdle)
	case balancer.VerdictOld:
		res.Expired = "yes: first seen " + e.FirstSeen.Format(time.RFC3339) + ", outside maxlife " + balancer.FormatHAProxyTime(e.Cookie.MaxLife)
	}
	for i := range b.Servers {
		if c := b.Servers[i].Cookie; c != "" {
			res.Servers = append(res.Servers, templates.PinChoice{Name: b.Servers[i].Config.Name, Cookie: c})
		}
	}
	res.Pinnable = len(res.Servers) > 0
	if sv := b.Server(e.Named); sv != nil {
		cls, _ := stateClass(sv)
		res.Server, res.ServerKey, res.Status, res.State, res.Dynamic =
			sv.Config.Name, "s:"+b.Config.Name+"/"+sv.Config.Name, sv.StatusText(), cls, sv.CookieDynamic
	}
	for i, t := range e.Targets {
		if i == maxTargets {
			res.MoreTargets = len(e.Targets) - i
			break
		}
		res.Targets = append(res.Targets, templates.InspectTarget{Server: t.Server, SetCookie: t.SetCookie})
	}
	res.Outcome = outcome(e, b)
	res.SetCookieNote = setCookieNote(e)
	return res
}

// setCookieNote explains why a response may get no Set-Cookie line from
// the balancer.
func setCookieNote(e balancer.Explanation) string {
	name := e.Cookie.Name
	switch e.Cookie.Mode {
	case balancer.CookiePassive:
		return "The balancer sets no cookie: the application sets " + name + "."
	case balancer.CookieRewrite:
		return "The balancer adds no cookie: a " + name + " cookie the server sets gets the server's cookie value instead."
	case balancer.CookiePrefix:
		return "The balancer adds no cookie: a " + name + " cookie the server sets gets the server's cookie value and '~' before its own."
	case balancer.CookieInsert:
		if e.Cookie.PostOnly {
			return "postonly: the cookie is inserted only in responses to POST requests."
		}
		if e.Route == balancer.RouteCookie {
			return "None needed: the client keeps its cookie."
		}
	}
	return ""
}

// outcome says in words what a request carrying the cookie gets.
func outcome(e balancer.Explanation, b *balancer.BackendStatus) string {
	var why string
	switch e.Verdict {
	case balancer.VerdictNoCookie:
		why = "The request carries no " + e.Cookie.Name + " cookie"
	case balancer.VerdictValid:
		why = "Goes to " + e.Named + " (pinned)."
		if sv := b.Server(e.Named); sv != nil && !sv.Usable() {
			why += " It is " + sv.StatusText() + ", and a server that takes no new clients still takes those pinned to it."
		}
	case balancer.VerdictPersist:
		why = e.Named + " is " + serverStatus(b, e.Named) + ", but option persist sends the request there anyway"
		if len(e.Fallback) > 0 {
			why += "; if it does not answer, option redispatch sends it to " + serverList(e.Fallback) + "."
		} else {
			why += "; if it does not answer, the request fails (503)."
		}
	case balancer.VerdictDown, balancer.VerdictMaint:
		why = e.Named + " is " + serverStatus(b, e.Named) + ": the request is redispatched (counted in Redispatched)"
	case balancer.VerdictUnknown:
		why = "No server has this value: the cookie is invalid (counted in Invalid)"
		if e.DynamicOff != "" {
			why = "This is " + e.DynamicOff + "'s dynamic cookie, but dynamic cookies are off on this backend, so it names no server (counted in Invalid)"
		}
	case balancer.VerdictIdle, balancer.VerdictOld:
		why = "The cookie is expired and ignored (counted in Expired)"
	}
	switch e.Route {
	case balancer.RouteBalance:
		why += "; " + string(b.Config.Balance) + " picks " + serverList(e.Targets) + "."
	case balancer.RouteNoServer:
		why += "; no server is usable: the request gets a 503."
	}
	return why
}

// serverStatus returns the named server's status as HAProxy's stats show it.
func serverStatus(b *balancer.BackendStatus, name string) string {
	if sv := b.Server(name); sv != nil {
		return sv.StatusText()
	}
	return "not running"
}

// serverList names the targets: "s1", "one of s1, s2", "one of 14 servers".
func serverList(ts []balancer.Target) string {
	switch {
	case len(ts) == 1:
		return ts[0].Server
	case len(ts) > maxTargets:
		return "one of " + strconv.Itoa(len(ts)) + " servers"
	}
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Server
	}
	return "one of " + strings.Join(names, ", ")
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
		e, err := s.deps.Balancer.Explain(b.Config.Name, cookieHeader(value, b.Config.Cookie.Name), now)
		if err != nil {
			// The backend changed since the snapshot.
			continue
		}
		if e.Verdict == balancer.VerdictNoCookie && backend == "" {
			continue
		}
		res := inspectResult(e, b, now)
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
				bh, port, err := net.SplitHostPort(bind.Addr)
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
