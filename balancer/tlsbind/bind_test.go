package tlsbind_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"tether/balancer"
	"tether/balancer/tlsbind"
	"tether/balancer/tlsbind/tlsbindtest"
)

// certs writes the certificates the SNI tests share and returns their
// paths by CN.
func certs(t *testing.T, ca *tlsbindtest.CA, dir string) map[string]string {
	paths := make(map[string]string)
	for _, c := range []struct {
		file, cn string
		sans     []string
	}{
		{"default.pem", "default.test", []string{"default.test", "www.default.test"}},
		{"shop.pem", "shop.example.test", nil},
		{"wild.pem", "*.example.test", []string{"*.example.test"}},
		{"api.pem", "api.example.test", []string{"api.example.test", "API2.example.test"}},
	} {
		paths[c.cn] = tlsbindtest.WriteFile(t, dir, c.file, ca.Issue(t, c.cn, c.sans...).Bundle(ca))
	}
	return paths
}

func TestChoose(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	dir := t.TempDir()
	p := certs(t, ca, dir)
	list := tlsbindtest.WriteFile(t, dir, "list.txt", []byte(strings.Join([]string{
		"# comment",
		"",
		p["*.example.test"] + " *.example.test !secret.example.test",
		p["shop.example.test"] + " [alpn h2] other.test",
		p["api.example.test"],
	}, "\n")))
	crt := func(ps ...string) []balancer.CertSource {
		var out []balancer.CertSource
		for _, path := range ps {
			out = append(out, balancer.CertSource{Path: path, List: strings.HasSuffix(path, ".txt")})
		}
		return out
	}
	type want map[string]string // SNI → CN served ("" refused)
	for _, tc := range []struct {
		name string
		tls  balancer.BindTLS
		want want
	}{
		{"crt files", balancer.BindTLS{Certs: crt(p["default.test"], p["*.example.test"], p["api.example.test"], p["shop.example.test"])}, want{
			"":                   "default.test",
			"www.default.test":   "default.test",
			"api.example.test":   "api.example.test",
			"API.Example.TEST":   "api.example.test",
			"api2.example.test":  "api.example.test",
			"shop.example.test":  "shop.example.test", // exact beats wildcard
			"a.example.test":     "*.example.test",
			"a.b.example.test":   "default.test", // one label only
			"example.test":       "default.test",
			"unknown.test":       "default.test",
			"shop.example.test.": "shop.example.test",
		}},
		{"strict-sni", balancer.BindTLS{Certs: crt(p["default.test"], p["*.example.test"]), StrictSNI: true}, want{
			"":                 "",
			"unknown.test":     "",
			"default.test":     "default.test",
			"x.example.test":   "*.example.test",
			"a.b.example.test": "",
		}},
		{"directory", balancer.BindTLS{Certs: crt(dir)}, want{
			// api.pem sorts first; list.txt is not a certificate but is in the
			// directory: see TestLoadDirRefusesNonCertificate.
		}},
		{"crt-list", balancer.BindTLS{Certs: crt(p["default.test"], list)}, want{
			"secret.example.test": "default.test", // excluded by !secret
			"x.example.test":      "*.example.test",
			"other.test":          "shop.example.test",
			"shop.example.test":   "*.example.test", // filtered: its own name is not indexed
			"api.example.test":    "api.example.test",
		}},
		{"crt-list first", balancer.BindTLS{Certs: crt(list, p["default.test"])}, want{
			"":             "*.example.test",
			"default.test": "default.test",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "directory" {
				if _, err := tlsbind.Build(tc.tls, balancer.SSLDefaults{}); err == nil || !strings.Contains(err.Error(), "list.txt") {
					t.Fatalf("a directory holding a non-certificate file: %v", err)
				}
				return
			}
			b, err := tlsbind.Build(tc.tls, balancer.SSLDefaults{})
			if err != nil {
				t.Fatal(err)
			}
			for sni, cn := range tc.want {
				got := ""
				if c := b.Choose(sni); c != nil {
					got = c.TLS.Leaf.Subject.CommonName
				}
				if got != cn {
					t.Errorf("SNI %q: served %q, want %q", sni, got, cn)
				}
			}
		})
	}
}

// TestHandshake checks the choice, ALPN and strict-sni's alert on real
// handshakes.
func TestHandshake(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	dir := t.TempDir()
	p := certs(t, ca, dir)
	list := tlsbindtest.WriteFile(t, dir, "list.txt", []byte(p["shop.example.test"]+" [alpn http/1.1] shop.example.test\n"))
	b, err := tlsbind.Build(balancer.BindTLS{
		Certs:     []balancer.CertSource{{Path: p["default.test"]}, {Path: p["*.example.test"]}, {Path: list, List: true}},
		ALPN:      []string{"h2", "http/1.1"},
		StrictSNI: true,
	}, balancer.SSLDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", b.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	for _, tc := range []struct {
		sni, cn, alpn string
		alert         bool
	}{
		{sni: "default.test", cn: "default.test", alpn: "h2"},
		{sni: "a.example.test", cn: "*.example.test", alpn: "h2"},
		{sni: "shop.example.test", cn: "shop.example.test", alpn: "http/1.1"},
		{sni: "nowhere.test", alert: true},
	} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: tc.sni, NextProtos: []string{"h2", "http/1.1"},
			InsecureSkipVerify: true})
		if tc.alert {
			// crypto/tls reports a received alert by its RFC name.
			if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
				t.Errorf("SNI %s: error %v, want alert 112 (unrecognized_name)", tc.sni, err)
			}
			if c != nil {
				c.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("SNI %s: %v", tc.sni, err)
			continue
		}
		st := c.ConnectionState()
		if cn := st.PeerCertificates[0].Subject.CommonName; cn != tc.cn || st.NegotiatedProtocol != tc.alpn {
			t.Errorf("SNI %s: served %q with ALPN %q, want %q with %q", tc.sni, cn, st.NegotiatedProtocol, tc.cn, tc.alpn)
		}
		if len(st.PeerCertificates) != 2 {
			t.Errorf("SNI %s: %d certificates sent, want leaf and chain", tc.sni, len(st.PeerCertificates))
		}
		c.Close()
	}
	// Protocols the bind does not have: the handshake goes on without
	// ALPN, as with HAProxy.
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "default.test", NextProtos: []string{"spdy/3"}, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("client with unknown ALPN protocols: %v", err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "" {
		t.Errorf("negotiated %q with a client offering spdy/3", p)
	}
	c.Close()
}

func TestLoadPEM(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	dir := t.TempDir()
	leaf := ca.Issue(t, "a.test", "a.test")
	other := ca.Issue(t, "b.test")
	// Key first, then leaf and chain: the order inside a bundle is free.
	keyFirst := tlsbindtest.WriteFile(t, dir, "keyfirst.pem", append(append([]byte(nil), leaf.KeyPEM...), append(leaf.CertPEM, ca.PEM...)...))
	noKey := tlsbindtest.WriteFile(t, dir, "split.crt", leaf.CertPEM)
	tlsbindtest.WriteFile(t, dir, "split.crt.key", leaf.KeyPEM)
	orphan := tlsbindtest.WriteFile(t, dir, "orphan.crt", leaf.CertPEM)
	tlsbindtest.WriteFile(t, dir, "orphan.key", leaf.KeyPEM) // HAProxy looks for orphan.crt.key
	mismatch := tlsbindtest.WriteFile(t, dir, "mismatch.pem", append(append([]byte(nil), leaf.CertPEM...), other.KeyPEM...))
	for _, tc := range []struct {
		path string
		err  string
	}{
		{keyFirst, ""},
		{noKey, ""},
		{orphan, "orphan.crt.key"},
		{mismatch, "mismatch.pem"},
		{dir + "/missing.pem", "missing.pem"},
	} {
		c, err := tlsbind.LoadPEM(tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("LoadPEM(%s): %v, want an error naming %s", tc.path, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("LoadPEM(%s): %v", tc.path, err)
			continue
		}
		if c.TLS.Leaf.Subject.CommonName != "a.test" || len(c.Names) != 1 {
			t.Errorf("LoadPEM(%s): leaf %s names %v", tc.path, c.TLS.Leaf.Subject.CommonName, c.Names)
		}
	}
}

// TestLoadDir loads a directory in alphabetical order, skipping hidden
// files and the extra files of a certificate.
func TestLoadDir(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	dir := t.TempDir()
	tlsbindtest.WriteFile(t, dir, "b.pem", ca.Issue(t, "b.test").Bundle(ca))
	tlsbindtest.WriteFile(t, dir, "a.pem", ca.Issue(t, "a.test").Bundle(ca))
	for _, skipped := range []string{".hidden.pem", "x.key", "a.pem.ocsp", "a.pem.issuer", "a.pem.sctl"} {
		tlsbindtest.WriteFile(t, dir, skipped, []byte("not a certificate"))
	}
	certs, err := tlsbind.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var cns []string
	for _, c := range certs {
		cns = append(cns, c.TLS.Leaf.Subject.CommonName)
	}
	if strings.Join(cns, ",") != "a.test,b.test" {
		t.Errorf("loaded %v, want a.test then b.test", cns)
	}
}

func TestBuildRefuses(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	dir := t.TempDir()
	crt := tlsbindtest.WriteFile(t, dir, "c.pem", ca.Issue(t, "c.test").Bundle(ca))
	certs := []balancer.CertSource{{Path: crt}}
	for _, tc := range []struct {
		name string
		tls  balancer.BindTLS
		list string
		err  string
	}{
		{name: "cipher keyword", tls: balancer.BindTLS{Ciphers: "HIGH:!aNULL"}, err: "cipher 'HIGH'"},
		{name: "DHE", tls: balancer.BindTLS{Ciphers: "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256"}, err: "DHE-RSA-AES128-GCM-SHA256"},
		{name: "TLS 1.3 subset", tls: balancer.BindTLS{CipherSuites: "TLS_AES_256_GCM_SHA384"}, err: "ciphersuites"},
		{name: "SSLv3", tls: balancer.BindTLS{MinVer: "SSLv3"}, err: "SSLv3"},
		{name: "verify without CA", tls: balancer.BindTLS{Verify: "required"}, err: "ca-file"},
		{name: "crt-list option", list: crt + " [curves X25519] c.test\n", err: "list.txt:1"},
		{name: "crt-list file", list: "\n" + dir + "/none.pem\n", err: "list.txt:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bt := tc.tls
			bt.Certs = certs
			if tc.list != "" {
				bt.Certs = []balancer.CertSource{{Path: tlsbindtest.WriteFile(t, t.TempDir(), "list.txt", []byte(tc.list)), List: true}}
			}
			_, err := tlsbind.Build(bt, balancer.SSLDefaults{})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Build: %v, want an error containing %q", err, tc.err)
			}
		})
	}
	ok := balancer.BindTLS{Certs: certs, Ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
		CipherSuites: "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"}
	if _, err := tlsbind.Build(ok, balancer.SSLDefaults{}); err != nil {
		t.Errorf("Build with supported ciphers: %v", err)
	}
}

// TestClientCertificates: verify optional asks for a certificate and
// checks one that is sent; verify required also refuses a client without.
func TestClientCertificates(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	other := tlsbindtest.NewCA(t, "Other CA")
	dir := t.TempDir()
	crt := tlsbindtest.WriteFile(t, dir, "server.pem", ca.Issue(t, "server.test", "server.test").Bundle(ca))
	caFile := tlsbindtest.WriteFile(t, dir, "ca.pem", ca.PEM)
	pair := func(issuer *tlsbindtest.CA) []tls.Certificate {
		l := issuer.Issue(t, "client")
		c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	for _, verify := range []string{"optional", "required"} {
		b, err := tlsbind.Build(balancer.BindTLS{Certs: []balancer.CertSource{{Path: crt}}, Verify: verify, CAFile: caFile}, balancer.SSLDefaults{})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", b.Config())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { c.(*tls.Conn).Handshake(); c.Write([]byte("x")); c.Close() }()
			}
		}()
		for _, tc := range []struct {
			name  string
			certs []tls.Certificate
			ok    bool
		}{
			{"no certificate", nil, verify == "optional"},
			{"trusted", pair(ca), true},
			{"untrusted", pair(other), false},
		} {
			conf := &tls.Config{InsecureSkipVerify: true}
			if tc.certs != nil {
				// Sent even when the server's CA list does not name its
				// issuer, which crypto/tls's client would otherwise skip.
				conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc.certs[0], nil }
			}
			c, err := tls.Dial("tcp", ln.Addr().String(), conf)
			if err == nil {
				// A TLS 1.3 server refuses a client certificate after the
				// client's handshake ended: the refusal comes with the
				// first read.
				_, err = c.Read(make([]byte, 1))
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Errorf("verify %s, %s: error %v, want success %v", verify, tc.name, err, tc.ok)
			}
		}
		ln.Close()
	}
}
