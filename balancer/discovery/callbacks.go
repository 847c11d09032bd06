package discovery

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"tether/balancer"
)

// merge folds a valid response into the records a resolution keeps, then
// drops obsolete records and binds SRV records to template slots
// (HAProxy's resolv_validate_dns_response and resolv_check_response).
func (r *Resolver) merge(res *resolution, msg *message, now time.Time) {
	r.begin()
	for i := range msg.answers {
		rec := msg.answers[i]
		if it := res.findItem(&rec); it != nil {
			it.lastSeen = now
			if rec.typ == dns.TypeSRV {
				it.weight = rec.weight
			}
			continue
		}
		res.insertItem(&item{record: rec, key: rec.key(), lastSeen: now})
	}
	if msg.qtype == dns.TypeSRV {
		for _, ex := range msg.extra {
			if !refreshAdditional(res, ex, now) {
				attachAdditional(res, ex, now)
			}
		}
	}
	r.checkResponse(res, now)
}

// refreshAdditional marks an additional record already bound to an SRV
// record as seen.
func refreshAdditional(res *resolution, ex extraRecord, now time.Time) bool {
	for _, it := range res.items {
		if it.typ != dns.TypeSRV || it.ar == nil {
			continue
		}
		if it.ar.typ != ex.rec.typ || it.ar.lastSeen.Equal(now) || it.host != ex.name {
			continue
		}
		if it.ar.addr == ex.rec.addr {
			it.ar.lastSeen = now
			return true
		}
	}
	return false
}

// attachAdditional binds an additional record to the first SRV record
// naming it that has none yet.
func attachAdditional(res *resolution, ex extraRecord, now time.Time) {
	for _, it := range res.items {
		if it.typ == dns.TypeSRV && it.ar == nil && it.host == ex.name {
			it.ar = &item{record: ex.rec, key: ex.rec.key(), lastSeen: now}
			return
		}
	}
}

// checkResponse drops records not seen for the obsolete hold period and
// gives each SRV record a template slot.
func (r *Resolver) checkResponse(res *resolution, now time.Time) {
	obsolete := res.sec.hold.obsolete
	for _, it := range append([]*item(nil), res.items...) {
		if it.ar != nil && it.ar.lastSeen.Add(obsolete).Before(now) {
			it.ar = nil
		}
		if it.lastSeen.Add(obsolete).Before(now) {
			for _, s := range append([]*serverState(nil), it.attached...) {
				if it.typ == dns.TypeSRV {
					r.cleanupSRVServer(s)
				} else {
					s.ipItem = nil
				}
			}
			it.attached = nil
			res.removeItem(it)
			continue
		}
		if it.typ != dns.TypeSRV {
			continue
		}
		for _, rq := range res.srvrqs {
			r.bindSRV(rq, it, now)
		}
	}
}

// bindSRV updates the slot bound to an SRV record, binding a free slot
// first when there is none.
func (r *Resolver) bindSRV(rq *srvRequest, it *item, now time.Time) {
	var s *serverState
	for _, a := range it.attached {
		if a.srvrq == rq {
			s = a
			break
		}
	}
	if s == nil && len(rq.free) > 0 {
		s, rq.free = rq.free[0], rq.free[1:]
	}
	if s == nil {
		return
	}
	s.noResolution = false
	if it.ar != nil && (it.ar.typ == dns.TypeA || it.ar.typ == dns.TypeAAAA) {
		if s.addr != it.ar.addr {
			r.log.Info("server changed its IP", "server", s.String(), "from", addrString(s.addr), "to", it.ar.addr.String(), "by", "DNS additional record")
			s.addr = it.ar.addr
		}
		s.noResolution = true
		r.unlink(s)
	}
	if s.host == "" {
		s.host = it.host
		r.log.Info("server FQDN changed", "server", s.String(), "fqdn", s.host, "by", "SRV record")
	}
	if s.srvItem != it {
		s.srvItem = it
		it.attached = append(it.attached, s)
	}
	if !s.noResolution && s.res == nil {
		r.link(s, now)
	}
	r.srvrqUpdateStatus(s, !s.addr.IsValid())
	s.port = int(it.port)
	s.portSet = true
	s.weight = (int(it.weight) + 255) / 256
}

// cleanupSRVServer frees a slot whose SRV record went away: no host name,
// no address, maintenance, and back at the end of the free list.
func (r *Resolver) cleanupSRVServer(s *serverState) {
	r.unlink(s)
	r.srvrqUpdateStatus(s, true)
	s.host = ""
	s.addr = netip.Addr{}
	s.noResolution = true
	s.weight = -1
	if s.srvItem != nil {
		s.srvItem.attached = detach(s.srvItem.attached, s)
		s.srvItem = nil
	}
	if s.srvrq != nil {
		s.srvrq.free = append(s.srvrq.free, s)
	}
}

// srvrqUpdateStatus puts an SRV slot in or out of maintenance depending on
// whether it has an address. It reports whether it entered maintenance.
func (r *Resolver) srvrqUpdateStatus(s *serverState, hasNoIP bool) bool {
	if s.srvrq == nil {
		return false
	}
	if !hasNoIP {
		if s.rmaint {
			s.rmaint = false
			r.log.Info("server administratively READY thanks to valid DNS answer", "server", s.String())
		}
		return false
	}
	if s.rmaint {
		return false
	}
	s.rmaint = true
	r.log.Info("server is going DOWN for maintenance", "server", s.String(), "reason", "entry removed from SRV record")
	return true
}

// updateStatus applies a resolution's outcome to a server's maintenance
// state (HAProxy's snr_update_srv_status): a valid answer with an address
// ends maintenance, a valid answer without one starts it, and an error
// starts it once no valid answer came for the hold period of that error.
// It reports whether the server entered or left maintenance.
func (r *Resolver) updateStatus(s *serverState, hasNoIP bool, now time.Time) bool {
	res := s.res
	if res == nil {
		return r.srvrqUpdateStatus(s, hasNoIP)
	}
	hold := res.sec.hold
	var wait time.Duration
	var reason string
	switch res.status {
	case statusValid:
		if hasNoIP {
			if s.rmaint {
				return false
			}
			s.rmaint = true
			r.log.Info("server is going DOWN for maintenance", "server", s.String(), "reason", "No IP for server")
			return true
		}
		if !s.rmaint {
			return false
		}
		s.rmaint = false
		r.log.Info("server administratively READY thanks to valid DNS answer", "server", s.String())
		return true
	case statusNX:
		wait, reason = hold.nx, "DNS NX status"
	case statusTimeout:
		wait, reason = hold.timeout, "DNS timeout status"
	case statusRefused:
		wait, reason = hold.refused, "DNS refused status"
	case statusOther, statusInvalid:
		wait, reason = hold.other, "unspecified DNS error"
	default:
		return false
	}
	if now.Before(res.lastValid.Add(wait)) || s.rmaint {
		return false
	}
	s.rmaint = true
	r.log.Info("server is going DOWN for maintenance", "server", s.String(), "reason", reason)
	return true
}

// resolved chooses a server's address from a valid answer (HAProxy's
// snr_resolution_cb). ns is the nameserver that answered, given only for
// the first server of the resolution, whose changes it counts.
func (r *Resolver) resolved(s *serverState, res *resolution, ns *nameserver, now time.Time) {
	if s.gone || (s.srvrq != nil && s.noResolution) {
		return
	}
	ret, ip := res.chooseAddr(s)
	hasNoIP := false
	switch ret {
	case updSrvIPNotFound:
		by := "DNS cache"
		if ns != nil {
			ns.c.update.Add(1)
			by = res.sec.name + "/" + ns.name
		}
		r.log.Info("server changed its IP", "server", s.String(), "from", addrString(s.addr), "to", ip.String(), "by", by)
		s.addr = ip
	case updNoIPFound:
		hasNoIP = true
	}
	if r.updateStatus(s, hasNoIP, now) && hasNoIP {
		s.addr = netip.Addr{}
	}
}

// reportSuccess hands a valid answer to every requester.
func (r *Resolver) reportSuccess(res *resolution, ns *nameserver, now time.Time) {
	r.begin()
	for i, s := range append([]*serverState(nil), res.servers...) {
		var first *nameserver
		if i == 0 {
			first = ns
		}
		r.resolved(s, res, first, now)
	}
	res.reset(now)
}

// reportError hands a failed resolution to every requester; the records
// are kept while any requester is still within its hold period.
func (r *Resolver) reportError(res *resolution, now time.Time) {
	r.begin()
	keep := false
	for _, rq := range res.srvrqs {
		if r.srvrqError(rq, res, now) {
			keep = true
		}
	}
	for _, s := range append([]*serverState(nil), res.servers...) {
		if s.gone {
			keep = true
			continue
		}
		if r.updateStatus(s, true, now) {
			s.addr = netip.Addr{}
			s.detachIP()
			continue
		}
		keep = true
	}
	if !keep {
		for _, it := range res.items {
			for _, s := range it.attached {
				if s.ipItem == it {
					s.ipItem = nil
				}
			}
		}
		res.items = nil
	}
	res.reset(now)
}

// srvrqError frees the slots of an SRV name that failed for longer than
// its hold period. It reports whether the records must be kept.
func (r *Resolver) srvrqError(rq *srvRequest, res *resolution, now time.Time) bool {
	hold := res.sec.hold
	wait := hold.other
	switch res.status {
	case statusNX:
		wait = hold.nx
	case statusTimeout:
		wait = hold.timeout
	case statusRefused:
		wait = hold.refused
	}
	if now.Before(res.lastValid.Add(wait)) {
		return true
	}
	for _, it := range res.items {
		if it.typ != dns.TypeSRV {
			continue
		}
		for _, s := range append([]*serverState(nil), it.attached...) {
			if s.srvrq == rq {
				r.cleanupSRVServer(s)
			}
		}
	}
	return false
}

// begin loads the balancer's view of every managed server before the
// resolver changes its own, so that addresses set by an operator count as
// current addresses. It does so once per event.
func (r *Resolver) begin() {
	if r.view != nil {
		return
	}
	r.view = map[balancer.ServerRef]*balancer.ServerStatus{}
	snap := r.applier.Snapshot()
	if snap != nil {
		for i := range snap.Backends {
			be := &snap.Backends[i]
			for j := range be.Servers {
				st := &be.Servers[j]
				r.view[balancer.ServerRef{Backend: be.Config.Name, Server: st.Config.Name}] = st
			}
		}
	}
	for _, s := range r.servers {
		st := r.view[s.ref]
		if st == nil {
			s.gone = true
			continue
		}
		s.gone = false
		s.rmaint = st.Admin&balancer.AdminRMaint != 0
		s.addr = netip.Addr{}
		if !s.rmaint {
			// HAProxy forgets the address of a server in maintenance by
			// resolution; a balancer may still show the last one.
			s.addr, _ = netip.ParseAddr(st.Config.Address)
		}
	}
}

// commit applies to the balancer whatever differs from its view, as one
// batch per resolvers section (one journal entry for a whole answer), then
// forgets the view. A batch the balancer refuses is applied change by
// change, so that one server it cannot take does not hold back the others.
func (r *Resolver) commit() {
	if r.view == nil {
		return
	}
	var sections []string
	batches := make(map[string][]balancer.Change)
	for _, s := range r.servers {
		st := r.view[s.ref]
		if st == nil {
			continue
		}
		cs := r.changes(s, st)
		if len(cs) == 0 {
			continue
		}
		if _, ok := batches[s.sec.name]; !ok {
			sections = append(sections, s.sec.name)
		}
		batches[s.sec.name] = append(batches[s.sec.name], cs...)
	}
	r.view = nil
	for _, sec := range sections {
		origin := balancer.Origin{Channel: "dns", Source: sec}
		if err := r.applier.ApplyBatch(origin, batches[sec]...); err == nil {
			continue
		}
		for _, c := range batches[sec] {
			if err := r.applier.ApplyBatch(origin, c); err != nil {
				r.log.Warn("apply resolved change", "change", fmt.Sprintf("%+v", c), "err", err)
			}
		}
	}
}

// changes returns what must change for the balancer to run s as resolved.
func (r *Resolver) changes(s *serverState, st *balancer.ServerStatus) []balancer.Change {
	have, _ := netip.ParseAddr(st.Config.Address)
	inRMaint := st.Admin&balancer.AdminRMaint != 0
	var out []balancer.Change
	switch {
	case s.rmaint || !s.addr.IsValid():
		if !inRMaint {
			out = append(out, balancer.SetAddr{ServerRef: s.ref, Resolved: true})
		}
	case have != s.addr || inRMaint || (s.portSet && (st.Config.Port != s.port || !st.Config.PortSet)):
		out = append(out, balancer.SetAddr{ServerRef: s.ref, Address: s.addr.String(), Port: s.port, PortSet: s.portSet, Resolved: true})
	}
	if s.weight >= 0 && !s.rmaint && s.addr.IsValid() && st.Weight != s.weight {
		out = append(out, balancer.SetWeight{ServerRef: s.ref, Weight: s.weight})
	}
	return out
}
