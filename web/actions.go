package web

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"tether/balancer"
	"tether/balancer/runtimeapi"
	"tether/templates"
)

// cmd is the Runtime API command made of words.
func cmd(words ...string) runtimeapi.Command { return runtimeapi.NewCommand(words...) }

// actionReply is the JSON answer to an action sent by the page's script.
type actionReply struct {
	OK       bool     `json:"ok"`
	Commands []string `json:"commands,omitempty"`
	Socat    []string `json:"socat,omitempty"`
	Reply    string   `json:"reply,omitempty"`
	Message  string   `json:"message,omitempty"`
}

// validName reports whether s is a name HAProxy accepts for a proxy or a
// server: letters, digits, '-', '_', '.' and ':'.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// validCookieValue reports whether s is made of RFC 6265 cookie-octets.
func validCookieValue(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == 0x21 || c >= 0x23 && c <= 0x2B || c >= 0x2D && c <= 0x3A || c >= 0x3C && c <= 0x5B || c >= 0x5D && c <= 0x7E) {
			return false
		}
	}
	return true
}

// urlNames returns the backend and server named in the URL, checked so
// they cannot smuggle words or commands into a Runtime API line.
func urlNames(r *http.Request) (backend, server string, err error) {
	backend, server = chi.URLParam(r, "backend"), chi.URLParam(r, "server")
	if !validName(backend) {
		return "", "", badRequest("Invalid backend name.")
	}
	if server != "" && !validName(server) {
		return "", "", badRequest("Invalid server name.")
	}
	return backend, server, nil
}

// pageSource is the console page an action was sent from, for the audit
// log: the Referer's path when it is this console, else the action's path.
func pageSource(r *http.Request) string {
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host && ref.Path != "" {
		return ref.Path
	}
	return r.URL.Path
}

// execute sends cmds in order through the Runtime API at the user's level
// and stops at the first error.
func (s *Server) execute(r *http.Request, cmds ...runtimeapi.Command) templates.Flash {
	u := mustUser(r)
	f := templates.Flash{OK: true}
	src := pageSource(r)
	for _, c := range cmds {
		shown := c.String()
		f.Commands = append(f.Commands, shown)
		res := s.deps.Runtime.Run(r.Context(), c, balancer.Level(u.level),
			balancer.Origin{Channel: "console", Actor: u.Name, Source: src, Command: shown})
		text := res.Text()
		s.log.Info("console command", "user", u.Name, "command", shown, "reply", text, "ok", res.OK())
		if !res.OK() {
			f.OK, f.Reply = false, text
			if text == "" {
				f.Reply = res.Err
			}
			return f
		}
		if text != "" {
			f.Message = text
		}
	}
	if f.Message == "" {
		f.Message = "Done."
	}
	return f
}

// respond answers an action: JSON for the page's script, else a flash
// message and a redirect (POST, redirect, GET).
func (s *Server) respond(w http.ResponseWriter, r *http.Request, f templates.Flash, back string) {
	if wantsJSON(r) {
		rep := actionReply{OK: f.OK, Commands: f.Commands, Reply: f.Reply, Message: f.Message}
		for _, c := range f.Commands {
			rep.Socat = append(rep.Socat, templates.SocatCommand(c, s.opts.Socat))
		}
		status := http.StatusOK
		if !f.OK {
			status = http.StatusUnprocessableEntity
		}
		writeJSON(w, status, rep)
		return
	}
	s.setFlash(w, r, f)
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host && strings.HasPrefix(ref.Path, "/") && !strings.HasPrefix(ref.Path, "//") {
		back = ref.RequestURI()
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (s *Server) handleDynamicCookie() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, _, err := urlNames(r)
		if err != nil {
			return err
		}
		var c runtimeapi.Command
		switch r.PostFormValue("op") {
		case "enable":
			c = cmd("enable", "dynamic-cookie", "backend", be)
		case "disable":
			c = cmd("disable", "dynamic-cookie", "backend", be)
		default:
			return badRequest("op must be enable or disable.")
		}
		s.respond(w, r, s.execute(r, c), "/backends/"+be)
		return nil
	})
}

func (s *Server) handleDynamicCookieKey() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, _, err := urlNames(r)
		if err != nil {
			return err
		}
		key := r.PostFormValue("key")
		if key == "" || strings.ContainsAny(key, "\r\n") {
			s.respond(w, r, templates.Flash{OK: false, Message: "The key must be one non-empty line."}, "/backends/"+be)
			return nil
		}
		c := runtimeapi.Command{Words: []string{"set", "dynamic-cookie-key", "backend", be, key}, Secret: 4}
		if g := strings.TrimSpace(r.PostFormValue("grace")); g != "" && g != "0" {
			if !validDelay(g) {
				s.respond(w, r, templates.Flash{OK: false, Message: "The grace window must be a delay such as 30m, 2h or 1d."}, "/backends/"+be)
				return nil
			}
			c.Words = append(c.Words, "grace", g)
		}
		s.respond(w, r, s.execute(r, c), "/backends/"+be)
		return nil
	})
}

// validDelay reports whether s is a delay in HAProxy's time syntax.
func validDelay(s string) bool {
	_, rest, err := balancer.ParseHAProxyTime(s, time.Millisecond)
	return err == nil && rest == ""
}

func (s *Server) handleDynamicCookieAddrGrace() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, _, err := urlNames(r)
		if err != nil {
			return err
		}
		g := strings.TrimSpace(r.PostFormValue("grace"))
		if g == "" || g == "off" {
			g = "0"
		}
		if !validDelay(g) {
			s.respond(w, r, templates.Flash{OK: false, Message: "The address grace must be a delay such as 30m or 2h, or 0 for none."}, "/backends/"+be)
			return nil
		}
		s.respond(w, r, s.execute(r, cmd("set", "dynamic-cookie-addr-grace", "backend", be, g)), "/backends/"+be)
		return nil
	})
}

func (s *Server) handleServerState() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, sv, err := urlNames(r)
		if err != nil {
			return err
		}
		st := r.PostFormValue("state")
		switch st {
		case "ready", "drain", "maint":
		default:
			return badRequest("state must be ready, drain or maint.")
		}
		var asked balancer.IdleIntent
		if b := s.deps.Balancer.Snapshot().Backend(be); b != nil {
			if srv := b.Server(sv); srv != nil {
				asked = srv.WhenIdle
			}
		}
		f := s.execute(r, cmd("set", "server", be+"/"+sv, "state", st))
		if st == "ready" && f.OK && asked.Asked {
			f.Message += " Maintenance when idle (asked by " + asked.By + ") is cancelled: the server was set " + st + "."
		}
		s.respond(w, r, f, "/backends/"+be)
		return nil
	})
}

// validWeight reports whether s is a weight as set server accepts it:
// 0..256, or a percentage of the initial weight.
func validWeight(s string) bool {
	n := strings.TrimSuffix(s, "%")
	if n == "" || len(n) > 3 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

func (s *Server) handleServerWeight() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, sv, err := urlNames(r)
		if err != nil {
			return err
		}
		wt := strings.TrimSpace(r.PostFormValue("weight"))
		if !validWeight(wt) {
			s.respond(w, r, templates.Flash{OK: false, Message: "Weight must be a number from 0 to 256, or a percentage of the initial weight."}, "/backends/"+be)
			return nil
		}
		s.respond(w, r, s.execute(r, cmd("set", "server", be+"/"+sv, "weight", wt)), "/backends/"+be)
		return nil
	})
}

func (s *Server) handleDeleteServer() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, sv, err := urlNames(r)
		if err != nil {
			return err
		}
		// A watch for maintenance when idle stays if the deletion is
		// refused; it ends with the server otherwise.
		s.respond(w, r, s.execute(r, cmd("del", "server", be+"/"+sv)), "/backends/"+be)
		return nil
	})
}

func (s *Server) handleClearCounters() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		s.respond(w, r, s.execute(r, cmd("clear", "counters")), "/")
		return nil
	})
}

// addServerCommands validates the add-server form and returns the commands
// it stands for: add server, then enable health, then state ready.
func addServerCommands(be string, a templates.AddServerForm) ([]runtimeapi.Command, string) {
	if !validName(a.Name) {
		return nil, "The name may hold letters, digits, '-', '_', '.' and ':' only."
	}
	ip := net.ParseIP(a.Address)
	if ip == nil {
		return nil, "The address must be an IPv4 or IPv6 address (a new server is never resolved, as in HAProxy)."
	}
	addr := ip.String()
	if ip.To4() == nil {
		addr = "[" + addr + "]"
	}
	if a.Port != "" {
		p, err := strconv.Atoi(a.Port)
		if err != nil || p < 1 || p > 65535 {
			return nil, "The port must be a number from 1 to 65535."
		}
		addr += ":" + strconv.Itoa(p)
	}
	add := cmd("add", "server", be+"/"+a.Name, addr)
	if a.Weight != "" {
		wt, err := strconv.Atoi(a.Weight)
		if err != nil || wt < 0 || wt > 256 {
			return nil, "The weight must be a number from 0 to 256."
		}
		add.Words = append(add.Words, "weight", strconv.Itoa(wt))
	}
	if a.Cookie != "" {
		if !validCookieValue(a.Cookie) {
			return nil, "The cookie value may not hold spaces, quotes, commas, semicolons or backslashes."
		}
		add.Words = append(add.Words, "cookie", a.Cookie)
	}
	if a.Check {
		add.Words = append(add.Words, "check")
	}
	cmds := []runtimeapi.Command{add}
	if a.Check {
		cmds = append(cmds, cmd("enable", "health", be+"/"+a.Name))
	}
	if a.Ready {
		cmds = append(cmds, cmd("set", "server", be+"/"+a.Name, "state", "ready"))
	}
	return cmds, ""
}

func (s *Server) handleAddServer() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		be, _, err := urlNames(r)
		if err != nil {
			return err
		}
		a := templates.AddServerForm{
			Name: strings.TrimSpace(r.PostFormValue("name")), Address: strings.TrimSpace(r.PostFormValue("address")),
			Port: strings.TrimSpace(r.PostFormValue("port")), Weight: strings.TrimSpace(r.PostFormValue("weight")),
			Cookie: strings.TrimSpace(r.PostFormValue("cookie")),
			Check:  r.PostFormValue("check") != "", Ready: r.PostFormValue("ready") != "",
		}
		cmds, problem := addServerCommands(be, a)
		if problem == "" {
			f := s.execute(r, cmds...)
			if f.OK || wantsJSON(r) || len(f.Commands) > 1 {
				// Once the server exists, a later failure is reported
				// like any action: the form would add it twice.
				s.respond(w, r, f, "/backends/"+be)
				return nil
			}
			problem = f.Reply
		}
		if wantsJSON(r) {
			writeJSON(w, http.StatusUnprocessableEntity, actionReply{OK: false, Message: problem})
			return nil
		}
		return s.rerenderBackend(w, r, be, func(bp *templates.BackendPage) {
			a.Error = problem
			bp.Add = a
		})
	})
}

// rerenderBackend shows the backend page again with a form as submitted
// and its error, status 422.
func (s *Server) rerenderBackend(w http.ResponseWriter, r *http.Request, be string, fill func(*templates.BackendPage)) error {
	snap := s.deps.Balancer.Snapshot()
	b := snap.Backend(be)
	if b == nil {
		return notFound("No such backend.")
	}
	bp := s.backendPage(r, b)
	fill(&bp)
	p := s.livePage(w, r, snap, "Backend "+be, "overview")
	return s.render(w, r, http.StatusUnprocessableEntity, templates.BackendPageView(p, bp))
}
