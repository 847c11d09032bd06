package discovery

import (
	"net/netip"
	"sort"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"tether/balancer"
)

// status is the outcome of a resolution's last attempt (RSLV_STATUS_*).
type status int

const (
	statusNone status = iota
	statusValid
	statusInvalid
	statusNX
	statusRefused
	statusTimeout
	statusOther
)

// holds are a resolvers section's hold periods.
type holds struct {
	nx, refused, timeout, other, valid, obsolete time.Duration
}

// section is one resolvers section with its nameservers and resolutions.
// Everything but the counters is owned by the Resolver's loop.
type section struct {
	name           string
	payload        int
	retries        int
	timeoutResolve time.Duration
	timeoutRetry   time.Duration
	hold           holds
	nameservers    []*nameserver

	resolutions []*resolution
	queryIDs    map[uint16]*resolution
	idSeed      uint64
}

// counters are a nameserver's show resolvers counters. Like HAProxy 2.6,
// nothing increments cname or timeout (a timed-out resolution is reported
// to servers, not counted).
type counters struct {
	sent, sndError, valid, update, cname, cnameError, anyErr, nx, timeout,
	refused, other, invalid, tooBig, truncated, outdated atomic.Int64
}

// resolution is one name resolved for one or more requesters: HAProxy
// shares a resolution between every server of a section that resolves the
// same name with the same preferred record type.
type resolution struct {
	sec      *section
	host     string // lower case, no trailing dot
	prefType uint16
	qtype    uint16

	running        bool
	try            int
	id             uint16
	lastQuery      time.Time
	lastResolution time.Time
	lastValid      time.Time
	nbQueries      int
	nbResponses    int
	status         status

	// items are the records kept from the answers, ordered by key.
	items []*item
	// servers request A/AAAA resolutions, srvrqs SRV ones; both are kept
	// in the order they were linked.
	servers []*serverState
	srvrqs  []*srvRequest
}

// item is one record kept from answers.
type item struct {
	record
	key      uint32
	lastSeen time.Time
	ar       *item // address from the additional section (SRV items)
	attached []*serverState
}

// serverState is what the resolver knows of one server it manages: the
// equivalent of HAProxy's server fields used by name resolution.
type serverState struct {
	ref      balancer.ServerRef
	sec      *section
	host     string // name resolved; "" for an SRV slot without a record
	prefer   uint16 // dns.TypeA or dns.TypeAAAA
	allowDup bool

	res    *resolution // the A/AAAA resolution, nil when none
	ipItem *item       // the record whose address the server uses

	srvrq        *srvRequest
	srvItem      *item
	noResolution bool // the address came from an additional record

	// addr and rmaint mirror the balancer's view: the current address
	// (invalid when none) and maintenance-by-resolution.
	addr   netip.Addr
	rmaint bool
	// port and weight come from SRV records; weight -1 leaves it alone.
	port    int
	portSet bool
	weight  int
	gone    bool // the server no longer exists in the balancer
}

// srvRequest is an SRV name resolved for the template slots of one backend.
type srvRequest struct {
	backend string
	name    string
	res     *resolution
	// free lists the slots not bound to an SRV record, in the order they
	// will be used.
	free []*serverState
}

// updResult is the outcome of choosing an address for a server
// (RSLV_UPD_*).
type updResult int

const (
	updNo updResult = iota
	updSrvIPNotFound
	updNoIPFound
)

// insertItem inserts it after every item whose key is lower or equal, the
// order HAProxy's tree walks duplicate keys in.
func (r *resolution) insertItem(it *item) {
	i := sort.Search(len(r.items), func(i int) bool { return r.items[i].key > it.key })
	r.items = append(r.items, nil)
	copy(r.items[i+1:], r.items[i:])
	r.items[i] = it
}

func (r *resolution) removeItem(it *item) {
	for i, x := range r.items {
		if x == it {
			r.items = append(r.items[:i], r.items[i+1:]...)
			return
		}
	}
}

func (r *resolution) hasItem(it *item) bool {
	for _, x := range r.items {
		if x == it {
			return true
		}
	}
	return false
}

// findItem returns the kept record equal to rec, if any.
func (r *resolution) findItem(rec *record) *item {
	for _, it := range r.items {
		if it.typ != rec.typ {
			continue
		}
		switch rec.typ {
		case dns.TypeA, dns.TypeAAAA:
			if it.addr == rec.addr {
				return it
			}
		case dns.TypeSRV:
			if it.target == rec.target && it.port == rec.port {
				return it
			}
		}
	}
	return nil
}

func detach(list []*serverState, s *serverState) []*serverState {
	for i, x := range list {
		if x == s {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// detachIP unbinds s from the record it uses.
func (s *serverState) detachIP() {
	if s.ipItem != nil {
		s.ipItem.attached = detach(s.ipItem.attached, s)
		s.ipItem = nil
	}
}

// chooseAddr picks a server's address from its resolution's records with
// HAProxy's scoring (resolv_get_ip_from_response): +8 for the preferred
// family, +2 when no other server of the same backend uses the address
// (without allow-dup-ip an address in use is skipped), +1 for the current
// address. The first record with the best score wins. A server still
// bound to a record it got earlier keeps it.
func (r *resolution) chooseAddr(s *serverState) (updResult, netip.Addr) {
	if s.ipItem != nil && r.hasItem(s.ipItem) {
		return updNo, netip.Addr{}
	}
	var found, new4, new6 *item
	maxScore := -1
	currentFound := false
	for _, it := range r.items {
		if it.typ != dns.TypeA && it.typ != dns.TypeAAAA {
			continue
		}
		score := 0
		if it.typ == s.prefer {
			score += 8
		}
		used := false
		for _, o := range it.attached {
			if o != s && o.ref.Backend == s.ref.Backend {
				used = true
				break
			}
		}
		if used {
			if !s.allowDup {
				continue
			}
		} else {
			score += 2
		}
		current := s.addr.IsValid() && s.addr.Unmap() == it.addr
		if current {
			score++
		}
		if score > maxScore {
			if it.typ == dns.TypeA {
				new4 = it
			} else {
				new6 = it
			}
			found = it
			currentFound = current
			maxScore = score
		}
	}
	if new4 == nil && new6 == nil {
		return updNoIPFound, netip.Addr{}
	}
	chosen := new6
	if s.prefer == dns.TypeA && new4 != nil || new6 == nil {
		chosen = new4
	}
	s.detachIP()
	found.attached = append(found.attached, s)
	s.ipItem = found
	// HAProxy moves its first record to the end of the tree for an
	// internal round robin; with distinct keys it lands where it was.
	first := r.items[0]
	r.items = r.items[1:]
	r.insertItem(first)
	if currentFound {
		return updNo, chosen.addr
	}
	return updSrvIPNotFound, chosen.addr
}
