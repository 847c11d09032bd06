package web

import (
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"tether/balancer"
	"tether/templates"
)

// viewer says for whom a view is built: sensitive columns (addresses,
// cookie values) are blank for viewers, as at HAProxy's user level.
type viewer struct {
	perms templates.Perms
	now   time.Time
}

// fmtCount formats a count for people, with thousands separators:
// 12,345. The page and its live updates show counts only through it.
func fmtCount(v int64) string {
	digits := strconv.FormatInt(v, 10)
	sign := ""
	if v < 0 {
		sign, digits = "-", digits[1:]
	}
	if len(digits) <= 3 {
		return sign + digits
	}
	var b strings.Builder
	b.Grow(len(sign) + len(digits) + len(digits)/3)
	b.WriteString(sign)
	head := len(digits) % 3
	if head == 0 {
		head = 3
	}
	b.WriteString(digits[:head])
	for i := head; i < len(digits); i += 3 {
		b.WriteByte(',')
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// fmtRate formats a per-second rate: one decimal below 10, none above,
// with thousands separators.
func fmtRate(r float64) string {
	switch {
	case r <= 0:
		return "0"
	case r < 9.95:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
	return fmtCount(int64(math.Round(r)))
}

// overviewView builds the overview from a snapshot.
func (s *Server) overviewView(snap *balancer.Snapshot, v viewer) templates.Overview {
	o := templates.Overview{Perms: v.perms, Fleet: s.fleetPanel(v.now)}
	for i := range snap.Frontends {
		o.Frontends = append(o.Frontends, s.frontendRow(&snap.Frontends[i], v))
	}
	for i := range snap.Backends {
		o.Backends = append(o.Backends, s.backendView(&snap.Backends[i], v, false))
	}
	o.TLSBinds = tlsBindRows(snap)
	if len(o.TLSBinds) > 0 {
		o.Certs = s.certRows(v.now)
	}
	return o
}

func (s *Server) frontendRow(f *balancer.FrontendStatus, v viewer) templates.FrontendRow {
	st := f.Stats
	show := func(line string) string {
		if !v.perms.Sensitive {
			return redactForViewer(line)
		}
		return line
	}
	var acls []string
	for _, a := range f.Config.ACLs {
		acls = append(acls, show(strings.Join(append([]string{"acl", a.Name}, a.Words...), " ")))
	}
	var rules []templates.RuleRow
	for i, r := range f.Rules {
		rules = append(rules, templates.RuleRow{Key: "r:" + f.Config.Name + ":" + strconv.Itoa(i), Line: show(r.Line), Hits: fmtCount(r.Hits)})
	}
	return templates.FrontendRow{
		ACLs: acls, Rules: rules,
		Key: "f:" + f.Config.Name, Name: f.Config.Name, Binds: bindList(f.Config.Binds),
		Backend: f.Config.DefaultBackend,
		Cur:     fmtCount(st.CurSessions), Max: fmtCount(st.MaxSessions), Total: fmtCount(st.TotalRequests),
		Rate: fmtRate(s.stats.frontendRate(f.Config.Name)),
		R2xx: fmtCount(st.Responses[1]), R4xx: fmtCount(st.Responses[3]), R5xx: fmtCount(st.Responses[4]),
		ReqErrs: fmtCount(st.RequestErrors),
	}
}

// backendView builds a backend's block; history adds the 15-minute sticky
// history used by the backend page.
func (s *Server) backendView(b *balancer.BackendStatus, v viewer, history bool) templates.BackendView {
	cfg := b.Config
	st := b.Stats
	bv := templates.BackendView{
		Key: "b:" + cfg.Name, Name: cfg.Name, Balance: string(cfg.Balance),
		CookieLine: strings.Join(cfg.Cookie.Words(), " "), HasCookie: cfg.Cookie != nil,
		Dynamic: "OFF", DynamicOn: b.DynamicCookies(), KeyFP: b.KeyFingerprint,
		DynamicAlgo: cfg.Balance.Dynamic(),
		Rate:        fmtRate(s.stats.backendRate(cfg.Name)),
		Cur:         fmtCount(st.CurSessions), Max: fmtCount(st.MaxSessions), Total: fmtCount(st.TotalRequests),
		R2xx: fmtCount(st.Responses[1]), R4xx: fmtCount(st.Responses[3]), R5xx: fmtCount(st.Responses[4]),
		New: fmtCount(st.Sticky.NewSessions), Redisp: fmtCount(st.Sticky.Redispatched),
		Invalid: fmtCount(st.Sticky.Invalid), Expired: fmtCount(st.Sticky.Expired), NoServer: fmtCount(st.NoServer),
		BytesIn: fmtBytes(st.BytesIn), BytesOut: fmtBytes(st.BytesOut),
	}
	sessRate, sessRateMax := s.stats.backendSessionRate(cfg.Name)
	bv.SessRate, bv.SessRateMax = fmtRate(sessRate), fmtRate(sessRateMax)
	if cfg.Cookie != nil {
		bv.CookieCmd = setCookieCommand(cfg.Name, cfg.Cookie).String()
	}
	if bv.DynamicOn {
		bv.Dynamic = "ON"
	}
	if bv.Balance == "" {
		bv.Balance = string(balancer.RoundRobin)
	}
	up := 0
	var pinRate, clients float64
	samples := make([]serverSample, len(b.Servers))
	seenCollision := map[string]bool{}
	for i := range b.Servers {
		sv := &b.Servers[i]
		smp, _ := s.stats.server(cfg.Name, sv.Config.Name)
		samples[i] = smp
		if sv.Running() {
			up++
		}
		pinRate += smp.PinRate
		clients += float64(smp.Clients)
		bv.Servers = append(bv.Servers, serverRow(cfg.Name, sv, smp, v))
		if c := sv.CookieCollision; c != "" && v.perms.Sensitive {
			pair := min(sv.Config.Name, c) + " = " + max(sv.Config.Name, c)
			if !seenCollision[pair] {
				seenCollision[pair] = true
				bv.Collisions = append(bv.Collisions, pair)
			}
		}
	}
	bv.OldKey, bv.OldAddr, bv.Reissued = fmtCount(st.Sticky.OldKey), fmtCount(st.Sticky.OldAddr), fmtCount(st.Sticky.Reissued)
	bv.OldClients = fmtCount(st.Sticky.OldClients)
	migOld, migRe := s.stats.migration(cfg.Name)
	bv.MigOld, bv.MigRe = sparkPath(migOld), sparkPath(migRe)
	if g := cfg.DynamicCookieAddrGrace; g > 0 {
		bv.AddrGrace = balancer.FormatHAProxyTime(g)
	}
	var last time.Time
	for _, rk := range b.RetiredKeys {
		bv.Retired = append(bv.Retired, templates.RetiredKeyRow{FP: rk.Fingerprint, Until: rk.Until.UTC().Format("15:04:05 UTC"), UntilUnix: strconv.FormatInt(rk.Until.Unix(), 10)})
		if rk.Until.After(last) {
			last = rk.Until
		}
	}
	if !last.IsZero() {
		bv.GraceUntil = strconv.FormatInt(last.Unix(), 10)
	}
	bv.UpTotal = fmtCount(int64(up)) + "/" + fmtCount(int64(len(b.Servers)))
	bv.Pinned = fmtRate(pinRate)
	bv.Clients = fmtCount(int64(math.Round(clients)))
	bv.Dist = distribution(cfg.Name, b.Servers, samples)
	bv.Fleet, bv.FleetNodes = s.fleetTallies(cfg.Name, b.Servers)
	if history {
		for i := range b.Servers {
			pp, np, peak := histPaths(samples[i].HistPin, samples[i].HistNew)
			if len(samples[i].HistPin) == 0 {
				pp, np, peak = histPaths(make([]int64, histBuckets), make([]int64, histBuckets))
			}
			name := b.Servers[i].Config.Name
			bv.History = append(bv.History, templates.HistoryRow{
				Key: "s:" + cfg.Name + "/" + name, Name: name, PinnedPath: pp, NewPath: np, Peak: fmtCount(peak),
			})
		}
	}
	return bv
}

// distribution splits the sticky bar by each server's share of pinned
// requests per second, or of new sessions in the last 15 minutes when no
// pinned request arrived lately.
func distribution(backend string, servers []balancer.ServerStatus, samples []serverSample) []templates.DistSeg {
	weights := make([]float64, len(servers))
	var total float64
	for i := range samples {
		weights[i] = samples[i].PinRate
		total += weights[i]
	}
	if total == 0 {
		for i := range samples {
			weights[i] = float64(samples[i].Clients)
			total += weights[i]
		}
	}
	segs := make([]templates.DistSeg, len(servers))
	x := 0.0
	for i := range servers {
		w := 0.0
		if total > 0 {
			w = weights[i] / total * 100
		}
		segs[i] = templates.DistSeg{
			Key: "s:" + backend + "/" + servers[i].Config.Name, Name: servers[i].Config.Name,
			X: strconv.FormatFloat(x, 'f', 1, 64), W: strconv.FormatFloat(w, 'f', 1, 64),
			Color: strconv.Itoa(i % 8),
		}
		x += w
	}
	return segs
}

// stateClass returns the colour class and icon of a server, following the
// legend of HAProxy's stats page.
func stateClass(sv *balancer.ServerStatus) (class, icon string) {
	switch {
	case sv.Admin&balancer.AdminRMaint != 0 || sv.Config.Address == "":
		return "noaddr", "○"
	case sv.Admin&balancer.AdminFMaint != 0:
		return "maint", "■"
	case sv.Op == balancer.OpStopped:
		if sv.CheckEnabled && sv.Check.Health > 0 {
			return "goingup", "△"
		}
		return "down", "✖"
	case sv.Op == balancer.OpStopping || sv.Admin&balancer.AdminFDrain != 0 || sv.Weight == 0:
		return "drain", "◇"
	case !sv.CheckEnabled:
		return "nocheck", "○"
	case sv.Check.Health < sv.Config.Rise+sv.Config.Fall-1:
		return "goingdown", "▼"
	}
	return "up", "▲"
}

// adminMode returns the mode the segmented control shows.
func adminMode(sv *balancer.ServerStatus) string {
	switch {
	case sv.Admin&balancer.AdminFMaint != 0:
		return "maint"
	case sv.Admin&balancer.AdminFDrain != 0:
		return "drain"
	}
	return "ready"
}

// lastCheck writes the last check as HAProxy's LastChk column does
// ("L4OK in 0ms", "L7STS/503 in 2ms").
func lastCheck(sv *balancer.ServerStatus) string {
	c := sv.Check
	if !sv.CheckEnabled || c.Status == "" {
		return ""
	}
	st := c.Status
	if c.Code != 0 {
		st += "/" + strconv.Itoa(c.Code)
	}
	if c.Status == "INI" {
		return "* " + st
	}
	return st + " in " + strconv.FormatInt(c.Duration.Milliseconds(), 10) + "ms"
}

func hostPort(sv *balancer.Server) string {
	if sv.Address == "" {
		return ""
	}
	if !sv.PortSet {
		return sv.Address
	}
	return net.JoinHostPort(sv.Address, strconv.Itoa(sv.Port))
}

// deleteWhy reports whether del server would succeed now, by the rule the
// Runtime API applies (ServerStatus.DeleteBlocker), and explains the unmet
// preconditions.
func deleteWhy(sv *balancer.ServerStatus) (bool, string) {
	err := sv.DeleteBlocker()
	if err == nil {
		return true, "ready to delete"
	}
	if errors.Is(err, balancer.ErrServerReferenced) {
		return false, "cannot be removed at run time: other configuration elements point to it (resolved by DNS)"
	}
	var why []string
	if sv.Admin&balancer.AdminFMaint == 0 {
		why = append(why, "not in maintenance (put it in maintenance first)")
	}
	if n := sv.Stats.CurSessions; n > 0 {
		noun := " connections"
		if n == 1 {
			noun = " connection"
		}
		why = append(why, fmtCount(n)+noun+" still attached")
	}
	return false, strings.Join(why, "; ")
}

func serverRow(backend string, sv *balancer.ServerStatus, smp serverSample, v viewer) templates.ServerRow {
	cls, icon := stateClass(sv)
	st := sv.Stats
	row := templates.ServerRow{
		Key: "s:" + backend + "/" + sv.Config.Name, Backend: backend, Name: sv.Config.Name,
		Status: sv.StatusText(), State: cls, Icon: icon,
		Since: since(v.now, sv.LastChange), LastChk: lastCheck(sv),
		Weight:  strconv.Itoa(sv.Weight) + "/" + strconv.Itoa(sv.Config.Weight),
		WeightV: strconv.Itoa(sv.Weight),
		Cur:     fmtCount(st.CurSessions), Max: fmtCount(st.MaxSessions), Total: fmtCount(st.TotalSessions),
		Rate: fmtRate(smp.Rate), Spark: sparkPath(smp.Spark),
		SessRate: fmtRate(smp.Rate), SessRateMax: fmtRate(smp.RateMax),
		BytesIn: fmtBytes(st.BytesIn), BytesOut: fmtBytes(st.BytesOut),
		R2xx: fmtCount(st.Responses[1]), R4xx: fmtCount(st.Responses[3]), R5xx: fmtCount(st.Responses[4]),
		Pinned: fmtRate(smp.PinRate), New: fmtCount(st.Sticky.NewSessions), Redisp: fmtCount(st.Sticky.Redispatched),
		Invalid: fmtCount(st.Sticky.Invalid), Expired: fmtCount(st.Sticky.Expired),
		Admin: adminMode(sv),
	}
	if !sv.LastChange.IsZero() {
		row.SinceTS = strconv.FormatInt(sv.LastChange.Unix(), 10)
	}
	row.Deletable, row.DeleteWhy = deleteWhy(sv)
	if v.perms.Sensitive {
		row.Addr = hostPort(&sv.Config)
		row.Cookie = sv.Cookie
		row.CookieDynamic = sv.CookieDynamic
		if sv.CookieCollision != "" {
			row.Collision = "⚠ same as " + sv.CookieCollision
		}
	}
	return row
}

// bindList shows a frontend's binds, each TLS one followed by "ssl".
func bindList(binds []balancer.Bind) string {
	words := make([]string, 0, len(binds))
	for _, b := range binds {
		if b.TLS != nil {
			words = append(words, b.Addr+" ssl")
			continue
		}
		words = append(words, b.Addr)
	}
	return strings.Join(words, " ")
}
