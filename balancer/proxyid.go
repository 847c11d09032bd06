package balancer

import (
	"fmt"
	"math"
)

// MaxProxyID is the largest proxy ID HAProxy accepts ("id" takes a
// positive 32-bit integer).
const MaxProxyID = math.MaxInt32

// RuntimeAPIProxy stands, in the list given to AssignProxyIDs, for
// HAProxy's internal Runtime API proxy ("GLOBAL"), which the first "stats"
// line of the global section creates. It takes a place in the numbering
// without taking a number.
const RuntimeAPIProxy = -1

// AssignProxyIDs numbers proxies the way HAProxy 2.6 does. ids lists the
// proxies in declaration order with their explicit IDs ("id" keyword), 0
// for none, and RuntimeAPIProxy where the Runtime API proxy was created.
// A proxy without an ID takes the first number not explicitly used from a
// counter that starts at 1 and moves past every proxy, explicit or not,
// and past the Runtime API proxy. The result has the same length as ids,
// with 0 in the Runtime API proxy's place. Explicit IDs are kept even when
// two are equal; callers check that.
func AssignProxyIDs(ids []int) []int {
	used := make(map[int]bool, len(ids))
	for _, id := range ids {
		if id > 0 {
			used[id] = true
		}
	}
	out := make([]int, len(ids))
	next := 1
	for i, id := range ids {
		switch {
		case id == RuntimeAPIProxy:
			id = 0
		case id <= 0:
			for used[next] {
				next++
			}
			id = next
			used[id] = true
			next = id
		}
		out[i] = id
		next++
	}
	return out
}

// ProxyRef is a frontend or a backend as ProxyOrder sees it.
type ProxyRef struct {
	Name string
	ID   int
}

// Proxy is one HAProxy proxy: a frontend, a backend, or the two halves of
// a listen section, which share a name and an ID. Frontend and Backend
// index the lists given to ProxyOrder; -1 marks a missing half.
type Proxy struct {
	Frontend, Backend int
}

// ProxyOrder returns the proxies made of frontends and backends, each
// listed in its declaration order, in the order HAProxy declares them as
// far as IDs tell it. A frontend and a backend with the same name and the
// same ID, 0 included, form one proxy (a listen section). The two lists are
// merged keeping the order of each: a listen section comes once everything
// before it in both lists has come, and between a frontend and a backend
// that could come next the one with the smaller ID goes first (the
// frontend where an ID is 0). This is HAProxy's order whenever IDs grow
// with declaration order, always so without "id" keywords, and it keeps
// the declaration order of a file that Format writes.
//
// HAProxy lists proxies in this order in show stat, and backends in their
// own order in show backend and show servers state.
func ProxyOrder(frontends, backends []ProxyRef) []Proxy {
	byRef := make(map[ProxyRef]int, len(backends))
	for i, b := range backends {
		if _, dup := byRef[b]; !dup {
			byRef[b] = i
		}
	}
	feBE := make([]int, len(frontends)) // the backend half of a listen, or -1
	beFE := make([]int, len(backends))  // the frontend half of a listen, or -1
	for i := range beFE {
		beFE[i] = -1
	}
	for i, f := range frontends {
		feBE[i] = -1
		if j, ok := byRef[f]; ok && beFE[j] < 0 {
			feBE[i], beFE[j] = j, i
		}
	}
	feDone := make([]bool, len(frontends))
	beDone := make([]bool, len(backends))
	out := make([]Proxy, 0, len(frontends)+len(backends))
	emit := func(p Proxy) {
		if p.Frontend >= 0 {
			feDone[p.Frontend] = true
		}
		if p.Backend >= 0 {
			beDone[p.Backend] = true
		}
		out = append(out, p)
	}
	fi, bi := 0, 0
	for {
		for fi < len(frontends) && feDone[fi] {
			fi++
		}
		for bi < len(backends) && beDone[bi] {
			bi++
		}
		haveF, haveB := fi < len(frontends), bi < len(backends)
		switch {
		case !haveF && !haveB:
			return out
		case haveF && haveB && feBE[fi] == bi:
			emit(Proxy{Frontend: fi, Backend: bi})
		case haveF && feBE[fi] < 0 && (!haveB || beFE[bi] >= 0 || frontendFirst(frontends[fi].ID, backends[bi].ID)):
			emit(Proxy{Frontend: fi, Backend: -1})
		case haveB && beFE[bi] < 0:
			emit(Proxy{Frontend: -1, Backend: bi})
		case haveF && (!haveB || frontendFirst(frontends[fi].ID, backends[bi].ID)):
			// Listen sections in crossed orders: no order keeps both
			// lists; take the one with the smaller ID.
			emit(Proxy{Frontend: fi, Backend: feBE[fi]})
		default:
			emit(Proxy{Frontend: beFE[bi], Backend: bi})
		}
	}
}

// frontendFirst reports whether a frontend with ID fe goes before a backend
// with ID be when either could come next.
func frontendFirst(fe, be int) bool {
	return fe == 0 || be == 0 || fe < be
}

// ConfigProxies returns cfg's proxies in ProxyOrder, indexing
// cfg.Frontends and cfg.Backends.
func ConfigProxies(cfg *Config) []Proxy {
	fes := make([]ProxyRef, len(cfg.Frontends))
	for i, f := range cfg.Frontends {
		fes[i] = ProxyRef{Name: f.Name, ID: f.ID}
	}
	bes := make([]ProxyRef, len(cfg.Backends))
	for i, b := range cfg.Backends {
		bes[i] = ProxyRef{Name: b.Name, ID: b.ID}
	}
	return ProxyOrder(fes, bes)
}

// NumberProxies returns cfg with an ID on every frontend and backend. IDs
// already set are kept; a proxy with ID 0 gets the number HAProxy would give
// it in a file listing the proxies in ConfigProxies order after the global
// section: from 2 when there is a stats socket (HAProxy's Runtime API proxy
// takes the first place), else from 1. The Frontends and Backends slices of
// the result are copies; cfg is not modified. NumberProxies fails on an ID
// outside 0..MaxProxyID or used by two proxies.
func NumberProxies(cfg Config) (Config, error) {
	cfg.Frontends = append([]Frontend(nil), cfg.Frontends...)
	cfg.Backends = append([]Backend(nil), cfg.Backends...)
	proxies := ConfigProxies(&cfg)
	ids := make([]int, 0, len(proxies)+1)
	withAPI := len(cfg.Global.StatsSockets) > 0
	if withAPI {
		ids = append(ids, RuntimeAPIProxy)
	}
	owner := make(map[int]string, len(proxies))
	for _, p := range proxies {
		id, what := 0, ""
		switch {
		case p.Frontend >= 0 && p.Backend >= 0:
			id, what = cfg.Frontends[p.Frontend].ID, fmt.Sprintf("listen %q", cfg.Frontends[p.Frontend].Name)
		case p.Frontend >= 0:
			id, what = cfg.Frontends[p.Frontend].ID, fmt.Sprintf("frontend %q", cfg.Frontends[p.Frontend].Name)
		default:
			id, what = cfg.Backends[p.Backend].ID, fmt.Sprintf("backend %q", cfg.Backends[p.Backend].Name)
		}
		if id < 0 || id > MaxProxyID {
			return Config{}, fmt.Errorf("%s: proxy ID %d out of range 1..%d", what, id, MaxProxyID)
		}
		if other, dup := owner[id]; dup && id != 0 {
			return Config{}, fmt.Errorf("%s has the same proxy ID %d as %s", what, id, other)
		}
		owner[id] = what
		ids = append(ids, id)
	}
	assigned := AssignProxyIDs(ids)
	if withAPI {
		assigned = assigned[1:]
	}
	for i, p := range proxies {
		if p.Frontend >= 0 {
			cfg.Frontends[p.Frontend].ID = assigned[i]
		}
		if p.Backend >= 0 {
			cfg.Backends[p.Backend].ID = assigned[i]
		}
	}
	return cfg, nil
}
