package discovery

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"tether/balancer"
)

const svc = "myservice.example.local"

func ns(addr string) balancer.Nameserver { return balancer.Nameserver{Name: "ns1", Address: addr} }

// TestTemplateSlotsFollowRecords walks one template through records
// appearing, disappearing and changing. The expected slots follow
// HAProxy's order: records sorted by XXH32 of their address (.13, .12,
// .14, .11, .15 for these), new records to the first free slot.
func TestTemplateSlotsFollowRecords(t *testing.T) {
	d := startDNS(t)
	d.set(svc, "A 127.0.0.11", "A 127.0.0.12", "A 127.0.0.13")
	cfg := templateConfig(fastResolvers("mydns", ns(d.Addr)), svc, 5, balancer.Server{Port: 80, PortSet: true})
	r, fb := runResolver(t, cfg)

	steps := []struct {
		name    string
		records []string
		want    map[string]string
	}{
		{"three records fill three slots", []string{"A 127.0.0.11", "A 127.0.0.12", "A 127.0.0.13"},
			map[string]string{"web1": "127.0.0.13:80", "web2": "127.0.0.12:80", "web3": "127.0.0.11:80", "web4": "MAINT", "web5": "MAINT"}},
		{"a record disappears", []string{"A 127.0.0.11", "A 127.0.0.13"},
			map[string]string{"web1": "127.0.0.13:80", "web2": "MAINT", "web3": "127.0.0.11:80", "web4": "MAINT", "web5": "MAINT"}},
		{"a new record takes the first free slot", []string{"A 127.0.0.11", "A 127.0.0.13", "A 127.0.0.14"},
			map[string]string{"web1": "127.0.0.13:80", "web2": "127.0.0.14:80", "web3": "127.0.0.11:80", "web4": "MAINT", "web5": "MAINT"}},
		{"an address changes", []string{"A 127.0.0.11", "A 127.0.0.13", "A 127.0.0.15"},
			map[string]string{"web1": "127.0.0.13:80", "web2": "127.0.0.15:80", "web3": "127.0.0.11:80", "web4": "MAINT", "web5": "MAINT"}},
		{"more records than slots", []string{"A 127.0.0.11", "A 127.0.0.12", "A 127.0.0.13", "A 127.0.0.14", "A 127.0.0.15", "A 127.0.0.16", "A 127.0.0.17"},
			nil},
		{"the name disappears", nil, nil},
	}
	for _, step := range steps {
		if step.records == nil {
			d.remove(svc)
		} else {
			d.set(svc, step.records...)
		}
		want := step.want
		switch step.name {
		case "more records than slots":
			// Every slot has an address and no two share one.
			waitFor(t, 5*time.Second, step.name, func() (bool, string) {
				got := addrsOf(fb.Snapshot(), "b")
				seen := map[string]bool{}
				for _, v := range got {
					if v == "MAINT" || seen[v] {
						return false, fmt.Sprint(got)
					}
					seen[v] = true
				}
				return true, ""
			})
			continue
		case "the name disappears":
			// NXDOMAIN within hold nx (30s default) keeps every address.
			before := addrsOf(fb.Snapshot(), "b")
			nx := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.nx })
			waitFor(t, 5*time.Second, "NX answers", func() (bool, string) {
				n := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.nx })
				return n >= nx+4, fmt.Sprint(n)
			})
			if got := addrsOf(fb.Snapshot(), "b"); !equalMaps(got, before) {
				t.Fatalf("%s: addresses changed within hold nx: %v, was %v", step.name, got, before)
			}
			continue
		}
		waitFor(t, 5*time.Second, step.name, func() (bool, string) {
			got := addrsOf(fb.Snapshot(), "b")
			return equalMaps(got, want), fmt.Sprint(got)
		})
	}
	// The default preference is IPv6: every resolution asks AAAA first,
	// gets no answer record (any_err), then falls back to A.
	if n := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.anyErr }); n == 0 {
		t.Errorf("any_err = 0, want AAAA queries answered without records to count")
	}
}

// TestAppliesOnlyChanges checks that steady answers apply nothing.
func TestAppliesOnlyChanges(t *testing.T) {
	d := startDNS(t)
	d.set(svc, "A 127.0.0.11", "A 127.0.0.12")
	cfg := templateConfig(fastResolvers("mydns", ns(d.Addr)), svc, 3, balancer.Server{Port: 80, PortSet: true, ResolvePrefer: "ipv4"})
	r, fb := runResolver(t, cfg)
	waitFor(t, 5*time.Second, "two slots resolved", func() (bool, string) {
		got := addrsOf(fb.Snapshot(), "b")
		return got["web1"] != "MAINT" && got["web2"] != "MAINT", fmt.Sprint(got)
	})
	n := fb.changeCount()
	valid := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.valid })
	waitFor(t, 5*time.Second, "five more answers", func() (bool, string) {
		v := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.valid })
		return v >= valid+5, fmt.Sprint(v)
	})
	if got := fb.changeCount(); got != n {
		t.Fatalf("%d changes applied while the answers stayed the same", got-n)
	}
	// Two slots got an address and the third stayed in maintenance, which
	// it already was: exactly two changes.
	if n != 2 {
		t.Errorf("changes applied = %d, want 2", n)
	}
	// resolve-prefer ipv4 asks A only, so no AAAA miss is counted.
	if e := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.anyErr }); e != 0 {
		t.Errorf("any_err = %d with resolve-prefer ipv4, want 0", e)
	}
}

func bigAnswer(n int) []string {
	var rrs []string
	for i := 1; i <= n; i++ {
		rrs = append(rrs, fmt.Sprintf("A 127.0.1.%d", i))
	}
	return rrs
}

// TestAcceptedPayloadSize checks the EDNS0 size sent and what large
// answers do: truncated UDP answers are errors (HAProxy does not retry
// over TCP), answers above accepted_payload_size are dropped as too big,
// and a large enough size or a TCP nameserver gets every record.
func TestAcceptedPayloadSize(t *testing.T) {
	const records, slots = 40, 45
	tests := []struct {
		name       string
		payload    int
		tcp        bool
		ignoreEDNS bool
		wantAddrs  int
		counter    func(*counters) *atomic.Int64
	}{
		{name: "default 512 gets a truncated answer", payload: 0, wantAddrs: 0, counter: func(c *counters) *atomic.Int64 { return &c.truncated }},
		{name: "server ignoring EDNS sends too big", payload: 0, ignoreEDNS: true, wantAddrs: 0, counter: func(c *counters) *atomic.Int64 { return &c.tooBig }},
		{name: "8192 gets everything", payload: 8192, wantAddrs: records, counter: func(c *counters) *atomic.Int64 { return &c.valid }},
		{name: "tcp with 65535 gets everything", payload: 65535, tcp: true, wantAddrs: records, counter: func(c *counters) *atomic.Int64 { return &c.valid }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := startDNS(t)
			d.set(svc, bigAnswer(records)...)
			d.configure(func(d *testDNS) { d.ignoreEDNS = tc.ignoreEDNS })
			n := ns(d.Addr)
			n.TCP = tc.tcp
			res := fastResolvers("mydns", n)
			res.AcceptedPayloadSize = tc.payload
			cfg := templateConfig(res, svc, slots, balancer.Server{ResolvePrefer: "ipv4"})
			r, fb := runResolver(t, cfg)
			waitFor(t, 5*time.Second, "counter to move", func() (bool, string) {
				v := counter(r, "mydns", "ns1", tc.counter)
				return v >= 2, fmt.Sprint(v)
			})
			waitFor(t, 5*time.Second, "addresses", func() (bool, string) {
				got := addrsOf(fb.Snapshot(), "b")
				n := 0
				for _, v := range got {
					if v != "MAINT" {
						n++
					}
				}
				return n == tc.wantAddrs, fmt.Sprint(n)
			})
			wantEDNS := int64(512)
			if tc.payload > 0 {
				wantEDNS = int64(tc.payload)
			}
			if !tc.tcp {
				if got := d.lastEDNS.Load(); got != wantEDNS {
					t.Errorf("EDNS0 UDP size sent = %d, want %d", got, wantEDNS)
				}
				if q := d.tcpQueries.Load(); q != 0 {
					t.Errorf("%d queries went over TCP, want none (no TCP fallback)", q)
				}
			} else if q := d.udpQueries.Load(); q != 0 {
				t.Errorf("%d queries went over UDP to a tcp@ nameserver", q)
			}
		})
	}
}

// TestHoldPeriods checks that errors keep the last addresses for their
// hold period, then put the servers in maintenance.
func TestHoldPeriods(t *testing.T) {
	tests := []struct {
		name    string
		hold    string
		break_  func(d *testDNS)
		counter func(*counters) *atomic.Int64
	}{
		{"SERVFAIL", "other", func(d *testDNS) { d.rcode = dns.RcodeServerFailure }, func(c *counters) *atomic.Int64 { return &c.other }},
		{"REFUSED", "refused", func(d *testDNS) { d.rcode = dns.RcodeRefused }, func(c *counters) *atomic.Int64 { return &c.refused }},
		{"NXDOMAIN", "nx", func(d *testDNS) { d.rcode = dns.RcodeNameError }, func(c *counters) *atomic.Int64 { return &c.nx }},
		{"silence", "timeout", func(d *testDNS) { d.mute = true }, func(c *counters) *atomic.Int64 { return &c.sent }},
		{"garbage", "other", func(d *testDNS) { d.raw = []byte{0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xff} }, func(c *counters) *atomic.Int64 { return &c.invalid }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const hold = 1500 * time.Millisecond
			d := startDNS(t)
			d.set(svc, "A 127.0.0.11", "A 127.0.0.12")
			res := fastResolvers("mydns", ns(d.Addr))
			res.ResolveRetries = 2
			res.Hold[tc.hold] = hold
			cfg := templateConfig(res, svc, 2, balancer.Server{ResolvePrefer: "ipv4"})
			r, fb := runResolver(t, cfg)
			want := map[string]string{"web1": "127.0.0.12", "web2": "127.0.0.11"}
			waitFor(t, 5*time.Second, "resolved", func() (bool, string) {
				got := addrsOf(fb.Snapshot(), "b")
				return equalMaps(got, want), fmt.Sprint(got)
			})
			d.configure(tc.break_)
			broke := time.Now()
			base := counter(r, "mydns", "ns1", tc.counter)
			waitFor(t, 5*time.Second, "errors", func() (bool, string) {
				v := counter(r, "mydns", "ns1", tc.counter)
				return v >= base+3, fmt.Sprint(v)
			})
			if got := addrsOf(fb.Snapshot(), "b"); time.Since(broke) < hold-200*time.Millisecond && !equalMaps(got, want) {
				t.Fatalf("addresses changed within the hold period: %v", got)
			}
			waitFor(t, 5*time.Second, "maintenance after hold", func() (bool, string) {
				got := addrsOf(fb.Snapshot(), "b")
				return got["web1"] == "MAINT" && got["web2"] == "MAINT", fmt.Sprint(got)
			})
			if el := time.Since(broke); el < hold-100*time.Millisecond {
				t.Errorf("servers went to maintenance %v after the failure, before hold %v", el, hold)
			}
			// Recovery: the next valid answer brings them back.
			d.configure(func(d *testDNS) { d.rcode, d.mute, d.raw = 0, false, nil })
			waitFor(t, 5*time.Second, "recovered", func() (bool, string) {
				got := addrsOf(fb.Snapshot(), "b")
				return got["web1"] != "MAINT" && got["web2"] != "MAINT", fmt.Sprint(got)
			})
		})
	}
}

// TestDeadNameserver: nothing listens; the server keeps its init-addr
// address for hold timeout, then goes to maintenance, and Run stops
// promptly.
func TestDeadNameserver(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprint("tcp=", tcp), func(t *testing.T) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			dead := pc.LocalAddr().String()
			pc.Close()
			n := ns(dead)
			n.TCP = tcp
			res := fastResolvers("mydns", n)
			res.Hold["timeout"] = 700 * time.Millisecond
			cfg := balancer.Config{
				Resolvers: []balancer.Resolvers{res},
				Backends: []balancer.Backend{{Name: "b", Servers: []balancer.Server{
					{Name: "s1", Address: "app.example.local", Port: 80, PortSet: true, Resolvers: "mydns", InitAddr: []string{"127.0.0.50"}},
				}}},
			}
			r, fb := runResolver(t, cfg)
			start := time.Now()
			if got := addrsOf(fb.Snapshot(), "b")["s1"]; got != "127.0.0.50:80" {
				t.Fatalf("s1 = %q before any answer, want its init-addr", got)
			}
			waitFor(t, 5*time.Second, "maintenance", func() (bool, string) {
				got := addrsOf(fb.Snapshot(), "b")
				return got["s1"] == "MAINT", fmt.Sprint(got)
			})
			if el := time.Since(start); el < 600*time.Millisecond {
				t.Errorf("maintenance after %v, before hold timeout", el)
			}
			if v := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.valid }); v != 0 {
				t.Errorf("valid = %d from a dead nameserver", v)
			}
		})
	}
}

// TestSRVRecords covers SRV names: host and port from each record, the
// address from the additional section when present, else from resolving
// the target; a removed record frees its slot.
func TestSRVRecords(t *testing.T) {
	const name = "_http._tcp.svc.example.local"
	d := startDNS(t)
	d.set(name, "SRV 0 10 8080 a.svc.example.local.", "SRV 0 10 8081 b.svc.example.local.")
	d.setExtra(name, map[string][]string{"a.svc.example.local": {"A 127.0.0.21"}})
	d.set("b.svc.example.local", "A 127.0.0.22")
	cfg := templateConfig(fastResolvers("mydns", ns(d.Addr)), name, 3, balancer.Server{ResolvePrefer: "ipv4"})
	_, fb := runResolver(t, cfg)
	has := func(got map[string]string, v string) bool {
		for _, x := range got {
			if x == v {
				return true
			}
		}
		return false
	}
	waitFor(t, 5*time.Second, "both SRV targets", func() (bool, string) {
		got := addrsOf(fb.Snapshot(), "b")
		return has(got, "127.0.0.21:8080") && has(got, "127.0.0.22:8081") && has(got, "MAINT"), fmt.Sprint(got)
	})
	d.set(name, "SRV 0 10 8081 b.svc.example.local.")
	waitFor(t, 5*time.Second, "removed SRV record", func() (bool, string) {
		got := addrsOf(fb.Snapshot(), "b")
		return !has(got, "127.0.0.21:8080") && has(got, "127.0.0.22:8081"), fmt.Sprint(got)
	})
	d.set("b.svc.example.local", "A 127.0.0.23")
	waitFor(t, 5*time.Second, "target address change", func() (bool, string) {
		got := addrsOf(fb.Snapshot(), "b")
		return has(got, "127.0.0.23:8081"), fmt.Sprint(got)
	})
}

// TestPlainServerAndOperatorAddress: a plain server with resolvers
// follows its name; with allow-dup-ip two templates of one backend may
// share an address.
func TestAllowDupIP(t *testing.T) {
	d := startDNS(t)
	d.set(svc, "A 127.0.0.11")
	for _, dup := range []bool{false, true} {
		t.Run(fmt.Sprint("allow-dup-ip=", dup), func(t *testing.T) {
			cfg := templateConfig(fastResolvers("mydns", ns(d.Addr)), svc, 2, balancer.Server{ResolvePrefer: "ipv4", AllowDupIP: dup})
			_, fb := runResolver(t, cfg)
			want := map[string]string{"web1": "127.0.0.11", "web2": "MAINT"}
			if dup {
				want["web2"] = "127.0.0.11"
			}
			waitFor(t, 5*time.Second, "addresses", func() (bool, string) {
				got := addrsOf(fb.Snapshot(), "b")
				return equalMaps(got, want), fmt.Sprint(got)
			})
		})
	}
}

// TestApplyErrorsDoNotStopResolution: a balancer that refuses every change
// leaves the resolver running and answering show resolvers.
func TestApplyErrorsDoNotStopResolution(t *testing.T) {
	d := startDNS(t)
	d.set(svc, "A 127.0.0.11")
	cfg := templateConfig(fastResolvers("mydns", ns(d.Addr)), svc, 1, balancer.Server{ResolvePrefer: "ipv4"})
	r, fb := runResolver(t, cfg)
	fb.mu.Lock()
	fb.reject = true
	fb.mu.Unlock()
	waitFor(t, 5*time.Second, "answers", func() (bool, string) {
		v := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.valid })
		return v >= 3, fmt.Sprint(v)
	})
	var b strings.Builder
	if err := r.WriteShowResolvers(&b, "mydns"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Resolvers section mydns\n") {
		t.Errorf("show resolvers: %q", b.String())
	}
}

func TestShowResolversFormat(t *testing.T) {
	dir := t.TempDir()
	conf := dir + "/resolv.conf"
	writeFile(t, conf, "search example\nnameserver 192.0.2.53\nnameserver\nnameservers 192.0.2.1\nnameserver ::1 # v6\n")
	cfg := balancer.Config{Resolvers: []balancer.Resolvers{
		{Name: "mydns", Nameservers: []balancer.Nameserver{{Name: "ns1", Address: "127.0.0.1:53"}, {Name: "ns2", Address: "127.0.0.1:54", TCP: true}}},
		{Name: "other", ParseResolvConf: true},
	}}
	r := New(cfg, newFakeBalancer(cfg), nil, WithResolvConf(conf))
	block := func(name string) string {
		return " nameserver " + name + ":\n" +
			"  sent:        0\n  snd_error:   0\n  valid:       0\n  update:      0\n" +
			"  cname:       0\n  cname_error: 0\n  any_err:     0\n  nx:          0\n" +
			"  timeout:     0\n  refused:     0\n  other:       0\n  invalid:     0\n" +
			"  too_big:     0\n  truncated:   0\n  outdated:    0\n"
	}
	tests := []struct {
		id      string
		want    string
		wantErr error
	}{
		{"", "Resolvers section mydns\n" + block("ns1") + block("ns2") +
			"Resolvers section other\n" + block("192.0.2.53") + block("::1") +
			"Resolvers section default\n" + block("192.0.2.53") + block("::1"), nil},
		{"other", "Resolvers section other\n" + block("192.0.2.53") + block("::1"), nil},
		{"nope", "", ErrNoSuchResolvers},
	}
	for _, tc := range tests {
		var b strings.Builder
		err := r.WriteShowResolvers(&b, tc.id)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("show resolvers %q: err %v, want %v", tc.id, err, tc.wantErr)
		}
		if b.String() != tc.want {
			t.Errorf("show resolvers %q:\n%s\nwant:\n%s", tc.id, b.String(), tc.want)
		}
	}
	empty := New(balancer.Config{}, newFakeBalancer(balancer.Config{}), nil, WithResolvConf(""))
	var b strings.Builder
	if err := empty.WriteShowResolvers(&b, ""); err != nil || b.String() != "No resolvers found\n" {
		t.Errorf("no sections: %q, %v", b.String(), err)
	}
}
