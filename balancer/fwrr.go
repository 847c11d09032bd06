package balancer

import (
	"sort"
	"sync"
)

// HAProxy 2.6 weight constants (include/haproxy/backend-t.h, server-t.h).
// A server's effective weight is its user weight times beWeightScale.
const (
	beWeightScale   = 16
	srvUWeightRange = 256
	srvEWeightMax   = srvUWeightRange * beWeightScale
)

// rrMember describes one server of a backend to the round-robin state:
// its identity across table swaps, its current user weight (0..256), whether
// it may take new load-balanced traffic, whether it is a backup, and its
// maxconn (0 for none).
type rrMember struct {
	key     *serverLive
	weight  int
	usable  bool
	backup  bool
	maxConn int
}

// fwrr reproduces HAProxy's "fast weighted round-robin" (balance roundrobin,
// src/lb_fwrr.c) so that servers are picked in exactly HAProxy's order,
// including after weight changes and servers leaving and returning.
//
// Servers sit in three ordered trees: "init" (servers yet to be placed in
// the current round, heaviest first), "curr" (servers placed by their next
// position in the round) and "next" (servers pushed to the following round).
// HAProxy uses eb32 trees whose duplicate keys keep insertion order; here a
// slice sorted by key with stable insertion does the same, which costs O(n)
// per pick and is fine for backends of up to a few thousand servers.
//
// Backup servers are not scheduled: as in HAProxy without option
// allbackups, only the first usable backup (in ID order) takes traffic, and
// only while no active server is usable. Like HAProxy, a saturated server
// (one with a maxconn whose slots are all taken or whose queue is not
// empty) is skipped without losing its place; when every active server is
// saturated, next returns nil and the request waits in the backend's queue.
//
// An fwrr is safe for concurrent use.
type fwrr struct {
	mu      sync.Mutex
	started bool
	act     fwrrGroup
	// servers lists the known servers in ID order.
	servers []*fwrrServer
	byKey   map[*serverLive]*fwrrServer
	// srvAct counts usable active servers; fbck is the first usable backup.
	srvAct int
	fbck   *fwrrServer
}

// fwrrServer is the round-robin state of one server (HAProxy's npos, lpos,
// rweight, lb_tree and lb_node, with cur_/next_ state and weight).
type fwrrServer struct {
	key    *serverLive
	backup bool
	// curUsable/curEW are the committed state and effective weight;
	// nextUsable/nextEW the ones being applied by a transition.
	curUsable, nextUsable bool
	curEW, nextEW         int
	npos, lpos, rweight   int
	// tree is the tree the server was last queued in (nil when down);
	// linked reports whether it is still in it (it is taken out while
	// being picked).
	tree   *fwrrTree
	linked bool
	node   uint32
	// maxConn is the server's maxconn (0 for none).
	maxConn int
}

// fwrrGroup is a set of servers scheduled together (HAProxy's fwrr_group).
type fwrrGroup struct {
	curr       fwrrTree
	t          [2]fwrrTree
	init, next *fwrrTree
	// currPos is the position in the current round; currWeight the total
	// weight of the current round; nextWeight the total weight of usable
	// servers, used for the following round.
	currPos, currWeight, nextWeight int
}

// fwrrTree is an ordered multiset of servers by key. nodes is sorted by
// decreasing key, and among equal keys by decreasing insertion time, so the
// first server (lowest key, earliest inserted) is the last element.
type fwrrTree struct {
	nodes []*fwrrServer
}

func (t *fwrrTree) first() *fwrrServer {
	if n := len(t.nodes); n > 0 {
		return t.nodes[n-1]
	}
	return nil
}

func (t *fwrrTree) insert(s *fwrrServer, key uint32) {
	s.node = key
	i := sort.Search(len(t.nodes), func(i int) bool { return t.nodes[i].node <= key })
	t.nodes = append(t.nodes, nil)
	copy(t.nodes[i+1:], t.nodes[i:])
	t.nodes[i] = s
	s.tree = t
	s.linked = true
}

func (t *fwrrTree) remove(s *fwrrServer) {
	n := len(t.nodes)
	if n > 0 && t.nodes[n-1] == s {
		t.nodes[n-1] = nil
		t.nodes = t.nodes[:n-1]
		return
	}
	for i := sort.Search(n, func(i int) bool { return t.nodes[i].node <= s.node }); i < n && t.nodes[i].node == s.node; i++ {
		if t.nodes[i] == s {
			copy(t.nodes[i:], t.nodes[i+1:])
			t.nodes[n-1] = nil
			t.nodes = t.nodes[:n-1]
			return
		}
	}
}

// newFWRR returns an empty round-robin state; the first update places the
// backend's servers as HAProxy does at startup.
func newFWRR() *fwrr {
	f := &fwrr{byKey: make(map[*serverLive]*fwrrServer)}
	f.act.init, f.act.next = &f.act.t[0], &f.act.t[1]
	return f
}

// update brings the state in line with the backend's servers, given in ID
// order. The first call places every usable active server as HAProxy does
// at startup. Later calls apply, in ID order, HAProxy's transitions (server
// up, server down, weight change) to each server whose usability or weight
// changed since the previous call; servers that disappeared are taken down
// first, and new servers start as down, like a server added in maintenance.
func (f *fwrr) update(members []rrMember) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		f.start(members)
		return
	}
	if f.sameServers(members) {
		// The common case, a change to one server's state or weight:
		// update the servers in place.
		for i, m := range members {
			s := f.servers[i]
			s.maxConn = m.maxConn
			ew := m.weight * beWeightScale
			f.change(s, m.usable && ew > 0, ew)
		}
		f.pickBackup()
		return
	}
	present := make(map[*serverLive]bool, len(members))
	for _, m := range members {
		present[m.key] = true
	}
	for _, s := range f.servers {
		if old := f.byKey[s.key]; old == s && !present[s.key] {
			f.change(s, false, 0)
			delete(f.byKey, s.key)
		}
	}
	servers := make([]*fwrrServer, 0, len(members))
	for _, m := range members {
		s := f.byKey[m.key]
		if s != nil && s.backup != m.backup {
			f.change(s, false, 0)
			s = nil
		}
		if s == nil {
			s = &fwrrServer{key: m.key, backup: m.backup}
			f.byKey[m.key] = s
		}
		s.maxConn = m.maxConn
		servers = append(servers, s)
		ew := m.weight * beWeightScale
		f.change(s, m.usable && ew > 0, ew)
	}
	f.servers = servers
	f.pickBackup()
}

// updateAt applies new settings to the servers at the given positions
// (members[k] is the server at position at[k]), the servers being those of
// the previous update. It reports false, changing nothing, when f does not
// hold those servers there; the caller then calls update.
func (f *fwrr) updateAt(at []int, members []rrMember) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.started {
		return false
	}
	for k, i := range at {
		if i >= len(f.servers) || f.servers[i].key != members[k].key || f.servers[i].backup != members[k].backup {
			return false
		}
	}
	backup := false
	for k, i := range at {
		s, m := f.servers[i], members[k]
		s.maxConn = m.maxConn
		ew := m.weight * beWeightScale
		f.change(s, m.usable && ew > 0, ew)
		backup = backup || m.backup
	}
	if backup {
		f.pickBackup()
	}
	return true
}

// sameServers reports whether members are the servers f holds, in order,
// each still active or backup as before.
func (f *fwrr) sameServers(members []rrMember) bool {
	if len(members) != len(f.servers) {
		return false
	}
	for i, m := range members {
		if s := f.servers[i]; s.key != m.key || s.backup != m.backup {
			return false
		}
	}
	return true
}

// pickBackup sets the backup server used when no active one is usable:
// the first usable backup.
func (f *fwrr) pickBackup() {
	f.fbck = nil
	for _, s := range f.servers {
		if s.backup && s.curUsable {
			f.fbck = s
			break
		}
	}
}

// start builds the initial state (fwrr_init_server_groups): every usable
// active server goes into the init tree by weight, in ID order.
func (f *fwrr) start(members []rrMember) {
	f.started = true
	total := 0
	for _, m := range members {
		ew := m.weight * beWeightScale
		s := &fwrrServer{key: m.key, backup: m.backup, curEW: ew, nextEW: ew, maxConn: m.maxConn}
		s.curUsable = m.usable && ew > 0
		s.nextUsable = s.curUsable
		f.servers = append(f.servers, s)
		f.byKey[m.key] = s
		if s.curUsable && !s.backup {
			f.srvAct++
			total += ew
		}
		if s.curUsable && s.backup && f.fbck == nil {
			f.fbck = s
		}
	}
	g := &f.act
	g.currPos, g.currWeight, g.nextWeight = total, total, total
	for _, s := range f.servers {
		if s.curUsable && !s.backup {
			f.queueByWeight(g.init, s)
		}
	}
}

// change applies a new usability and effective weight to a server
// (HAProxy's update_server_eweight, which falls back to set_server_status_up
// or set_server_status_down when usability changes).
func (f *fwrr) change(s *fwrrServer, usable bool, ew int) {
	if usable == s.curUsable && ew == s.curEW {
		return
	}
	s.nextUsable, s.nextEW = usable, ew
	if s.backup {
		f.commit(s)
		return
	}
	g := &f.act
	switch {
	case !s.curUsable && !usable:
	case !s.curUsable && usable:
		g.nextWeight += ew
		f.srvAct++
		f.getSrv(s)
		s.npos = g.currPos + (g.nextWeight+g.currWeight-g.currPos)/ew
		f.queueSrv(s)
	case s.curUsable && !usable:
		g.nextWeight -= s.curEW
		f.srvAct--
		f.dequeue(s)
		s.tree = nil
	default:
		g.nextWeight += ew - s.curEW
		switch s.tree {
		case g.init:
			f.dequeue(s)
			f.queueByWeight(g.init, s)
		case nil:
			f.dequeue(s)
			f.getSrv(s)
			s.npos = g.currPos + (g.nextWeight+g.currWeight-g.currPos)/ew
			f.queueSrv(s)
		default:
			// In the current or next round: keep the server's place
			// unless it has consumed it, then move it by the new step.
			f.getSrv(s)
			prev := s.npos
			step := g.nextWeight / ew
			s.npos = s.lpos + step
			s.rweight = 0
			if s.npos > prev {
				s.npos = prev
			}
			if s.npos < g.currPos+2 {
				s.npos = g.currPos + step
			}
			f.dequeue(s)
			f.queueSrv(s)
		}
	}
	f.commit(s)
}

func (f *fwrr) commit(s *fwrrServer) {
	s.curUsable, s.curEW = s.nextUsable, s.nextEW
}

func (f *fwrr) dequeue(s *fwrrServer) {
	if s.linked {
		s.tree.remove(s)
		s.linked = false
	}
}

// queueByWeight puts a server in an init or next tree, heaviest first.
func (f *fwrr) queueByWeight(t *fwrrTree, s *fwrrServer) {
	t.insert(s, uint32(srvEWeightMax-s.nextEW))
}

// queueSrv puts a server back in the current tree at its next position, or
// in the next tree when that position is beyond the current round.
func (f *fwrr) queueSrv(s *fwrrServer) {
	g := &f.act
	switch {
	case !s.nextUsable:
		s.tree = nil
	case s.nextEW <= 0 || s.npos >= 2*g.currWeight || s.npos >= g.currWeight+g.nextWeight:
		s.npos -= g.currWeight
		f.queueByWeight(g.next, s)
	default:
		// The key orders by position, then heavier (and more behind)
		// servers first; it wraps like HAProxy's 32-bit key.
		key := uint32(srvUWeightRange*s.npos) + uint32(srvEWeightMax+s.rweight-s.nextEW)/beWeightScale
		g.curr.insert(s, key)
	}
}

// getSrv prepares a server's position when taking it out of its tree.
func (f *fwrr) getSrv(s *fwrrServer) {
	g := &f.act
	switch s.tree {
	case g.init:
		s.npos, s.rweight = 0, 0
	case g.next:
		s.npos += g.currWeight
	case nil:
		s.npos = g.currPos
	}
}

// fromGroup returns the first server of the current tree if its turn has
// come, else the heaviest server not yet placed, else the first server of
// the current tree (or nil).
func (f *fwrr) fromGroup() *fwrrServer {
	g := &f.act
	s1 := g.curr.first()
	if s1 != nil && s1.curEW != 0 && s1.npos <= g.currPos {
		return s1
	}
	if s2 := g.init.first(); s2 != nil && s2.curEW != 0 {
		s2.npos, s2.rweight = 0, 0
		return s2
	}
	return s1
}

// updatePosition computes a picked server's next position in the round.
func (f *fwrr) updatePosition(s *fwrrServer) {
	g := &f.act
	ew := s.curEW
	if ew == 0 {
		return
	}
	if s.npos == 0 {
		s.npos = g.currPos
	}
	s.lpos = s.npos
	s.npos += g.nextWeight / ew
	s.rweight += g.nextWeight % ew
	if s.rweight >= ew {
		s.rweight -= ew
		s.npos++
	}
}

// next returns the next server in HAProxy's order, or nil when no server is
// usable or every active one is saturated (fwrr_get_next_server). avoid is
// skipped when another server is available (redispatch); like HAProxy,
// skipping a server, avoided or saturated, does not cost it its turn.
func (f *fwrr) next(avoid *serverLive) *serverLive {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srvAct == 0 {
		if f.fbck != nil {
			return f.fbck.key
		}
		return nil
	}
	g := &f.act
	switched := false
	var srv, avoided *fwrrServer
	// skipped lists the servers taken out of the trees and passed over.
	var buf [4]*fwrrServer
	skipped := buf[:0]
pick:
	for {
		if g.currWeight == 0 {
			g.currPos, g.currWeight = g.nextWeight, g.nextWeight
		}
		for srv = f.fromGroup(); srv == nil; srv = f.fromGroup() {
			if switched {
				srv = avoided
				break pick
			}
			switched = true
			g.init, g.next = g.next, g.init
			g.currWeight = g.nextWeight
			g.currPos = g.currWeight
		}
		f.updatePosition(srv)
		f.dequeue(srv)
		g.currPos++
		if !srv.key.full(srv.maxConn) {
			if avoid == nil || srv.key != avoid || avoided != nil {
				break
			}
			avoided = srv
		}
		skipped = append(skipped, srv)
	}
	if srv != nil {
		f.queueSrv(srv)
	}
	for _, s := range skipped {
		if s == srv {
			continue
		}
		if switched {
			f.queueByWeight(g.init, s)
		} else {
			f.queueSrv(s)
		}
	}
	if srv == nil {
		return nil
	}
	return srv.key
}

// staticMap reproduces HAProxy's map-based round-robin (balance static-rr,
// src/lb_map.c): a table of sum(weight) slots, filled so that each server
// appears in proportion to its weight with the first declared servers first
// among equals, walked by an index that survives recomputations.
//
// Weights are divided by the greatest common divisor of the weights seen by
// the first update, as HAProxy does at startup. With no usable active server
// the table is built from the usable backup servers, sized by the first
// usable backup's weight, as HAProxy does without option allbackups. Server
// maxconn saturation is not taken into account.
//
// A staticMap is safe for concurrent use.
type staticMap struct {
	mu      sync.Mutex
	started bool
	wmult   int
	servers []staticServer
	slots   []*serverLive
	rrIdx   int
}

// staticServer is one server as the map sees it.
type staticServer struct {
	key    *serverLive
	backup bool
	usable bool
	ew     int
	wscore int
}

// newStaticMap returns an empty static round-robin state.
func newStaticMap() *staticMap {
	return &staticMap{wmult: 1}
}

// update brings the map in line with the backend's servers, given in ID
// order, and rebuilds it when a server's usability or weight changed. The
// position in the map is kept, as in HAProxy.
func (m *staticMap) update(members []rrMember) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		m.started = true
		g := 0
		for _, mb := range members {
			if mb.weight > 0 {
				g = gcdInt(g, mb.weight)
			}
		}
		if g > 0 {
			m.wmult = g
		}
	}
	changed := len(members) != len(m.servers)
	servers := make([]staticServer, len(members))
	for i, mb := range members {
		ew := (mb.weight + m.wmult - 1) / m.wmult
		servers[i] = staticServer{key: mb.key, backup: mb.backup, usable: mb.usable && ew > 0, ew: ew}
		if !changed {
			o := m.servers[i]
			changed = o.key != mb.key || o.backup != mb.backup || o.usable != servers[i].usable || o.ew != ew
		}
	}
	m.servers = servers
	if changed || m.slots == nil {
		m.recalc()
	}
}

// updateAt is update for the servers at the given positions only; it
// reports false, changing nothing, when the map does not hold those
// servers there.
func (m *staticMap) updateAt(at []int, members []rrMember) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started || m.slots == nil {
		return false
	}
	for k, i := range at {
		if i >= len(m.servers) || m.servers[i].key != members[k].key || m.servers[i].backup != members[k].backup {
			return false
		}
	}
	changed := false
	for k, i := range at {
		mb := members[k]
		ew := (mb.weight + m.wmult - 1) / m.wmult
		n := staticServer{key: mb.key, backup: mb.backup, usable: mb.usable && ew > 0, ew: ew}
		changed = changed || m.servers[i] != n
		m.servers[i] = n
	}
	if changed {
		m.recalc()
	}
	return true
}

// recalc rebuilds the map (recalc_server_map).
func (m *staticMap) recalc() {
	act, totAct := 0, 0
	fbck := -1
	for i, s := range m.servers {
		switch {
		case !s.usable:
		case !s.backup:
			act++
			totAct += s.ew
		case fbck < 0:
			fbck = i
		}
	}
	backup, tot := false, totAct
	if act == 0 {
		if fbck < 0 {
			m.slots = m.slots[:0]
			return
		}
		backup, tot = true, m.servers[fbck].ew
	}
	m.slots = make([]*serverLive, tot)
	for i := range m.servers {
		m.servers[i].wscore = 0
	}
	for o := range tot {
		best, bestV := -1, 0
		for i := range m.servers {
			s := &m.servers[i]
			if !s.usable || s.backup != backup {
				continue
			}
			if tot == 1 {
				best = i
				break
			}
			s.wscore += s.ew
			if v := (s.wscore + tot) / tot; best < 0 || v > bestV {
				best, bestV = i, v
			}
		}
		m.slots[o] = m.servers[best].key
		m.servers[best].wscore -= tot
	}
}

// next returns the next server of the map, or nil when no server is
// usable. avoid is skipped when another server is available (redispatch).
func (m *staticMap) next(avoid *serverLive) *serverLive {
	m.mu.Lock()
	defer m.mu.Unlock()
	tot := len(m.slots)
	if tot == 0 {
		return nil
	}
	if m.rrIdx < 0 || m.rrIdx >= tot {
		m.rrIdx = 0
	}
	var avoided *serverLive
	avoidedIdx := 0
	idx := m.rrIdx
	for {
		s := m.slots[idx]
		idx++
		if s != avoid {
			m.rrIdx = idx
			return s
		}
		avoided, avoidedIdx = s, idx
		if idx == tot {
			idx = 0
		}
		if idx == m.rrIdx {
			break
		}
	}
	m.rrIdx = avoidedIdx
	return avoided
}

func gcdInt(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// byHash returns the server of map slot hash modulo the map size, as
// HAProxy's map-based hashing (balance source without hash-type
// consistent) does, or nil when no server is usable.
func (m *staticMap) byHash(hash uint32) *serverLive {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.slots) == 0 {
		return nil
	}
	return m.slots[hash%uint32(len(m.slots))]
}
