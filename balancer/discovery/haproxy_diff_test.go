package discovery

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/e2etest"
)

// haproxyCLI sends one command to an HAProxy stats socket and returns
// the reply.
func haproxyCLI(sock, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return "", fmt.Errorf("dial stats socket %s: %w", sock, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", fmt.Errorf("send %q: %w", cmd, err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("read reply to %q: %w", cmd, err)
	}
	return string(b), nil
}

// haproxySlots parses "show servers state" into server=address, with
// "MAINT" for servers in maintenance-by-resolution.
func haproxySlots(state, backend string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(state, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] == "#" || f[1] != backend {
			continue
		}
		admin, _ := strconv.Atoi(f[6])
		v := f[4]
		if admin&int(balancer.AdminRMaint) != 0 {
			v = "MAINT"
		}
		out[f[3]] = v
	}
	return out
}

// startHAProxy runs haproxy on a config and returns its stats socket.
func startHAProxy(t *testing.T, bin, config string) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "sock")
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	writeFile(t, cfgPath, strings.ReplaceAll(config, "SOCKET", sock))
	var out e2etest.Buffer
	cmd := exec.Command(bin, "-f", cfgPath, "-db")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	waitFor(t, 10*time.Second, "haproxy stats socket", func() (bool, string) {
		_, err := os.Stat(sock)
		return err == nil, out.String()
	})
	return sock
}

// TestDifferentialHAProxy resolves the same name against the same DNS
// server with HAProxy 2.6 and with this package, changes the records, and
// compares which slot got which address after each change.
func TestDifferentialHAProxy(t *testing.T) {
	bin := e2etest.RequireProgram(t, "haproxy")
	d := startDNS(t)
	// Answer order differs from HAProxy's walk order (XXH32 of the
	// address), so a resolver that took records in answer order differs.
	d.set(svc, "A 127.0.0.11", "A 127.0.0.12", "A 127.0.0.13", "A 127.0.0.14")
	sock := startHAProxy(t, bin, `
global
    stats socket SOCKET level admin
resolvers mydns
    nameserver ns1 `+d.Addr+`
    timeout resolve 100ms
    timeout retry 100ms
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
backend b
    server-template web 5 myservice.example.local:80 check resolvers mydns init-addr none
`)
	res := balancer.Resolvers{Name: "mydns", Nameservers: []balancer.Nameserver{ns(d.Addr)},
		TimeoutResolve: 100 * time.Millisecond, TimeoutRetry: 100 * time.Millisecond}
	cfg := templateConfig(res, svc, 5, balancer.Server{Port: 80, PortSet: true, Check: true, InitAddr: []string{"none"}})
	r, fb := runResolver(t, cfg, WithResolvConf("/etc/resolv.conf"))

	steps := []struct {
		name    string
		records []string
	}{
		{"four records", nil},
		{"one removed", []string{"A 127.0.0.11", "A 127.0.0.13", "A 127.0.0.14"}},
		{"two added", []string{"A 127.0.0.11", "A 127.0.0.13", "A 127.0.0.14", "A 127.0.0.15", "A 127.0.0.16"}},
		{"one changed", []string{"A 127.0.0.17", "A 127.0.0.13", "A 127.0.0.14", "A 127.0.0.15", "A 127.0.0.16"}},
		{"more records than slots", []string{"A 127.0.0.21", "A 127.0.0.22", "A 127.0.0.23", "A 127.0.0.24", "A 127.0.0.25", "A 127.0.0.26", "A 127.0.0.27"}},
	}
	current := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"}
	for _, step := range steps {
		if step.records != nil {
			d.set(svc, step.records...)
			current = current[:0]
			for _, r := range step.records {
				current = append(current, strings.TrimPrefix(r, "A "))
			}
		}
		settled := func(got map[string]string) bool {
			in := map[string]bool{}
			for _, v := range got {
				v = strings.TrimSuffix(v, ":80")
				if v != "MAINT" {
					if in[v] {
						return false
					}
					in[v] = true
				}
			}
			want := map[string]bool{}
			for _, a := range current {
				want[a] = true
			}
			for a := range in {
				if !want[a] {
					return false
				}
			}
			return len(in) == min(len(current), 5)
		}
		var hap map[string]string
		waitFor(t, 10*time.Second, step.name+" in haproxy", func() (bool, string) {
			state, err := haproxyCLI(sock, "show servers state b")
			if err != nil {
				return false, err.Error()
			}
			hap = haproxySlots(state, "b")
			return len(hap) == 5 && settled(hap), state
		})
		var ours map[string]string
		waitFor(t, 10*time.Second, step.name+" here", func() (bool, string) {
			ours = addrsOf(fb.Snapshot(), "b")
			for k, v := range ours {
				ours[k] = strings.TrimSuffix(v, ":80")
			}
			return settled(ours), fmt.Sprint(ours)
		})
		if !equalMaps(hap, ours) {
			t.Errorf("%s: slots differ\nhaproxy: %v\nours:    %v", step.name, sorted(hap), sorted(ours))
		}
		t.Logf("%s: %v", step.name, sorted(ours))
	}

	// show resolvers: same layout, counters masked.
	hapShow, err := haproxyCLI(sock, "show resolvers")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := r.WriteShowResolvers(&b, ""); err != nil {
		t.Fatal(err)
	}
	digits := regexp.MustCompile(`: +\d+`)
	mask := func(s string) string { return digits.ReplaceAllString(s, ": N") }
	// The CLI ends every reply with an empty line of its own.
	if got, want := mask(b.String())+"\n", mask(hapShow); got != want {
		t.Errorf("show resolvers layout differs\nhaproxy:\n%s\nours:\n%s", want, got)
	}
	notFound, err := haproxyCLI(sock, "show resolvers nope")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteShowResolvers(io.Discard, "nope"); err == nil || notFound != "Can't find that resolvers section\n\n" {
		t.Errorf("unknown section: haproxy %q, ours %v", notFound, err)
	}
}

func sorted(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// haproxyCounter reads one counter of a nameserver from show resolvers.
func haproxyCounter(t *testing.T, sock, section, name string) int64 {
	t.Helper()
	out, err := haproxyCLI(sock, "show resolvers "+section)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^  ` + name + `: +(\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s counter in %q", name, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestDifferentialHAProxyOptions compares resolve-prefer with a family
// fallback, allow-dup-ip sharing a resolution with another backend, and
// SRV records with and without additional records.
func TestDifferentialHAProxyOptions(t *testing.T) {
	bin := e2etest.RequireProgram(t, "haproxy")
	const dual, srvName = "dual.example.local", "_http._tcp.svc.example.local"
	d := startDNS(t)
	d.set(svc, "A 127.0.0.11", "A 127.0.0.12")
	d.set(dual, "AAAA 2001:db8::31", "AAAA 2001:db8::32", "AAAA 2001:db8::33")
	d.set(srvName, "SRV 0 10 8080 a.svc.example.local.", "SRV 0 300 8081 b.svc.example.local.", "SRV 0 10 8082 c.svc.example.local.")
	d.setExtra(srvName, map[string][]string{"a.svc.example.local": {"A 127.0.0.41"}})
	d.set("b.svc.example.local", "A 127.0.0.42")
	d.set("c.svc.example.local", "A 127.0.0.43")
	sock := startHAProxy(t, bin, `
global
    stats socket SOCKET level admin
resolvers mydns
    nameserver ns1 `+d.Addr+`
    timeout resolve 100ms
    timeout retry 100ms
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
backend b
    server-template web 3 myservice.example.local:80 resolvers mydns init-addr none
backend c
    server-template app 4 dual.example.local:8080 resolvers mydns init-addr none resolve-prefer ipv4
backend d
    server-template dup 3 myservice.example.local:80 resolvers mydns init-addr none resolve-opts allow-dup-ip
backend e
    server-template srv 4 _http._tcp.svc.example.local resolvers mydns init-addr none resolve-prefer ipv4
`)
	tmpl := func(prefix string, n int, fqdn string, p balancer.Server) balancer.ServerTemplate {
		p.Resolvers = "mydns"
		p.InitAddr = []string{"none"}
		return balancer.ServerTemplate{Prefix: prefix, Low: 1, High: n, FQDN: fqdn, Params: p}
	}
	cfg := balancer.Config{
		Resolvers: []balancer.Resolvers{{Name: "mydns", Nameservers: []balancer.Nameserver{ns(d.Addr)},
			TimeoutResolve: 100 * time.Millisecond, TimeoutRetry: 100 * time.Millisecond}},
		Backends: []balancer.Backend{
			{Name: "b", Templates: []balancer.ServerTemplate{tmpl("web", 3, svc, balancer.Server{Port: 80, PortSet: true})}},
			{Name: "c", Templates: []balancer.ServerTemplate{tmpl("app", 4, dual, balancer.Server{Port: 8080, PortSet: true, ResolvePrefer: "ipv4"})}},
			{Name: "d", Templates: []balancer.ServerTemplate{tmpl("dup", 3, svc, balancer.Server{Port: 80, PortSet: true, AllowDupIP: true})}},
			{Name: "e", Templates: []balancer.ServerTemplate{tmpl("srv", 4, srvName, balancer.Server{ResolvePrefer: "ipv4"})}},
		},
	}
	r, fb := runResolver(t, cfg)

	steps := []struct {
		name   string
		change func()
	}{
		{"initial records", func() {}},
		{"records removed", func() {
			d.set(svc, "A 127.0.0.12")
			d.set(dual, "AAAA 2001:db8::33")
			d.set(srvName, "SRV 0 10 8082 c.svc.example.local.", "SRV 0 10 8083 a.svc.example.local.")
		}},
		{"addresses changed", func() {
			d.set(svc, "A 127.0.0.13", "A 127.0.0.14")
			d.set("c.svc.example.local", "A 127.0.0.44")
		}},
	}
	for _, step := range steps {
		step.change()
		hapBase := haproxyCounter(t, sock, "mydns", "valid")
		ourBase := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.valid })
		// Every resolution answers about every 100ms; 25 more valid answers
		// on each side is several rounds of each of the six names.
		waitFor(t, 15*time.Second, step.name+": resolution rounds", func() (bool, string) {
			h := haproxyCounter(t, sock, "mydns", "valid")
			o := counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.valid })
			return h >= hapBase+25 && o >= ourBase+25, fmt.Sprint(h-hapBase, " ", o-ourBase)
		})
		state, err := haproxyCLI(sock, "show servers state")
		if err != nil {
			t.Fatal(err)
		}
		snap := fb.Snapshot()
		for _, be := range []string{"b", "c", "d", "e"} {
			hap := haproxySlots(state, be)
			ours := addrsOf(snap, be)
			for k, v := range ours {
				if host, _, err := net.SplitHostPort(v); err == nil {
					ours[k] = host
				}
			}
			if !equalMaps(hap, ours) {
				t.Errorf("%s, backend %s: slots differ\nhaproxy: %v\nours:    %v", step.name, be, sorted(hap), sorted(ours))
			} else {
				t.Logf("%s, backend %s: %v", step.name, be, sorted(ours))
			}
		}
		// SRV ports and weights (show servers state columns 19 and 8).
		for _, line := range strings.Split(state, "\n") {
			f := strings.Fields(line)
			if len(f) < 19 || f[1] != "e" {
				continue
			}
			st := snap.Backend("e").Server(f[3])
			if st == nil || st.Admin&balancer.AdminRMaint != 0 || f[4] == "-" {
				continue
			}
			if fmt.Sprint(st.Config.Port) != f[18] {
				t.Errorf("%s: %s port haproxy %s, ours %d", step.name, f[3], f[18], st.Config.Port)
			}
			// srv_uweight: the SRV weight mapped to 0..256.
			if fmt.Sprint(st.Weight) != f[7] {
				t.Errorf("%s: %s weight haproxy %s, ours %d", step.name, f[3], f[7], st.Weight)
			}
		}
	}
	if h, o := haproxyCounter(t, sock, "mydns", "too_big")+haproxyCounter(t, sock, "mydns", "invalid"), counter(r, "mydns", "ns1", func(c *counters) *atomic.Int64 { return &c.invalid }); h != 0 || o != 0 {
		t.Errorf("invalid/too_big answers: haproxy %d, ours %d", h, o)
	}
}
