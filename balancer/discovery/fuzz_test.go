package discovery

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"tether/balancer"
)

// FuzzHandleResponse feeds arbitrary packets to the response handler of a
// resolver with a query in flight for a template and an SRV name: it must
// never panic, a server in service always has an IP address, and no two
// slots of the A template share one.
func FuzzHandleResponse(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err == nil {
			f.Add(b, false)
			f.Add(b, true)
		}
	}
	a := new(dns.Msg)
	a.SetQuestion("myservice.example.local.", dns.TypeA)
	a.Response = true
	for _, s := range []string{"127.0.0.11", "127.0.0.12"} {
		rr, _ := dns.NewRR("myservice.example.local. 0 IN A " + s)
		a.Answer = append(a.Answer, rr)
	}
	seed(a)
	cn := a.Copy()
	rr, _ := dns.NewRR("myservice.example.local. 0 IN CNAME x.example.local.")
	cn.Answer = []dns.RR{rr}
	seed(cn)
	srv := new(dns.Msg)
	srv.SetQuestion("_http._tcp.svc.example.local.", dns.TypeSRV)
	srv.Response = true
	rr, _ = dns.NewRR("_http._tcp.svc.example.local. 0 IN SRV 0 10 8080 a.svc.example.local.")
	srv.Answer = []dns.RR{rr}
	rr, _ = dns.NewRR("a.svc.example.local. 0 IN A 127.0.0.21")
	srv.Extra = []dns.RR{rr}
	seed(srv)
	f.Add([]byte{}, false)
	f.Add([]byte{0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c}, true)

	f.Fuzz(func(t *testing.T, pkt []byte, srvQuery bool) {
		res := fastResolvers("mydns", balancer.Nameserver{Name: "ns1", Address: "127.0.0.1:1"})
		res.AcceptedPayloadSize = 4096
		cfg := balancer.Config{
			Resolvers: []balancer.Resolvers{res},
			Backends: []balancer.Backend{{Name: "b", Templates: []balancer.ServerTemplate{
				{Prefix: "web", Low: 1, High: 3, FQDN: "myservice.example.local", Params: balancer.Server{Resolvers: "mydns", InitAddr: []string{"none"}}},
				{Prefix: "srv", Low: 1, High: 2, FQDN: "_http._tcp.svc.example.local", Params: balancer.Server{Resolvers: "mydns", InitAddr: []string{"none"}}},
			}}},
		}
		initCfg, _ := InitAddrs(context.Background(), cfg, nil, nil)
		fb := newFakeBalancer(initCfg)
		r := New(cfg, fb, nil, WithResolvConf(""))
		sec := r.sections[0]
		now := time.Now()
		for _, q := range sec.resolutions {
			r.start(context.Background(), q, now)
			q.nbQueries = 1 // as if the nameserver had been reached
		}
		target := sec.resolutions[0]
		if srvQuery && len(sec.resolutions) > 1 {
			target = sec.resolutions[1]
		}
		if len(pkt) >= 2 {
			pkt = append([]byte(nil), pkt...)
			pkt[0], pkt[1] = byte(target.id>>8), byte(target.id)
		}
		for i := range 3 {
			r.handlePacket(context.Background(), sec.nameservers[0], pkt, now.Add(time.Duration(i)*time.Second))
			r.commit()
			r.process(context.Background(), now.Add(time.Duration(i)*time.Second+500*time.Millisecond))
			r.commit()
		}
		for _, be := range fb.Snapshot().Backends {
			used := map[string]string{}
			for _, s := range be.Servers {
				if s.Admin&balancer.AdminRMaint != 0 {
					continue
				}
				if !isIP(s.Config.Address) {
					t.Fatalf("server %s in service with address %q", s.Config.Name, s.Config.Address)
				}
				if !strings.HasPrefix(s.Config.Name, "web") {
					continue // SRV slots may share an additional record
				}
				if o, dup := used[s.Config.Address]; dup {
					t.Fatalf("servers %s and %s share %s without allow-dup-ip", o, s.Config.Name, s.Config.Address)
				}
				used[s.Config.Address] = s.Config.Name
			}
		}
	})
}
