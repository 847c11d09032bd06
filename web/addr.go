package web

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"tether/balancer"
	"tether/balancer/runtimeapi"
	"tether/templates"
)

// addrPreview is what changing a server's address would do to its
// cookie: the JSON answer of the preview endpoint, and the text the
// change-address form shows without JavaScript.
type addrPreview struct {
	OK bool `json:"ok"`
	// Command is the Runtime API line the change would send.
	Command string `json:"command,omitempty"`
	// Current and Cookie are the server's cookie now and after the
	// change, "" for none.
	Current string `json:"current"`
	Cookie  string `json:"cookie"`
	// Changes reports whether the cookie would change.
	Changes bool `json:"changes"`
	// Collision names another server of the backend that has the new
	// cookie already.
	Collision string `json:"collision,omitempty"`
	// Message says it in a sentence.
	Message string `json:"message"`
}

// addrCommand checks a change-address form and returns the address and
// port it names (the current port when the form leaves it empty) and the
// set server addr command, or a message for the first problem.
func addrCommand(be string, sv *balancer.ServerStatus, addr, port string) (netip.Addr, int, runtimeapi.Command, string) {
	ip, err := netip.ParseAddr(strings.TrimSpace(addr))
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, 0, runtimeapi.Command{}, "The address must be an IPv4 or IPv6 address."
	}
	ip = ip.Unmap()
	c := cmd("set", "server", be+"/"+sv.Config.Name, "addr", ip.String())
	p := sv.Config.Port
	if port = strings.TrimSpace(port); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return netip.Addr{}, 0, runtimeapi.Command{}, "The port must be a number from 1 to 65535."
		}
		p = n
		c.Words = append(c.Words, "port", strconv.Itoa(n))
	}
	return ip, p, c, ""
}

// previewAddr says what server sv of backend b gets as a cookie at ip and
// port, the way the balancer will compute it.
func (s *Server) previewAddr(b *balancer.BackendStatus, sv *balancer.ServerStatus, ip netip.Addr, port int) (addrPreview, error) {
	name := sv.Config.Name
	pv := addrPreview{OK: true, Current: sv.Cookie}
	switch {
	case sv.Config.Cookie != "":
		pv.Cookie = sv.Config.Cookie
		pv.Message = name + " keeps its own cookie " + pv.Cookie + ": a cookie set on the server line does not depend on the address."
	case !b.DynamicCookies():
		pv.Message = "Dynamic cookies are off on " + b.Config.Name + ": the address does not make " + name + "'s cookie."
	default:
		c, err := s.deps.Balancer.PreviewCookie(b.Config.Name, ip, port)
		if err != nil {
			return addrPreview{}, err
		}
		pv.Cookie = c
		switch {
		case c == "":
			pv.Message = b.Config.Name + " has no dynamic-cookie key: " + name + " gets no cookie."
		case c == sv.Cookie:
			pv.Message = name + "'s cookie stays " + c + "."
		case sv.Cookie == "":
			pv.Message = name + "'s cookie becomes " + c + "."
		default:
			pv.Message = name + "'s cookie becomes " + c + " (now " + sv.Cookie + "): clients pinned to " + name + " lose their server and are rebalanced."
		}
	}
	pv.Changes = pv.Cookie != pv.Current
	if pv.Cookie != "" {
		for i := range b.Servers {
			if o := &b.Servers[i]; o.Config.Name != name && o.Cookie == pv.Cookie {
				pv.Collision = o.Config.Name
				pv.Message += " It would equal " + o.Config.Name + "'s cookie: HAProxy warns about such a collision, and a cookie then picks the first of them."
				break
			}
		}
	}
	return pv, nil
}

// handleCookiePreview answers, in JSON, what a server's cookie becomes at
// the address and port in the query (addr, port), without changing
// anything.
func (s *Server) handleCookiePreview() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		b, sv, err := findServer(s.deps.Balancer.Snapshot(), r)
		if err != nil {
			return err
		}
		ip, port, line, problem := addrCommand(b.Config.Name, sv, r.URL.Query().Get("addr"), r.URL.Query().Get("port"))
		if problem != "" {
			writeJSON(w, http.StatusUnprocessableEntity, addrPreview{Message: problem})
			return nil
		}
		pv, err := s.previewAddr(b, sv, ip, port)
		if err != nil {
			return err
		}
		pv.Command = line.String()
		writeJSON(w, http.StatusOK, pv)
		return nil
	})
}

// handleServerAddr changes a server's address with "set server B/S addr IP
// [port P]". With op=preview (the form's button when JavaScript is off) it
// changes nothing and shows the page again with what the cookie becomes.
func (s *Server) handleServerAddr() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		snap := s.deps.Balancer.Snapshot()
		b, sv, err := findServer(snap, r)
		if err != nil {
			return err
		}
		be, name := b.Config.Name, sv.Config.Name
		f := templates.AddrForm{Server: name, Addr: strings.TrimSpace(r.PostFormValue("addr")), Port: strings.TrimSpace(r.PostFormValue("port"))}
		ip, port, line, problem := addrCommand(be, sv, f.Addr, f.Port)
		if problem == "" && r.PostFormValue("op") == "preview" {
			pv, err := s.previewAddr(b, sv, ip, port)
			if err != nil {
				return err
			}
			if wantsJSON(r) {
				writeJSON(w, http.StatusOK, actionReply{OK: true, Message: pv.Message})
				return nil
			}
			f.Preview = pv.Message
			bp := s.backendPage(r, b)
			bp.Addr = f
			return s.render(w, r, http.StatusOK, templates.BackendPageView(s.livePage(w, r, snap, "Backend "+be, "overview"), bp))
		}
		if problem == "" {
			fl := s.execute(r, line)
			if fl.OK {
				if now := s.deps.Balancer.Snapshot().Backend(be).Server(name); now != nil {
					fl.Message = addrOutcome(now)
				}
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
			bp.Addr = f
		})
	})
}

// addrOutcome says where a server is after an address change and which
// cookie it has there.
func addrOutcome(sv *balancer.ServerStatus) string {
	where := sv.Config.Address
	if sv.Config.PortSet {
		where = net.JoinHostPort(where, strconv.Itoa(sv.Config.Port))
	}
	msg := sv.Config.Name + " is now at " + where + "; "
	if sv.Cookie == "" {
		return msg + "it has no cookie."
	}
	return msg + "its cookie is " + sv.Cookie + "."
}
