package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/miekg/dns"

	"tether/balancer"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestXXH32(t *testing.T) {
	tests := []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0x02cc5d05},
		{"abc", 0, 0x32d153ff},
		{"Nobody inspects the spammish repetition", 0, 0xe2293b2f},
		{"\x7f\x00\x00\x0d", 1, 0x0e60fb4e}, // 127.0.0.13 as HAProxy keys an A record
	}
	for _, tc := range tests {
		if got := xxh32([]byte(tc.in), tc.seed); got != tc.want {
			t.Errorf("xxh32(%q, %d) = %08x, want %08x", tc.in, tc.seed, got, tc.want)
		}
	}
}

func TestInitAddrs(t *testing.T) {
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "dual.example":
			return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.7")}, nil
		case "v4.example":
			return []netip.Addr{netip.MustParseAddr("127.0.0.8")}, nil
		}
		return nil, fmt.Errorf("no such host %s", host)
	}
	last := map[string]netip.AddrPort{"b/s-last": netip.MustParseAddrPort("127.0.0.9:80")}
	tests := []struct {
		name    string
		server  balancer.Server
		want    string
		wantErr bool
	}{
		{"ip literal untouched", balancer.Server{Name: "s", Address: "127.0.0.1"}, "127.0.0.1", false},
		{"default last,libc", balancer.Server{Name: "s", Address: "v4.example"}, "127.0.0.8", false},
		{"default uses last first", balancer.Server{Name: "s-last", Address: "v4.example"}, "127.0.0.9", false},
		{"libc failure without none is an error", balancer.Server{Name: "s", Address: "nx.example"}, "", true},
		{"resolvers appends none", balancer.Server{Name: "s", Address: "nx.example", Resolvers: "d"}, "", false},
		{"libc prefers ipv4", balancer.Server{Name: "s", Address: "dual.example", ResolvePrefer: "ipv4"}, "127.0.0.7", false},
		{"libc takes first without preference", balancer.Server{Name: "s", Address: "dual.example"}, "::1", false},
		{"none", balancer.Server{Name: "s", Address: "v4.example", InitAddr: []string{"none", "libc"}}, "", false},
		{"ip method", balancer.Server{Name: "s", Address: "nx.example", InitAddr: []string{"libc", "127.0.0.42"}}, "127.0.0.42", false},
		{"unknown method", balancer.Server{Name: "s", Address: "nx.example", InitAddr: []string{"bogus"}}, "", true},
		{"srv name never uses libc", balancer.Server{Name: "s", Address: "_http._tcp.v4.example", InitAddr: []string{"libc", "none"}}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := balancer.Config{Backends: []balancer.Backend{{Name: "b", Servers: []balancer.Server{tc.server}}}}
			out, errs := InitAddrs(context.Background(), cfg, lookup, last)
			if (len(errs) > 0) != tc.wantErr {
				t.Fatalf("errors %v, want error %v", errs, tc.wantErr)
			}
			if got := out.Backends[0].Servers[0].Address; got != tc.want {
				t.Errorf("address %q, want %q", got, tc.want)
			}
			if cfg.Backends[0].Servers[0].Address != tc.server.Address {
				t.Error("input config modified")
			}
		})
	}
}

// TestInitAddrsTemplate: every slot resolves on its own with libc, so all
// get the same first address (checked live on HAProxy 2.6 with
// "server-template loc 3 localhost:80 init-addr libc,none").
func TestInitAddrsTemplate(t *testing.T) {
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}, nil
	}
	cfg := balancer.Config{Backends: []balancer.Backend{{
		Name:    "b",
		Servers: []balancer.Server{{Name: "plain", Address: "127.0.0.5"}},
		Templates: []balancer.ServerTemplate{
			{Prefix: "loc", Low: 1, High: 3, FQDN: "localhost", Params: balancer.Server{Port: 80, PortSet: true, InitAddr: []string{"libc", "none"}}},
			{Prefix: "dns", Low: 0, High: 1, FQDN: "svc.example", Params: balancer.Server{Resolvers: "d", InitAddr: []string{"none"}}},
		},
	}}}
	out, errs := InitAddrs(context.Background(), cfg, lookup, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	be := out.Backends[0]
	if len(be.Templates) != 1 || be.Templates[0].Prefix != "dns" {
		t.Errorf("templates %+v, want only the unresolved one kept", be.Templates)
	}
	var got []string
	for _, s := range be.Servers {
		got = append(got, s.Name+"="+s.Address)
	}
	want := []string{"plain=127.0.0.5", "loc1=127.0.0.1", "loc2=127.0.0.1", "loc3=127.0.0.1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("servers %v, want %v", got, want)
	}
	if be.Servers[1].Port != 80 || !be.Servers[1].PortSet {
		t.Errorf("slot lost its port: %+v", be.Servers[1])
	}
}

// TestChooseAddr checks HAProxy's scoring on one resolution.
func TestChooseAddr(t *testing.T) {
	mk := func(addrs ...string) *resolution {
		res := &resolution{}
		for _, a := range addrs {
			ip := netip.MustParseAddr(a)
			typ := dns.TypeA
			if ip.Is6() {
				typ = dns.TypeAAAA
			}
			rec := record{typ: typ, addr: ip}
			res.insertItem(&item{record: rec, key: rec.key()})
		}
		return res
	}
	srv := func(name string, prefer uint16, dup bool, cur string) *serverState {
		s := &serverState{ref: balancer.ServerRef{Backend: "b", Server: name}, prefer: prefer, allowDup: dup}
		if cur != "" {
			s.addr = netip.MustParseAddr(cur)
		}
		return s
	}
	tests := []struct {
		name    string
		records []string
		servers []*serverState
		want    []string // chosen address per server, "" for none
	}{
		{"xxh32 order spreads slots", []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"},
			[]*serverState{srv("w1", dns.TypeAAAA, false, ""), srv("w2", dns.TypeAAAA, false, ""), srv("w3", dns.TypeAAAA, false, ""), srv("w4", dns.TypeAAAA, false, "")},
			[]string{"127.0.0.13", "127.0.0.12", "127.0.0.11", ""}},
		{"current address wins ties", []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"},
			[]*serverState{srv("w1", dns.TypeA, false, "127.0.0.11"), srv("w2", dns.TypeA, false, "")},
			[]string{"127.0.0.11", "127.0.0.13"}},
		{"preferred family first", []string{"127.0.0.11", "::1"},
			[]*serverState{srv("w1", dns.TypeA, false, ""), srv("w2", dns.TypeA, false, "")},
			[]string{"127.0.0.11", "::1"}},
		{"ipv6 preferred by default", []string{"127.0.0.11", "::1"},
			[]*serverState{srv("w1", dns.TypeAAAA, false, "")},
			[]string{"::1"}},
		{"allow-dup-ip reuses", []string{"127.0.0.11"},
			[]*serverState{srv("w1", dns.TypeA, true, ""), srv("w2", dns.TypeA, true, "")},
			[]string{"127.0.0.11", "127.0.0.11"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mk(tc.records...)
			for i, s := range tc.servers {
				ret, ip := res.chooseAddr(s)
				got := ""
				if ret != updNoIPFound {
					got = ip.String()
				}
				if got != tc.want[i] {
					t.Errorf("server %s chose %q, want %q", s.ref.Server, got, tc.want[i])
				}
			}
		})
	}
}

func packMsg(t testing.TB, m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseResponse(t *testing.T) {
	q := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.Response = true
		return m
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	withAnswers := func(m *dns.Msg, rrs ...string) *dns.Msg {
		for _, s := range rrs {
			m.Answer = append(m.Answer, rr(s))
		}
		return m
	}
	valid := packMsg(t, withAnswers(q("a.example.", dns.TypeA), "a.example. 0 IN A 127.0.0.1"))
	trunc := withAnswers(q("a.example.", dns.TypeA), "a.example. 0 IN A 127.0.0.1")
	trunc.Truncated = true
	nx := q("a.example.", dns.TypeA)
	nx.Rcode = dns.RcodeNameError
	servfail := q("a.example.", dns.TypeA)
	servfail.Rcode = dns.RcodeServerFailure
	tests := []struct {
		name string
		buf  []byte
		want respCause
	}{
		{"valid", valid, respValid},
		{"empty", nil, respInvalid},
		{"header only", valid[:12], respInvalid},
		{"cut in answer", valid[:len(valid)-2], respInvalid},
		{"trailing garbage after answers", append(append([]byte(nil), valid...), 1, 2, 3), respValid},
		{"nx", packMsg(t, nx), respNX},
		{"servfail", packMsg(t, servfail), respError},
		{"no answers", packMsg(t, q("a.example.", dns.TypeA)), respAncountZero},
		{"truncated", packMsg(t, trunc), respTruncated},
		{"other owner", packMsg(t, withAnswers(q("a.example.", dns.TypeA), "b.example. 0 IN A 127.0.0.1")), respInvalid},
		{"cname chain", packMsg(t, withAnswers(q("a.example.", dns.TypeA), "a.example. 0 IN CNAME c.example.", "c.example. 0 IN A 127.0.0.1")), respValid},
		{"cname last", packMsg(t, withAnswers(q("a.example.", dns.TypeA), "a.example. 0 IN CNAME c.example.")), respCNAMEError},
		{"cname broken chain", packMsg(t, withAnswers(q("a.example.", dns.TypeA), "a.example. 0 IN CNAME c.example.", "d.example. 0 IN A 127.0.0.1")), respCNAMEError},
		{"two questions", func() []byte {
			m := withAnswers(q("a.example.", dns.TypeA), "a.example. 0 IN A 127.0.0.1")
			m.Question = append(m.Question, m.Question[0])
			return packMsg(t, m)
		}(), respQueryCount},
	}
	for _, tc := range tests {
		if _, got := parseResponse(tc.buf, 100); got != tc.want {
			t.Errorf("%s: cause %d, want %d", tc.name, got, tc.want)
		}
	}
	// Announcing more answers than accepted_payload_size allows is invalid.
	if _, got := parseResponse(valid, 0); got != respInvalid {
		t.Errorf("too many answers: cause %d, want invalid", got)
	}
}

// TestQueryFormat checks the query HAProxy-style: RD set, one question,
// an OPT record with the accepted payload size.
func TestQueryFormat(t *testing.T) {
	b, err := buildQuery(0x1234, "Web.Example", dns.TypeAAAA, 4096)
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	opt := m.IsEdns0()
	if m.Id != 0x1234 || !m.RecursionDesired || len(m.Question) != 1 || opt == nil || opt.UDPSize() != 4096 {
		t.Fatalf("query: %v", &m)
	}
	if m.Question[0].Qtype != dns.TypeAAAA {
		t.Errorf("qtype %d", m.Question[0].Qtype)
	}
}

func TestRunTwice(t *testing.T) {
	d := startDNS(t)
	cfg := templateConfig(fastResolvers("mydns", ns(d.Addr)), svc, 1, balancer.Server{})
	r, _ := runResolver(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The first Run is in progress; wait until it opened its socket.
	waitFor(t, 2*time.Second, "first run", func() (bool, string) {
		return d.udpQueries.Load() > 0, ""
	})
	if err := r.Run(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second Run: %v, want an error", err)
	}
}
