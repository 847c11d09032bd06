package balancer

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
)

// buildSchedule computes the usable servers, the first usable backup and
// the cumulative weights for random draws, on a backend that is not yet
// published.
func (be *backendRT) buildSchedule() {
	be.usable, be.cumWeight = nil, nil
	rescanBackup := be.changedAll
	if be.changedAll {
		be.usableCount = 0
		for _, s := range be.servers.All() {
			if s.usable() && !s.cfg.Backup {
				be.usableCount++
			}
		}
	} else {
		// replace kept usableCount current; only a changed backup server
		// can change which backup is used.
		for _, i := range be.changed {
			rescanBackup = rescanBackup || be.servers.At(i).cfg.Backup
		}
	}
	if rescanBackup {
		be.backup = nil
		for _, s := range be.servers.All() {
			if s.cfg.Backup && s.usable() {
				be.backup = s
				break
			}
		}
	}
	switch be.cfg.Balance {
	case RoundRobin, StaticRR, Source, "":
		// Their long-lived states keep their own lists (publishRR).
		return
	}
	be.usable = be.usableServers()
	be.cumWeight = make([]int, len(be.usable))
	total := 0
	for i, s := range be.usable {
		total += s.weight
		be.cumWeight[i] = total
	}
}

// activeUsable is 1 when s is a usable active server, else 0.
func activeUsable(s *serverRT) int {
	if s.usable() && !s.cfg.Backup {
		return 1
	}
	return 0
}

// usableServers lists the usable active servers in ID order.
func (be *backendRT) usableServers() []*serverRT {
	out := make([]*serverRT, 0, be.usableCount)
	for _, s := range be.servers.All() {
		if activeUsable(s) == 1 {
			out = append(out, s)
		}
	}
	return out
}

// randomServer draws a usable active server with probability proportional
// to its weight.
func (be *backendRT) randomServer() *serverRT {
	total := be.cumWeight[len(be.cumWeight)-1]
	i, _ := slices.BinarySearch(be.cumWeight, rand.IntN(total)+1)
	return be.usable[i]
}

// sourceHash is HAProxy's source-address hash for map-based lookups: the
// address's 32-bit big-endian words XORed together, or 0 when a single
// server is in use.
func sourceHash(client netip.Addr, inUse int) uint32 {
	if inUse <= 1 || !client.IsValid() {
		return 0
	}
	var h uint32
	if client.Is4() {
		b := client.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := client.As16()
	for i := 0; i < 16; i += 4 {
		h ^= binary.BigEndian.Uint32(b[i:])
	}
	return h
}

// pick chooses a server for a request that persistence did not assign, or
// nil when none is usable or, for roundrobin, leastconn and first, when
// every usable server is saturated (see saturated). exclude is skipped when another server exists
// (used when redispatching away from a failed server).
func (be *backendRT) pick(client netip.Addr, exclude *serverRT) *serverRT {
	var avoid *serverLive
	if exclude != nil {
		avoid = exclude.live
	}
	switch be.cfg.Balance {
	case RoundRobin, "":
		return be.serverOfLive(be.live.fwrr.next(avoid))
	case StaticRR:
		return be.serverOfLive(be.live.smap.next(avoid))
	case Source:
		return be.serverOfLive(be.live.smap.byHash(sourceHash(client, be.usableCount)))
	}
	if len(be.usable) == 0 {
		if be.backup != nil && be.backup != exclude {
			return be.backup
		}
		return nil
	}
	var s *serverRT
	switch be.cfg.Balance {
	case LeastConn:
		s = be.pickLeastConn(exclude)
	case First:
		s = be.pickFirst(exclude)
	default:
		// HAProxy's random draws two servers and keeps the less loaded.
		s = be.randomServer()
		if o := be.randomServer(); o != s && o.live.cur.Load()*int64(s.weight) < s.live.cur.Load()*int64(o.weight) {
			s = o
		}
	}
	if s == exclude && len(be.usable) > 1 {
		for _, o := range be.usable {
			if o != exclude {
				return o
			}
		}
	}
	return s
}

// saturated reports, after pick returned nil, whether servers are usable
// but saturated, in which case the request waits in the backend's queue.
func (be *backendRT) saturated() bool {
	return be.usableCount > 0 || be.backup != nil
}

// pickLeastConn returns the usable server with the fewest connections in
// use relative to its weight, rotating among ties. Saturated servers are
// skipped as HAProxy does; nil means every one is saturated.
func (be *backendRT) pickLeastConn(exclude *serverRT) *serverRT {
	n := len(be.usable)
	start := int(be.live.rr.Add(1) % uint64(n))
	var best *serverRT
	var bestCur, bestW int64
	for i := range n {
		s := be.usable[(start+i)%n]
		if s == exclude && n > 1 || s.live.full(s.cfg.MaxConn) {
			continue
		}
		cur, w := s.live.cur.Load(), int64(s.weight)
		if best == nil || cur*bestW < bestCur*w {
			best, bestCur, bestW = s, cur, w
		}
	}
	return best
}

// pickFirst returns the first usable server, in ID order, with a free
// connection slot, or nil when every one is saturated.
func (be *backendRT) pickFirst(exclude *serverRT) *serverRT {
	saturated := false
	for _, s := range be.usable {
		if s == exclude {
			continue
		}
		if !s.live.full(s.cfg.MaxConn) {
			return s
		}
		saturated = true
	}
	if saturated {
		return nil
	}
	return be.usable[0]
}
