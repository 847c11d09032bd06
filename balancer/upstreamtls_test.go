package balancer

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tether/balancer/tlsbind/tlsbindtest"
)

// tlsOrigin is an HTTPS origin that answers with the SNI it received and
// the client port of the connection, to tell connections apart.
type tlsOrigin struct {
	srv  *httptest.Server
	addr netip.AddrPort
	mu   sync.Mutex
	// clientCert is the CN of the client certificate of the last request.
	clientCert string
}

func startTLSOrigin(t *testing.T, ca *tlsbindtest.CA, clientCAs bool, names ...string) *tlsOrigin {
	t.Helper()
	o := &tlsOrigin{}
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			o.mu.Lock()
			o.clientCert = r.TLS.PeerCertificates[0].Subject.CommonName
			o.mu.Unlock()
		}
		w.Header().Set("X-SNI", r.TLS.ServerName)
		w.Header().Set("X-Conn", r.RemoteAddr)
		io.WriteString(w, "ok")
	}))
	leaf := ca.Issue(t, names[0], names...)
	cert, err := tls.X509KeyPair(append(leaf.CertPEM, ca.PEM...), leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	o.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	o.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if clientCAs {
		o.srv.TLS.ClientAuth, o.srv.TLS.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool()
	}
	o.srv.StartTLS()
	t.Cleanup(o.srv.Close)
	o.addr = netip.MustParseAddrPort(o.srv.Listener.Addr().String())
	return o
}

// TestServerTLS sends requests to HTTPS origins: the certificate chain is
// checked against ca-file, the name only against the SNI sent, and
// connections are reused only for requests with the same SNI.
func TestServerTLS(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	other := tlsbindtest.NewCA(t, "Other CA")
	dir := t.TempDir()
	caFile := tlsbindtest.WriteFile(t, dir, "ca.pem", ca.PEM)
	otherFile := tlsbindtest.WriteFile(t, dir, "other.pem", other.PEM)
	client := tlsbindtest.WriteFile(t, dir, "client.pem", ca.Issue(t, "tether-client").Bundle(ca))
	o := startTLSOrigin(t, ca, false, "*.origin.test")
	mtls := startTLSOrigin(t, ca, true, "mtls.test")

	type request struct {
		host string
		// want is "status sni" or just the status.
		want string
	}
	for _, tc := range []struct {
		name   string
		origin *tlsOrigin
		tls    ServerTLS
		reqs   []request
		// conns is how many connections the origin saw for the requests
		// answered 200 (0: not checked).
		conns int
	}{
		{name: "SNI from Host, checked", origin: o, tls: ServerTLS{CAFile: caFile, SNI: "req.hdr(host)"}, reqs: []request{
			{"a.origin.test", "200 a.origin.test"}, {"a.origin.test", "200 a.origin.test"}, {"b.origin.test", "200 b.origin.test"},
			{"a.origin.test", "200 a.origin.test"}, {"elsewhere.test", "503"},
		}, conns: 2},
		{name: "no SNI: chain only", origin: o, tls: ServerTLS{CAFile: caFile}, reqs: []request{
			{"elsewhere.test", "200 "}, {"a.origin.test", "200 "},
		}, conns: 1},
		{name: "fixed SNI", origin: o, tls: ServerTLS{CAFile: caFile, SNI: "str(x.origin.test)"}, reqs: []request{
			{"elsewhere.test", "200 x.origin.test"},
		}},
		{name: "fixed SNI not in the certificate", origin: o, tls: ServerTLS{CAFile: caFile, SNI: "str(origin.test)"}, reqs: []request{
			{"a.origin.test", "503"},
		}},
		{name: "untrusted chain", origin: o, tls: ServerTLS{CAFile: otherFile}, reqs: []request{{"a.origin.test", "503"}}},
		{name: "verify none", origin: o, tls: ServerTLS{Verify: "none", SNI: "str(origin.test)"}, reqs: []request{{"a.origin.test", "200 origin.test"}}},
		{name: "client certificate", origin: mtls, tls: ServerTLS{CAFile: caFile, Crt: client}, reqs: []request{{"mtls.test", "200 "}}},
		// Under TLS 1.3 the server refuses a missing client certificate
		// after the client's handshake ended: the response fails, as a
		// server that closes without answering.
		{name: "no client certificate", origin: mtls, tls: ServerTLS{CAFile: caFile}, reqs: []request{{"mtls.test", "502"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := Backend{Name: "b", TimeoutConnect: time.Second, Retries: 1, Servers: []Server{{Name: "s1",
				Address: tc.origin.addr.Addr().String(), Port: int(tc.origin.addr.Port()), PortSet: true, Weight: 1, SSL: true, TLS: tc.tls}}}
			h := newHarness(t, be, nil)
			client := &http.Client{}
			conns := map[string]bool{}
			for _, r := range tc.reqs {
				req, _ := http.NewRequest("GET", h.url+"/", nil)
				req.Host = r.host
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				got := strconv.Itoa(resp.StatusCode)
				if resp.StatusCode == 200 {
					got += " " + resp.Header.Get("X-SNI")
					conns[resp.Header.Get("X-Conn")] = true
				}
				if got != r.want {
					t.Errorf("Host %s: got %q, want %q", r.host, got, r.want)
				}
			}
			if tc.conns != 0 && len(conns) != tc.conns {
				t.Errorf("origin saw %d connections, want %d", len(conns), tc.conns)
			}
		})
	}
	if mtls.clientCert != "tether-client" {
		t.Errorf("the origin saw client certificate %q", mtls.clientCert)
	}
}

// TestServerTLSChecks runs health checks over TLS: an SSL server's checks
// are TLS, and a failed handshake is a layer 6 failure, as in HAProxy.
func TestServerTLSChecks(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	other := tlsbindtest.NewCA(t, "Other CA")
	dir := t.TempDir()
	caFile := tlsbindtest.WriteFile(t, dir, "ca.pem", ca.PEM)
	otherFile := tlsbindtest.WriteFile(t, dir, "other.pem", other.PEM)
	o := startTLSOrigin(t, ca, false, "origin.test")
	server := func(name string, t ServerTLS) Server {
		return Server{Name: name, Address: o.addr.Addr().String(), Port: int(o.addr.Port()), PortSet: true, Weight: 1,
			SSL: true, TLS: t, Check: true, Inter: 20 * time.Millisecond, Rise: 1, Fall: 1}
	}
	be := Backend{Name: "b", HTTPCheck: &HTTPCheck{URI: "/"}, TimeoutConnect: time.Second, Servers: []Server{
		server("good", ServerTLS{CAFile: caFile}),
		server("untrusted", ServerTLS{CAFile: otherFile}),
	}}
	h := newHarness(t, be, nil)
	ctx, stop := contextWithCancel()
	done := make(chan struct{})
	go func() { h.b.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap := h.b.Snapshot().Backend("b")
		good, bad := snap.Server("good").Check, snap.Server("untrusted").Check
		if good.Status == "L7OK" && bad.Status == "L6RSP" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checks: good %+v, untrusted %+v; want L7OK and L6RSP", good, bad)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServerTLSRefused(t *testing.T) {
	for _, tc := range []struct {
		tls  ServerTLS
		want string
	}{
		{ServerTLS{}, "no CA file"},
		{ServerTLS{Verify: "none", SNI: "req.hdr(x-name)"}, "'sni req.hdr(x-name)' is not supported"},
		{ServerTLS{CAFile: "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"},
		{ServerTLS{Verify: "none", Crt: "/nonexistent/c.pem"}, "/nonexistent/c.pem"},
	} {
		err := CheckServerTLS(Server{Name: "s", SSL: true, TLS: tc.tls})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.tls, err, tc.want)
		}
	}
}
