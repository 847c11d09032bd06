package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"tether/balancer"
)

// zone is a tiny authoritative DNS server on loopback whose A records the
// test changes while Tether runs.
type zone struct {
	mu  sync.Mutex
	a   map[string][]string
	srv *dns.Server
}

func startZone(t *testing.T) (*zone, string) {
	t.Helper()
	z := &zone{a: map[string][]string{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		z.mu.Lock()
		for _, ques := range q.Question {
			if ques.Qtype != dns.TypeA {
				continue
			}
			for _, ip := range z.a[strings.ToLower(ques.Name)] {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: ques.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.ParseIP(ip)})
			}
		}
		z.mu.Unlock()
		if opt := q.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), false)
		}
		w.WriteMsg(m)
	})}
	go z.srv.ActivateAndServe()
	t.Cleanup(func() { z.srv.Shutdown() })
	return z, pc.LocalAddr().String()
}

func (z *zone) set(name string, ips ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.a[dns.Fqdn(name)] = ips
}

// TestServeTemplateFollowsDNS runs the seed's third scenario end to end:
// a server-template filled by DNS, whose dynamic cookies follow the
// addresses, and a slot that goes to maintenance when its record goes.
func TestServeTemplateFollowsDNS(t *testing.T) {
	z, ns := startZone(t)
	// Origins on 127.0.0.2 and 127.0.0.3, same port.
	l1, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	port := l1.Addr().(*net.TCPAddr).Port
	l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.3:%d", port))
	if err != nil {
		l1.Close()
		t.Skipf("port %d busy on 127.0.0.3: %v", port, err)
	}
	for i, l := range []net.Listener{l1, l2} {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "origin%d", i+1) })}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	z.set("myservice.example.local", "127.0.0.2", "127.0.0.3")

	dir := t.TempDir()
	f := fixture{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), db: filepath.Join(dir, "tether.db"), sock: filepath.Join(dir, "admin.sock"), frontend: freeAddr(t)}
	cfg := fmt.Sprintf(`global
    stats socket %s level admin

resolvers mydns
    nameserver dns1 %s
    accepted_payload_size 8192
    timeout resolve 100ms
    timeout retry 100ms
    hold valid 100ms

defaults
    mode http
    timeout connect 1s
    timeout server 5s

frontend fe
    bind %s
    default_backend servers

backend servers
    cookie SERVER_USED insert indirect nocache dynamic
    dynamic-cookie-key mysecretphrase
    server-template web 5 myservice.example.local:%d resolvers mydns init-addr none
`, f.sock, ns, f.frontend, port)
	os.WriteFile(f.cfg, []byte(cfg), 0o600)
	stop := f.serve(t)
	defer stop()

	want := map[string]string{}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		want[balancer.DynamicCookie("mysecretphrase", netip.MustParseAddr(ip), int32(port))] = ip
	}
	waitState(t, f.sock, func(state string) bool {
		return strings.Count(state, " 127.0.0.2 ") == 1 && strings.Count(state, " 127.0.0.3 ") == 1
	})
	seen := map[string]bool{}
	for range 4 {
		resp, err := http.Get("http://" + f.frontend + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if _, ok := want[c.Value]; !ok {
				t.Fatalf("cookie %q is not a dynamic cookie of a resolved address", c.Value)
			}
			seen[c.Value] = true
		}
	}
	if len(seen) != 2 {
		t.Fatalf("traffic reached %d of the 2 resolved servers", len(seen))
	}

	// The record for 127.0.0.3 goes away: its slot goes to maintenance.
	z.set("myservice.example.local", "127.0.0.2")
	waitState(t, f.sock, func(state string) bool { return !strings.Contains(state, " 127.0.0.3 ") })
	for range 3 {
		resp, err := http.Get("http://" + f.frontend + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "origin1" {
			t.Fatalf("traffic went to %q after its record disappeared", body)
		}
	}
}

func waitState(t *testing.T, sock string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		state := exec1(t, sock, "show servers state servers")
		if ok(state) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers never reached the expected state:\n%s", state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
