package haproxycfg

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"tether/balancer"
	"tether/balancer/e2etest"
)

// tlsTestFiles copies the test certificates to a temporary directory and
// returns it.
func tlsTestFiles(t *testing.T) string {
	dir := t.TempDir()
	for _, name := range []string{"default.pem", "shop.pem", "ca.pem"} {
		data, err := os.ReadFile(filepath.Join("testdata/tls", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseBindTLS(t *testing.T) {
	dir := tlsTestFiles(t)
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("shop.pem [alpn http/1.1] shop.test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `global
    crt-base ` + dir + `
    ca-base ` + dir + `
    ssl-default-bind-options no-tlsv12 no-tls-tickets
frontend f
    bind :443,:8443 ssl crt default.pem crt-list list.txt alpn h2,http/1.1 strict-sni verify required ca-file ca.pem
    bind :80
    default_backend b
backend b
    server s 127.0.0.1:1
`
	cfg, _, err := Parse("t.cfg", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tl := &balancer.BindTLS{Certs: []balancer.CertSource{{Path: "default.pem"}, {Path: "list.txt", List: true}},
		ALPN: []string{"h2", "http/1.1"}, StrictSNI: true, Verify: "required", CAFile: "ca.pem"}
	want := []balancer.Bind{{Addr: ":443", TLS: tl}, {Addr: ":8443", TLS: tl}, {Addr: ":80"}}
	if got := cfg.Frontends[0].Binds; !reflect.DeepEqual(got, want) {
		t.Errorf("binds %+v\nwant  %+v", got, want)
	}
	wantDefaults := balancer.SSLDefaults{Options: []string{"no-tlsv12", "no-tls-tickets"}, CrtBase: dir, CABase: dir}
	if !reflect.DeepEqual(cfg.Global.SSLDefaultBind, wantDefaults) {
		t.Errorf("global %+v, want %+v", cfg.Global.SSLDefaultBind, wantDefaults)
	}
	out, err := Format(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := Parse("again.cfg", out)
	if err != nil {
		t.Fatalf("Parse(Format): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again.Frontends[0].Binds, cfg.Frontends[0].Binds) || !reflect.DeepEqual(again.Global.SSLDefaultBind, cfg.Global.SSLDefaultBind) {
		t.Errorf("round trip changed the TLS settings:\n%s", out)
	}
}

// TestParseBindTLSRefuses: what Tether cannot do faithfully is an error
// naming the line.
func TestParseBindTLSRefuses(t *testing.T) {
	dir := tlsTestFiles(t)
	crt := filepath.Join(dir, "default.pem")
	for _, tc := range []struct {
		global, bind, want string
	}{
		{bind: "ssl", want: "t.cfg:4: 'bind' : no SSL certificate specified"},
		{bind: "crt " + crt, want: "t.cfg:4: 'bind' : TLS settings without 'ssl'"},
		{bind: "ssl crt " + crt + " ssl-min-ver TLSv1.4", want: "t.cfg:4: 'bind' : 'ssl-min-ver' : unknown ssl/tls version string 'TLSv1.4'"},
		{bind: "ssl crt " + crt + " ssl-min-ver SSLv3", want: "t.cfg:4: 'bind' : 'ssl-min-ver SSLv3' is not supported by Tether"},
		{bind: "ssl crt " + crt + " verify sometimes", want: "t.cfg:4: 'bind' : 'verify' : unknown verify method 'sometimes'"},
		{bind: "ssl crt " + crt + " verify required", want: "t.cfg:4: 'bind' : 'verify required' needs a 'ca-file'"},
		{bind: "ssl crt " + crt + " ciphers HIGH", want: "t.cfg:4: 'bind' : cipher 'HIGH'"},
		{bind: "ssl crt " + crt + " curves X25519", want: "t.cfg:4: bind parameter 'curves' is not supported by Tether"},
		{bind: "ssl crt " + crt + " npn h2", want: "t.cfg:4: bind parameter 'npn' is not supported by Tether"},
		{bind: "ssl crt " + crt + " crt", want: "t.cfg:4: 'bind' : 'crt' : missing value."},
		{bind: "ssl crt " + dir + "/none.pem", want: "t.cfg:4: 'bind' : unable to stat SSL certificate from file '" + dir + "/none.pem'"},
		{global: "ssl-default-bind-ciphers ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256", bind: "ssl crt " + crt,
			want: "t.cfg:2: 'ssl-default-bind-ciphers' : cipher 'DHE-RSA-AES128-GCM-SHA256'"},
		{global: "ssl-default-bind-options no-tlsv11 ssl-min-ver TLSv1.0", bind: "ssl crt " + crt,
			want: "t.cfg:4: 'bind' : the enabled TLS versions have a hole"},
		{global: "ssl-default-bind-options ssl-min-ver", bind: "ssl crt " + crt, want: "t.cfg:2: 'ssl-default-bind-options' : 'ssl-min-ver' : expects one of"},
		{global: "ssl-default-bind-curves X25519", bind: "ssl crt " + crt, want: "t.cfg:2: 'ssl-default-bind-curves X25519' is not supported by Tether"},
	} {
		global := tc.global
		if global == "" {
			global = "maxconn 100"
		}
		src := "global\n    " + global + "\nfrontend f\n    bind :443 " + tc.bind + "\n    default_backend b\nbackend b\n    server s 127.0.0.1:1\n"
		_, _, err := Parse("t.cfg", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bind %q with %q: error %v\nwant one containing %q", tc.bind, tc.global, err, tc.want)
		}
	}
}

// TestSSLDefaultsWithoutTLSBind: the global TLS lines of Debian's default
// file are not checked when no bind uses TLS, since they change nothing.
func TestSSLDefaultsWithoutTLSBind(t *testing.T) {
	src := "global\n    ssl-default-bind-ciphers DHE-RSA-AES128-GCM-SHA256\n    ssl-default-bind-options no-tls-tickets prefer-client-ciphers\n" +
		"frontend f\n    bind :80\n    default_backend b\nbackend b\n    server s 127.0.0.1:1\n"
	if _, _, err := Parse("t.cfg", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func TestParseServerTLS(t *testing.T) {
	dir := tlsTestFiles(t)
	src := `global
    ca-base ` + dir + `
    crt-base ` + dir + `
defaults
    mode http
backend b
    default-server ssl verify none
    server s1 127.0.0.1:1 sni req.hdr(host)
    server s2 127.0.0.1:2 no-ssl check check-ssl port 9
    server s3 127.0.0.1:3 verify required ca-file ca.pem sni str(api.test) crt shop.pem
`
	cfg, _, err := Parse("t.cfg", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Backends[0].Servers
	want := []struct {
		ssl, checkSSL bool
		tls           balancer.ServerTLS
	}{
		{true, false, balancer.ServerTLS{Verify: "none", SNI: "req.hdr(host)"}},
		{false, true, balancer.ServerTLS{Verify: "none"}},
		{true, false, balancer.ServerTLS{Verify: "required", CAFile: filepath.Join(dir, "ca.pem"), SNI: "str(api.test)", Crt: filepath.Join(dir, "shop.pem")}},
	}
	for i, w := range want {
		if got[i].SSL != w.ssl || got[i].CheckSSL != w.checkSSL || got[i].TLS != w.tls {
			t.Errorf("server %s: ssl %v check-ssl %v %+v, want %v %v %+v", got[i].Name, got[i].SSL, got[i].CheckSSL, got[i].TLS, w.ssl, w.checkSSL, w.tls)
		}
	}
	out, err := Format(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := Parse("again.cfg", out)
	if err != nil {
		t.Fatalf("Parse(Format): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again.Backends[0].Servers, got) {
		t.Errorf("round trip changed the servers:\n%s", out)
	}
}

func TestParseServerTLSRefuses(t *testing.T) {
	for _, tc := range []struct{ params, want string }{
		{"ssl", "t.cfg:3: 'server b/s' : verify is enabled by default but no CA file specified."},
		{"check-ssl check", "t.cfg:3: 'server b/s' : verify is enabled by default but no CA file specified."},
		{"ssl verify sometimes", "t.cfg:3: 'server b/s' : 'verify' : unknown verify method 'sometimes'"},
		{"ssl verify none sni req.hdr(x)", "t.cfg:3: 'server b/s' : 'sni req.hdr(x)' is not supported by Tether"},
		{"ssl ca-file /nonexistent.pem", "t.cfg:3: 'server b/s' : unable to load CA file '/nonexistent.pem'"},
		{"ssl verify none alpn h2", "t.cfg:3: 'server b/s' : server keyword 'alpn' is not supported by Tether"},
		{"ssl verify none verifyhost a.test", "t.cfg:3: 'server b/s' : server keyword 'verifyhost' is not supported by Tether"},
	} {
		src := "backend b\n    mode http\n    server s 127.0.0.1:1 " + tc.params + "\n"
		if _, _, err := Parse("t.cfg", []byte(src)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("server … %s: %v\nwant an error containing %q", tc.params, err, tc.want)
		}
	}
}

// TestTLSGolden parses testdata/tls/tls.cfg, whose certificates are read
// from testdata/tls (so it is kept apart from testdata/valid, which other
// packages read from elsewhere), writes it back as testdata/tls/tls.golden
// shows and parses the output to the same configuration.
func TestTLSGolden(t *testing.T) {
	const path = "testdata/tls/tls.cfg"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, warns, err := Parse(path, src)
	if err != nil || len(warns) > 0 {
		t.Fatalf("Parse: %v, warnings %v", err, warns)
	}
	out, err := Format(cfg)
	if err != nil {
		t.Fatal(err)
	}
	golden := strings.TrimSuffix(path, ".cfg") + ".golden"
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(want) {
		t.Errorf("Format output differs from %s (run with -update if intended):\n%s", golden, out)
	}
	again, _, err := Parse("golden", out)
	if err != nil {
		t.Fatalf("written configuration does not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again.WithoutPositions(), cfg.WithoutPositions()) {
		t.Errorf("round trip changed the configuration:\n%+v\n%+v", cfg, again)
	}
}

// TestTLSGoldenHAProxyAgrees has HAProxy 2.6 check testdata/tls/tls.cfg
// and its written form.
func TestTLSGoldenHAProxyAgrees(t *testing.T) {
	haproxy := e2etest.RequireProgram(t, "haproxy")
	for _, path := range []string{"testdata/tls/tls.cfg", "testdata/tls/tls.golden"} {
		out, err := exec.Command(haproxy, "-c", "-f", path).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "has no error") {
			t.Errorf("haproxy -c -f %s: %v\n%s", path, err, out)
		}
	}
}

// TestSSLServerGlobals: ssl-server-verify is the verify default of TLS
// servers; the ssl-default-server-* lines are refused once a server uses
// TLS, and only warned about otherwise.
func TestSSLServerGlobals(t *testing.T) {
	cfg, _, err := Parse("t.cfg", []byte("global\n    ssl-server-verify none\nbackend b\n    mode http\n    server s 127.0.0.1:1 ssl\n    server u 127.0.0.1:2 ssl verify required ca-file "+
		filepath.Join(tlsTestFiles(t), "ca.pem")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := cfg.Backends[0].Servers[0].TLS.Verify; v != "none" {
		t.Errorf("verify %q under ssl-server-verify none", v)
	}
	if v := cfg.Backends[0].Servers[1].TLS.Verify; v != "required" {
		t.Errorf("an explicit verify became %q", v)
	}
	const withOptions = "global\n    ssl-default-server-options ssl-min-ver TLSv1.3\nbackend b\n    mode http\n    server s 127.0.0.1:1"
	_, warns, err := Parse("t.cfg", []byte(withOptions+"\n"))
	if err != nil || len(warns) != 1 {
		t.Errorf("without TLS servers: %v, warnings %v", err, warns)
	}
	_, _, err = Parse("t.cfg", []byte(withOptions+" ssl verify none\n"))
	if err == nil || !strings.Contains(err.Error(), "t.cfg:5: 'server b/s' : uses TLS, and the global 'ssl-default-server-options' (line 2) is not supported by Tether") {
		t.Errorf("with a TLS server: %v", err)
	}
}
