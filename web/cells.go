package web

import (
	"strings"

	"tether/balancer"
	"tether/templates"
)

// model is the live state of every entity as display strings: entity key
// ("f:fe", "b:be", "s:be/srv") → field → value. Pages carry the same keys in
// data-k and the fields in data-f, so the browser applies a diff by setting
// text or attributes. A model is never modified once published.
type model map[string]map[string]string

func frontendCells(f templates.FrontendRow) map[string]string {
	return map[string]string{
		"cur": f.Cur, "max": f.Max, "tot": f.Total, "rate": f.Rate,
		"r2": f.R2xx, "r4": f.R4xx, "r5": f.R5xx, "rerr": f.ReqErrs,
	}
}

func backendCells(b templates.BackendView) map[string]string {
	sig := []string{b.Balance, b.CookieLine, b.KeyFP, strings.Join(b.Collisions, ","), b.AddrGrace}
	for _, r := range b.Retired {
		sig = append(sig, r.FP+"@"+r.UntilUnix)
	}
	for _, s := range b.Servers {
		sig = append(sig, s.Name)
	}
	return map[string]string{
		"dyn": b.Dynamic, "upt": b.UpTotal, "rate": b.Rate, "clients": b.Clients,
		"cur": b.Cur, "max": b.Max, "tot": b.Total, "r2": b.R2xx, "r4": b.R4xx, "r5": b.R5xx,
		"nosrv": b.NoServer, "pin": b.Pinned, "new": b.New, "rdp": b.Redisp, "inv": b.Invalid, "exp": b.Expired,
		"srcur": b.SessRate, "srmax": b.SessRateMax, "bin": b.BytesIn, "bout": b.BytesOut,
		"gk": b.OldKey, "ga": b.OldAddr, "gri": b.Reissued, "goc": b.OldClients, "mgo": b.MigOld, "mgr": b.MigRe,
		// sig changes when the page's structure does; the browser then
		// fetches the page again instead of patching cells.
		"sig": strings.Join(sig, "\x00"),
	}
}

func serverCells(s templates.ServerRow) map[string]string {
	return map[string]string{
		"cls": s.State, "icon": s.Icon, "st": s.Status, "chg": s.SinceTS, "chk": s.LastChk,
		"addr": s.Addr, "w": s.Weight, "cur": s.Cur, "max": s.Max, "tot": s.Total, "rate": s.Rate,
		"spark": s.Spark, "r2": s.R2xx, "r4": s.R4xx, "r5": s.R5xx, "ck": s.Cookie, "col": s.Collision,
		"pin": s.Pinned, "new": s.New, "rdp": s.Redisp, "inv": s.Invalid, "exp": s.Expired,
		"adm": s.Admin, "delwhy": s.DeleteWhy, "del": yesNo(s.Deletable),
		"srcur": s.SessRate, "srmax": s.SessRateMax, "bin": s.BytesIn, "bout": s.BytesOut,
	}
}

// yesNo is a flag as a cell value.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// buildModel renders a snapshot into cells, as an operator sees it. The
// 15-minute history only changes when counters are sampled: without
// history its cells are copied from prev.
func (s *Server) buildModel(snap *balancer.Snapshot, v viewer, prev model, history bool) model {
	m := make(model)
	if p := s.fleetPanel(v.now); p != nil {
		for _, n := range p.Nodes {
			m[n.Key] = nodeCells(n)
		}
	}
	for i := range snap.Frontends {
		f := s.frontendRow(&snap.Frontends[i], v)
		m[f.Key] = frontendCells(f)
		for _, r := range f.Rules {
			m[r.Key] = map[string]string{"hits": r.Hits}
		}
	}
	for _, c := range s.certRows(v.now) {
		m[c.Key] = certCells(c)
	}
	for i := range snap.Backends {
		b := s.backendView(&snap.Backends[i], v, history)
		m[b.Key] = backendCells(b)
		for _, r := range b.Servers {
			c := serverCells(r)
			if !history {
				if p, ok := prev[r.Key]; ok {
					c["hp"], c["hn"], c["hpk"] = p["hp"], p["hn"], p["hpk"]
				}
			}
			m[r.Key] = c
		}
		for _, d := range b.Dist {
			c := m[d.Key]
			c["dx"], c["dw"], c["dp"] = d.X, d.W, d.W
		}
		for _, t := range b.Fleet {
			m[t.Key] = tallyCells(t)
		}
		for _, t := range b.FleetNodes {
			m[t.Key] = tallyCells(t)
		}
		for _, h := range b.History {
			c := m[h.Key]
			c["hp"], c["hn"], c["hpk"] = h.PinnedPath, h.NewPath, h.Peak
		}
	}
	return m
}

// diffModels returns the fields of next that differ from prev, and whether
// the structure changed (entities added or removed, or a backend's
// signature changed).
func diffModels(prev, next model) (changed model, structural bool) {
	changed = make(model)
	for k, nf := range next {
		pf, ok := prev[k]
		if !ok {
			structural = true
			changed[k] = nf
			continue
		}
		var c map[string]string
		for f, v := range nf {
			if pv, ok := pf[f]; !ok || pv != v {
				if f == "sig" {
					structural = true
				}
				if c == nil {
					c = make(map[string]string)
				}
				c[f] = v
			}
		}
		if c != nil {
			changed[k] = c
		}
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			structural = true
		}
	}
	return changed, structural
}

// forClient returns m as sent to a browser: without the structure
// signature, and without the fields viewers may not see unless sensitive.
func forClient(m model, sensitive bool) model {
	out := make(model, len(m))
	for k, fs := range m {
		c := make(map[string]string, len(fs))
		for f, v := range fs {
			if f == "sig" || (!sensitive && isSensitive(f)) {
				continue
			}
			c[f] = v
		}
		if len(c) > 0 {
			out[k] = c
		}
	}
	return out
}

// isSensitive reports whether viewers may not see a field: HAProxy's user
// level hides addresses and cookie values.
func isSensitive(field string) bool {
	switch field {
	case "addr", "ck", "col":
		return true
	}
	return false
}
