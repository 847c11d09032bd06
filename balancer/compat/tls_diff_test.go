package compat

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"tether/balancer"
	"tether/balancer/accesslog"
	"tether/balancer/e2etest"
	"tether/balancer/frontdoor"
	"tether/balancer/haproxycfg"
	"tether/balancer/runtimeapi"
	"tether/balancer/tlsbind"
	"tether/balancer/tlsbind/tlsbindtest"
)

// tlsConfig has a clear-text bind that redirects to https, a TLS bind
// with certificates by file and crt-list and ALPN h2,http/1.1, and a
// strict-sni TLS 1.3-only bind. Its arguments are the three bind
// addresses, the certificate directory, the admin socket line and the
// two origins.
const tlsConfig = `global
    %[5]s

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s

frontend fe
    bind %[1]s
    bind %[2]s ssl crt %[4]s/default.pem crt %[4]s/wild.pem crt-list %[4]s/list.txt alpn h2,http/1.1
    bind %[3]s ssl crt %[4]s/default.pem crt %[4]s/wild.pem strict-sni ssl-min-ver TLSv1.3
    log stdout format raw local0
    option httplog
    redirect scheme https code 301 if !{ ssl_fc }
    default_backend servers

backend servers
    balance roundrobin
    cookie SRV insert indirect nocache
    server web1 %[6]s cookie w1
    server web2 %[7]s cookie w2
`

// tlsPair is HAProxy and Tether running tlsConfig, each with its three
// addresses: plain, tls and strict.
type tlsPair struct {
	haproxy, tether [3]string
	ca              *tlsbindtest.CA
	// haproxyOut is HAProxy's standard output, tetherLog Tether's access
	// log.
	haproxyOut, tetherLog *lineBuffer
	// haproxySock is HAProxy's admin socket, tetherAPI Tether's Runtime
	// API over the same certificates.
	haproxySock string
	tetherAPI   *runtimeapi.Dispatcher
}

// writeTLSCerts writes the certificates tlsConfig names into dir.
func writeTLSCerts(t *testing.T, dir string) *tlsbindtest.CA {
	ca := tlsbindtest.NewCA(t, "Tether Test CA")
	for _, c := range []struct {
		file, cn string
		sans     []string
	}{
		{"default.pem", "default.test", []string{"default.test", "www.default.test"}},
		{"wild.pem", "*.example.test", []string{"*.example.test"}},
		{"shop.pem", "shop.example.test", []string{"shop.example.test"}},
		{"other.pem", "other.test", []string{"other.test"}},
	} {
		tlsbindtest.WriteFile(t, dir, c.file, ca.Issue(t, c.cn, c.sans...).Bundle(ca))
	}
	tlsbindtest.WriteFile(t, dir, "list.txt", []byte(dir+"/shop.pem [alpn http/1.1]\n"+dir+"/other.pem other.test !secret.other.test *.other.test\n"))
	return ca
}

func startTLSPair(t *testing.T) *tlsPair {
	t.Helper()
	o := startOrigins(t, 2)
	dir := t.TempDir()
	ca := writeTLSCerts(t, dir)
	return startTLSPairWith(t, dir, ca, func(binds [3]string, socket string) string {
		return fmt.Sprintf(tlsConfig, binds[0], binds[1], binds[2], dir, socket, o.addrs[0], o.addrs[1])
	})
}

// startTLSPairWith runs HAProxy and Tether on the configuration render
// writes for three bind addresses and the admin socket line; dir holds the
// files it names.
func startTLSPairWith(t *testing.T, dir string, ca *tlsbindtest.CA, render func(binds [3]string, socket string) string) *tlsPair {
	t.Helper()
	bin := e2etest.RequireProgram(t, "haproxy")
	p := &tlsPair{ca: ca, haproxyOut: &lineBuffer{}, tetherLog: &lineBuffer{}}
	sock := filepath.Join(dir, "haproxy.sock")
	p.haproxySock = sock
	p.haproxy = [3]string{freePort(t), freePort(t), freePort(t)}
	hCfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(hCfg, []byte(render(p.haproxy, "stats socket "+sock+" level admin")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", hCfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdout = p.haproxyOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	p.tether = [3]string{freePort(t), freePort(t), freePort(t)}
	cfg, _, err := haproxycfg.Parse("tether.cfg", []byte(render(p.tether, "maxconn 100")))
	if err != nil {
		t.Fatalf("parse config: %v", err)
	}
	accessLog := accesslog.New(p.tetherLog, 0)
	b, err := balancer.New(cfg, balancer.Options{AccessLogs: map[string]*accesslog.Logger{"stdout": accessLog}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopLog := context.WithCancel(context.Background())
	logDone := make(chan struct{})
	go func() { accessLog.Run(ctx); close(logDone) }()
	t.Cleanup(func() { b.Close(); stopLog(); <-logDone })
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	certs := tlsbind.NewStore()
	p.tetherAPI = runtimeapi.NewDispatcher(b, runtimeapi.DispatcherOptions{Certificates: func() *tlsbind.Store { return certs }})
	fe := cfg.Frontends[0]
	for _, bd := range fe.Binds {
		ln, err := net.Listen("tcp", bd.Addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := frontdoor.New(fe, cfg.Global, h, slog.New(slog.DiscardHandler))
		if srv.Counters, err = b.FrontendEvents(fe.Name); err != nil {
			t.Fatal(err)
		}
		if bd.TLS != nil {
			tb, err := certs.Build(*bd.TLS, cfg.Global.SSLDefaultBind)
			if err != nil {
				t.Fatal(err)
			}
			srv.TLS = tb.Config()
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not start: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// handshakeOutcome describes a handshake as a client sees it: the
// certificate served, the version and the ALPN protocol, or the failure.
func handshakeOutcome(addr, sni string, protos []string, minVer, maxVer uint16) string {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		ServerName: sni, InsecureSkipVerify: true, NextProtos: protos, MinVersion: minVer, MaxVersion: maxVer,
	})
	if err != nil {
		return "failed: " + tlsFailure(err)
	}
	defer c.Close()
	st := c.ConnectionState()
	return fmt.Sprintf("cert=%s version=%s alpn=%q chain=%d", st.PeerCertificates[0].Subject.CommonName,
		tls.VersionName(st.Version), st.NegotiatedProtocol, len(st.PeerCertificates))
}

// tlsFailure names the alert a failed handshake received.
func tlsFailure(err error) string {
	s := err.Error()
	if i := strings.Index(s, "remote error: "); i >= 0 {
		return s[i:]
	}
	for _, known := range []string{"protocol version not supported", "no application protocol", "EOF", "connection reset"} {
		if strings.Contains(s, known) {
			return known
		}
	}
	return s
}

// TestTLSHandshakesMatchHAProxy compares, for a set of SNI names, client
// protocol lists and versions, the certificate each proxy serves, the
// version and the ALPN protocol negotiated, or the alert that refused
// the handshake.
func TestTLSHandshakesMatchHAProxy(t *testing.T) {
	p := startTLSPair(t)
	names := []string{"", "default.test", "www.default.test", "WWW.Default.Test", "a.example.test", "A.EXAMPLE.TEST",
		"a.b.example.test", "example.test", "shop.example.test", "other.test", "x.other.test", "secret.other.test", "unknown.test"}
	type clientCase struct {
		name           string
		protos         []string
		minVer, maxVer uint16
	}
	clients := []clientCase{
		{name: "h2,http/1.1", protos: []string{"h2", "http/1.1"}},
		{name: "http/1.1", protos: []string{"http/1.1"}},
		{name: "no ALPN"},
		{name: "unknown ALPN", protos: []string{"spdy/3", "foo"}},
		{name: "TLS 1.2 only", protos: []string{"h2", "http/1.1"}, minVer: tls.VersionTLS12, maxVer: tls.VersionTLS12},
		{name: "TLS 1.1 only", minVer: tls.VersionTLS11, maxVer: tls.VersionTLS11},
	}
	served := map[string]bool{}
	for bind := 1; bind <= 2; bind++ {
		for _, sni := range names {
			for _, c := range clients {
				h := handshakeOutcome(p.haproxy[bind], sni, c.protos, c.minVer, c.maxVer)
				g := handshakeOutcome(p.tether[bind], sni, c.protos, c.minVer, c.maxVer)
				served[h] = true
				if h != g {
					t.Errorf("bind %d, SNI %q, client %s:\nhaproxy %s\ntether  %s", bind, sni, c.name, h, g)
				}
			}
		}
	}
	// The matrix reaches every certificate and both refusals.
	for _, want := range []string{"cert=default.test", "cert=*.example.test", "cert=shop.example.test", "cert=other.test", "unrecognized name", "protocol version"} {
		if !slices.ContainsFunc(slices.Collect(mapsKeys(served)), func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no handshake through HAProxy shows %q; seen %v", want, slices.Collect(mapsKeys(served)))
		}
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestTLSRequestsMatchHAProxy sends the same sequence of requests to both
// proxies over HTTP/1.1 and HTTP/2 on the TLS bind and compares status,
// protocol, origin and Set-Cookie, then the redirect of the clear-text
// bind to https.
func TestTLSRequestsMatchHAProxy(t *testing.T) {
	p := startTLSPair(t)
	client := func(h2 bool) *http.Client {
		conf := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "a.example.test"}
		if h2 {
			return &http.Client{Transport: &http2.Transport{TLSClientConfig: conf}}
		}
		conf.NextProtos = []string{"http/1.1"}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, CheckRedirect: noRedirect}
	}
	type request struct {
		h2     bool
		path   string
		cookie string
	}
	reqs := []request{
		{false, "/", ""}, {true, "/", ""}, {true, "/a?x=1", ""}, {false, "/b", ""},
		{true, "/", "SRV=w2"}, {false, "/", "SRV=w1"}, {true, "/", "SRV=w1; other=1"}, {false, "/", "SRV=nope"},
	}
	clients := map[string][2]*http.Client{}
	for _, side := range []string{"haproxy", "tether"} {
		clients[side] = [2]*http.Client{client(false), client(true)}
	}
	do := func(side, addr string, r request) string {
		c := clients[side][0]
		if r.h2 {
			c = clients[side][1]
		}
		req, _ := http.NewRequest("GET", "https://"+addr+r.path, nil)
		if r.cookie != "" {
			req.Header.Set("Cookie", r.cookie)
		}
		resp, err := c.Do(req)
		if err != nil {
			return "error " + err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return fmt.Sprintf("%s %d origin=%s body=%q set-cookie=%q cache-control=%q", resp.Proto, resp.StatusCode,
			resp.Header.Get("X-Origin"), body, resp.Header.Values("Set-Cookie"), resp.Header.Get("Cache-Control"))
	}
	// HAProxy writes a line when the request's stream ends, which may be
	// after the next request's: each request waits for the lines of the
	// previous ones.
	for i, r := range reqs {
		h, g := do("haproxy", p.haproxy[1], r), do("tether", p.tether[1], r)
		if h != g {
			t.Errorf("h2=%v %s cookie %q:\nhaproxy %s\ntether  %s", r.h2, r.path, r.cookie, h, g)
		}
		p.waitLines(t, i+1)
	}
	hLines, tLines := p.haproxyOut.accessLines(), p.tetherLog.accessLines()
	for i, r := range reqs {
		// An HTTP/2 request is logged in absolute form, with each proxy's
		// own address.
		h := maskedLine(strings.ReplaceAll(hLines[i], p.haproxy[1], "ADDR"))
		g := maskedLine(strings.ReplaceAll(tLines[i], p.tether[1], "ADDR"))
		if !slices.Equal(h, g) {
			t.Errorf("access log of h2=%v %s cookie %q:\nhaproxy %s\ntether  %s", r.h2, r.path, r.cookie, hLines[i], tLines[i])
		}
	}
	plain := &http.Client{CheckRedirect: noRedirect}
	for _, path := range []string{"/", "/a/b?c=d"} {
		redirect := func(addr string) string {
			req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
			req.Host = "www.example.test"
			resp, err := plain.Do(req)
			if err != nil {
				return "error " + err.Error()
			}
			resp.Body.Close()
			return fmt.Sprintf("%d location=%q length=%q cache-control=%q", resp.StatusCode, resp.Header.Get("Location"),
				resp.Header.Get("Content-Length"), resp.Header.Get("Cache-Control"))
		}
		h, g := redirect(p.haproxy[0]), redirect(p.tether[0])
		if h != g || !strings.HasPrefix(h, "301 location=\"https://www.example.test/") {
			t.Errorf("redirect of %s:\nhaproxy %s\ntether  %s", path, h, g)
		}
	}
}

// waitLines waits until both proxies wrote n access-log lines.
func (p *tlsPair) waitLines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.haproxyOut.accessLines()) < n || len(p.tetherLog.accessLines()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("access-log lines: want %d each\nhaproxy's output:\n%s\ntether's:\n%s", n, p.haproxyOut.String(), p.tetherLog.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// TestTLSCurlMatchesHAProxy has curl negotiate HTTP/2 with both proxies
// and compares the protocol version and status it reports.
func TestTLSCurlMatchesHAProxy(t *testing.T) {
	curl := e2etest.RequireProgram(t, "curl")
	p := startTLSPair(t)
	run := func(addr string, args ...string) string {
		host, port, _ := net.SplitHostPort(addr)
		out, err := exec.Command(curl, append([]string{"-sk", "-o", "/dev/null", "-w", "%{http_version} %{http_code} %{ssl_verify_result}",
			"--resolve", "a.example.test:" + port + ":" + host, "https://a.example.test:" + port + "/"}, args...)...).Output()
		if err != nil {
			return "error " + err.Error()
		}
		return string(out)
	}
	for _, args := range [][]string{{"--http2"}, {"--http1.1"}, {"--http2", "--tlsv1.3"}} {
		h, g := run(p.haproxy[1], args...), run(p.tether[1], args...)
		if h != g {
			t.Errorf("curl %v:\nhaproxy %s\ntether  %s", args, h, g)
		}
	}
}

// TestTLSHostileClientsMatchHAProxy sends plain HTTP, a garbage
// ClientHello and a stalled handshake to both TLS binds and compares what
// comes back before the connection closes.
func TestTLSHostileClientsMatchHAProxy(t *testing.T) {
	p := startTLSPair(t)
	for _, tc := range []struct{ name, send string }{
		{"plain HTTP", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"garbage ClientHello", "\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff"},
		{"garbage record", strings.Repeat("\xff", 64)},
	} {
		h, g := tlsRawReply(t, p.haproxy[1], tc.send), tlsRawReply(t, p.tether[1], tc.send)
		t.Logf("%s: %s", tc.name, h)
		if h != g {
			t.Errorf("%s:\nhaproxy %s\ntether  %s", tc.name, h, g)
		}
	}
}

// tlsRawReply sends raw bytes and describes what the server sends back
// until it closes: nothing, or a TLS alert record.
func tlsRawReply(t *testing.T, addr, send string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, send)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	switch {
	case err != nil && !strings.Contains(err.Error(), "reset"):
		return "error " + err.Error()
	case len(got) == 0:
		return "closed without a byte"
	case got[0] == 21 && len(got) >= 7:
		return fmt.Sprintf("alert level %d description %d", got[5], got[6])
	}
	return fmt.Sprintf("%q", got)
}

// serverTLSConfig sends requests to an HTTPS origin, with the SNI taken
// from Host and the certificate checked against the CA, and to the same
// origin with a CA that does not trust it. Its arguments are the bind
// address, the admin socket line, the origin and the CA files.
const serverTLSConfig = `global
    %[2]s

defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    retries 1

frontend fe
    bind %[1]s
    use_backend untrusted if { path_beg /untrusted }
    use_backend fixed if { path_beg /fixed }
    default_backend checked

backend checked
    server s1 %[3]s ssl verify required ca-file %[4]s sni req.hdr(host)
backend fixed
    server s1 %[3]s ssl verify required ca-file %[4]s sni str(x.origin.test)
backend untrusted
    server s1 %[3]s ssl verify required ca-file %[5]s
`

// TestServerTLSMatchesHAProxy sends requests through both proxies to an
// HTTPS origin and compares status and the SNI the origin received: a
// Host the certificate covers, one it does not, no check of the name
// without SNI, and an untrusted chain.
func TestServerTLSMatchesHAProxy(t *testing.T) {
	dir := t.TempDir()
	ca := tlsbindtest.NewCA(t, "Test CA")
	other := tlsbindtest.NewCA(t, "Other CA")
	caFile := tlsbindtest.WriteFile(t, dir, "ca.pem", ca.PEM)
	otherFile := tlsbindtest.WriteFile(t, dir, "other.pem", other.PEM)
	leaf := ca.Issue(t, "*.origin.test", "*.origin.test")
	cert, err := tls.X509KeyPair(append(leaf.CertPEM, ca.PEM...), leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-SNI", r.TLS.ServerName)
		io.WriteString(w, "ok")
	}))
	origin.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	origin.Config.ErrorLog = log.New(io.Discard, "", 0)
	origin.StartTLS()
	t.Cleanup(origin.Close)
	p := startTLSPairWith(t, dir, ca, func(binds [3]string, socket string) string {
		return fmt.Sprintf(serverTLSConfig, binds[0], socket, origin.Listener.Addr(), caFile, otherFile)
	})
	for _, r := range []struct{ path, host string }{
		{"/", "a.origin.test"}, {"/", "b.origin.test"}, {"/", "A.Origin.Test"}, {"/", "elsewhere.test"}, {"/", "a.b.origin.test"},
		{"/fixed", "elsewhere.test"}, {"/untrusted", "a.origin.test"},
	} {
		get := func(addr string) string {
			req, _ := http.NewRequest("GET", "http://"+addr+r.path, nil)
			req.Host = r.host
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				return "error " + err.Error()
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return fmt.Sprintf("%d sni=%q", resp.StatusCode, resp.Header.Get("X-SNI"))
		}
		h, g := get(p.haproxy[0]), get(p.tether[0])
		t.Logf("%s host %s: %s", r.path, r.host, h)
		if h != g {
			t.Errorf("%s host %s:\nhaproxy %s\ntether  %s", r.path, r.host, h, g)
		}
	}
}

// TestSSLCertCommandsMatchHAProxy runs the same show, set, commit and
// abort ssl cert commands on both proxies, over the same certificate
// files, and compares the replies byte for byte; after the commit both
// serve the new certificate to new handshakes, and a connection opened
// before keeps working.
func TestSSLCertCommandsMatchHAProxy(t *testing.T) {
	p := startTLSPair(t)
	dir := filepath.Dir(p.haproxySock)
	def, wild := dir+"/default.pem", dir+"/wild.pem"
	renewed := string(p.ca.Issue(t, "renewed.test", "renewed.test", "default.test").Bundle(p.ca))
	// HAProxy 2.6.12 answers a set for another file than the open
	// transaction's "Transaction updated" for the open one, and puts the
	// other file's certificate in it; Tether refuses, as newer HAProxy
	// versions do.
	const conflicting = "set ssl cert (while another is open) "
	before := map[string]*tls.Conn{}
	for side, addr := range map[string]string{"haproxy": p.haproxy[1], "tether": p.tether[1]} {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		before[side] = c
	}
	for _, cmd := range []string{
		"show ssl cert",
		"show ssl cert " + def,
		"show ssl cert " + dir + "/nowhere.pem",
		"show ssl cert *" + def,
		"set ssl cert " + def,
		"set ssl cert " + dir + "/nowhere.pem <<\n" + renewed,
		"set ssl cert " + def + " <<\ngarbage\n",
		"commit ssl cert " + def,
		"abort ssl cert " + def,
		"set ssl cert " + def + " <<\n" + renewed,
		"set ssl cert " + def + " <<\n" + renewed,
		conflicting + wild + " <<\n" + renewed,
		"show ssl cert",
		"show ssl cert *" + def,
		"commit ssl cert " + wild,
		"abort ssl cert " + wild,
		"commit ssl cert " + def,
		"show ssl cert " + def,
		"set ssl cert " + wild + " <<\n" + renewed,
		"abort ssl cert " + wild,
		"show ssl cert",
	} {
		deliberate := strings.HasPrefix(cmd, conflicting)
		cmd = strings.Replace(cmd, conflicting, "set ssl cert ", 1)
		data := strings.ReplaceAll(cmd, "\\n", "\n")
		// A payload ends with an empty line; its lines end in "\n" already.
		data += "\n"
		h := haproxySocket(t, p.haproxySock, data)
		g := p.tetherAPI.Execute(t.Context(), data, balancer.LevelAdmin, balancer.Origin{})
		if deliberate {
			if want := "The ongoing transaction is about '" + def + "' but you are trying to set '" + wild + "'\nCan't update " + wild + "!\n\n"; g != want || !strings.HasPrefix(h, "Transaction updated for certificate "+def) {
				t.Errorf("set for another file:\nhaproxy %q\ntether  %q, want %q", h, g, want)
			}
			continue
		}
		if h != g {
			t.Errorf("%.60s:\nhaproxy %q\ntether  %q", cmd, h, g)
		}
	}
	for _, addr := range []string{p.haproxy[1], p.tether[1]} {
		if got := handshakeOutcome(addr, "", nil, 0, 0); !strings.HasPrefix(got, "cert=renewed.test ") {
			t.Errorf("%s after commit: %s", addr, got)
		}
	}
	for side, c := range before {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		reply, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(reply), "HTTP/1.1 200") || c.ConnectionState().PeerCertificates[0].Subject.CommonName != "default.test" {
			t.Errorf("%s: a connection opened before the commit got %.40q", side, reply)
		}
	}
}

// haproxySocket sends data to HAProxy's admin socket and returns the
// reply, as "socat" would.
func haproxySocket(t *testing.T, sock, data string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, data)
	c.(*net.UnixConn).CloseWrite()
	out, _ := io.ReadAll(c)
	return string(out)
}
