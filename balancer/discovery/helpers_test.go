package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"tether/balancer"
)

// testDNS is an in-process authoritative DNS server on 127.0.0.1 (UDP and
// TCP on the same port) whose records a test changes while it runs.
type testDNS struct {
	Addr string

	mu      sync.Mutex
	records map[string][]dns.RR // by lower-case FQDN
	extra   map[string][]dns.RR // additional records by lower-case FQDN
	rcode   int                 // forced rcode when not success
	mute    bool                // never answer
	// ignoreEDNS sends the whole answer over UDP whatever the client
	// announced, like a broken server.
	ignoreEDNS bool
	// raw, when set, replaces the answer with these bytes (the query ID is
	// copied into the first two bytes when there are at least two).
	raw []byte

	udpQueries atomic.Int64
	tcpQueries atomic.Int64
	lastEDNS   atomic.Int64 // UDP size announced by the last query, -1 without OPT
}

func startDNS(t *testing.T) *testDNS {
	t.Helper()
	d := &testDNS{records: map[string][]dns.RR{}, extra: map[string][]dns.RR{}}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc, ln = nil, nil
	}
	if pc == nil {
		t.Fatal("could not get the same UDP and TCP port on 127.0.0.1")
	}
	d.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve("udp"))}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(d.serve("tcp"))}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return d
}

// set replaces the records of name: "A 127.0.0.1", "AAAA ::1",
// "SRV 0 10 8080 target.example.", "CNAME other.example.".
func (d *testDNS) set(name string, rrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records[strings.ToLower(dns.Fqdn(name))] = parseRRs(name, rrs)
}

// setExtra sets the additional records returned with name's answers.
func (d *testDNS) setExtra(name string, rrs map[string][]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []dns.RR
	for owner, list := range rrs {
		out = append(out, parseRRs(owner, list)...)
	}
	d.extra[strings.ToLower(dns.Fqdn(name))] = out
}

func (d *testDNS) remove(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.records, strings.ToLower(dns.Fqdn(name)))
}

func (d *testDNS) configure(fn func(d *testDNS)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d)
}

func parseRRs(name string, rrs []string) []dns.RR {
	var out []dns.RR
	for _, s := range rrs {
		rr, err := dns.NewRR(dns.Fqdn(name) + " 0 IN " + s)
		if err != nil {
			panic(fmt.Sprintf("bad test record %q: %v", s, err))
		}
		out = append(out, rr)
	}
	return out
}

func (d *testDNS) serve(proto string) func(w dns.ResponseWriter, req *dns.Msg) {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		if proto == "udp" {
			d.udpQueries.Add(1)
		} else {
			d.tcpQueries.Add(1)
		}
		size := 512
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
			d.lastEDNS.Store(int64(size))
		} else {
			d.lastEDNS.Store(-1)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.mute || len(req.Question) != 1 {
			return
		}
		if d.raw != nil {
			b := append([]byte(nil), d.raw...)
			if len(b) >= 2 {
				b[0], b[1] = byte(req.Id>>8), byte(req.Id)
			}
			w.Write(b)
			return
		}
		q := req.Question[0]
		resp := new(dns.Msg)
		resp.SetReply(req)
		resp.Authoritative = true
		name := strings.ToLower(q.Name)
		rrs, ok := d.records[name]
		switch {
		case d.rcode != dns.RcodeSuccess:
			resp.Rcode = d.rcode
		case !ok:
			resp.Rcode = dns.RcodeNameError
		default:
			for _, rr := range rrs {
				if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
					resp.Answer = append(resp.Answer, dns.Copy(rr))
				}
			}
			if q.Qtype == dns.TypeSRV {
				resp.Extra = append(resp.Extra, d.extra[name]...)
			}
		}
		if proto == "udp" && !d.ignoreEDNS {
			resp.Truncate(size)
		}
		w.WriteMsg(resp)
	}
}

// fakeBalancer records the changes a Resolver applies and answers
// Snapshot from them, standing in for *balancer.Balancer.
type fakeBalancer struct {
	mu      sync.Mutex
	snap    balancer.Snapshot
	changes []balancer.Change
	// reject makes ApplyBatch fail, like a balancer refusing a change.
	reject bool
	// batches counts the batches applied.
	batches int
}

func newFakeBalancer(cfg balancer.Config) *fakeBalancer {
	f := &fakeBalancer{}
	for _, be := range cfg.Backends {
		bs := balancer.BackendStatus{Config: be}
		servers := append([]balancer.Server(nil), be.Servers...)
		for _, t := range be.Templates {
			for _, name := range t.Names() {
				s := t.Params
				s.Name, s.Address = name, t.FQDN
				servers = append(servers, s)
			}
		}
		for i, s := range servers {
			st := balancer.ServerStatus{ID: i + 1, Config: s, Weight: max(s.Weight, 1), Op: balancer.OpRunning}
			if !isIP(s.Address) {
				// Like the balancer: a host name or no address waits in
				// maintenance for resolution.
				st.Admin |= balancer.AdminRMaint
			}
			bs.Servers = append(bs.Servers, st)
		}
		f.snap.Backends = append(f.snap.Backends, bs)
	}
	return f
}

// ApplyBatch applies changes all or none, counting the batches.
func (f *fakeBalancer) ApplyBatch(o balancer.Origin, changes ...balancer.Change) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	saved := slices.Clone(f.snap.Backends)
	for i := range saved {
		saved[i].Servers = slices.Clone(saved[i].Servers)
	}
	nChanges, version := len(f.changes), f.snap.Version
	for _, c := range changes {
		if err := f.apply(c, o); err != nil {
			f.snap.Backends, f.changes, f.snap.Version = saved, f.changes[:nChanges], version
			return err
		}
	}
	f.batches++
	return nil
}

func (f *fakeBalancer) apply(c balancer.Change, o balancer.Origin) error {
	if o.Channel != "dns" {
		return fmt.Errorf("unexpected origin %+v", o)
	}
	if f.reject {
		return balancer.ErrInvalid
	}
	be := f.snap.Backend(c.BackendName())
	if be == nil {
		return balancer.ErrNoSuchBackend
	}
	switch c := c.(type) {
	case balancer.SetAddr:
		st := be.Server(c.Server)
		if st == nil {
			return balancer.ErrNoSuchServer
		}
		if !c.Resolved {
			return fmt.Errorf("SetAddr without Resolved: %+v", c)
		}
		if c.Address == "" {
			// Like the balancer, keep showing the last address.
			st.Admin |= balancer.AdminRMaint
		} else {
			if !isIP(c.Address) {
				return balancer.ErrInvalidAddress
			}
			st.Config.Address = c.Address
			st.Admin &^= balancer.AdminRMaint
		}
		if c.PortSet {
			st.Config.Port, st.Config.PortSet = c.Port, true
		}
	case balancer.SetWeight:
		st := be.Server(c.Server)
		if st == nil {
			return balancer.ErrNoSuchServer
		}
		st.Weight = c.Weight
	default:
		return fmt.Errorf("unexpected change %T", c)
	}
	f.changes = append(f.changes, c)
	f.snap.Version++
	return nil
}

func (f *fakeBalancer) Snapshot() *balancer.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snap
	s.Backends = append([]balancer.BackendStatus(nil), f.snap.Backends...)
	for i := range s.Backends {
		s.Backends[i].Servers = append([]balancer.ServerStatus(nil), s.Backends[i].Servers...)
	}
	return &s
}

func (f *fakeBalancer) changeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.changes)
}

// addrs returns "server=address" for every server of a backend, with
// "MAINT" for servers in maintenance-by-resolution.
func addrsOf(snap *balancer.Snapshot, backend string) map[string]string {
	out := map[string]string{}
	be := snap.Backend(backend)
	if be == nil {
		return out
	}
	for _, s := range be.Servers {
		v := s.Config.Address
		if s.Admin&balancer.AdminRMaint != 0 {
			v = "MAINT"
		}
		if s.Config.PortSet && v != "MAINT" {
			v = net.JoinHostPort(v, fmt.Sprint(s.Config.Port))
		}
		out[s.Config.Name] = v
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// fastResolvers is a resolvers section that resolves every 50ms.
func fastResolvers(name string, ns ...balancer.Nameserver) balancer.Resolvers {
	return balancer.Resolvers{
		Name:           name,
		Nameservers:    ns,
		TimeoutResolve: 50 * time.Millisecond,
		TimeoutRetry:   50 * time.Millisecond,
		Hold:           map[string]time.Duration{},
	}
}

// templateConfig is one backend with one server-template resolving fqdn.
func templateConfig(res balancer.Resolvers, fqdn string, slots int, params balancer.Server) balancer.Config {
	params.Resolvers = res.Name
	if params.InitAddr == nil {
		params.InitAddr = []string{"none"}
	}
	return balancer.Config{
		Resolvers: []balancer.Resolvers{res},
		Backends: []balancer.Backend{{
			Name:      "b",
			Balance:   balancer.RoundRobin,
			Templates: []balancer.ServerTemplate{{Prefix: "web", Low: 1, High: slots, FQDN: fqdn, Params: params}},
		}},
	}
}

// runResolver starts a resolver on cfg against a fake balancer built from
// InitAddrs' output, and stops it when the test ends.
func runResolver(t *testing.T, cfg balancer.Config, opts ...Option) (*Resolver, *fakeBalancer) {
	t.Helper()
	initCfg, errs := InitAddrs(context.Background(), cfg, func(ctx context.Context, host string) ([]netip.Addr, error) {
		return nil, fmt.Errorf("no libc lookups in tests (%s)", host)
	}, nil)
	if len(errs) > 0 {
		t.Fatalf("InitAddrs: %v", errs)
	}
	fb := newFakeBalancer(initCfg)
	opts = append([]Option{WithResolvConf("")}, opts...)
	r := New(cfg, fb, nil, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
	})
	return r, fb
}

// counter reads one counter of a nameserver.
func counter(r *Resolver, section, ns string, pick func(*counters) *atomic.Int64) int64 {
	for _, sec := range r.sections {
		if sec.name != section {
			continue
		}
		for _, n := range sec.nameservers {
			if n.name == ns {
				return pick(&n.c).Load()
			}
		}
	}
	return -1
}

type atomicInt = atomic.Int64
