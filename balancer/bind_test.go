package balancer

import (
	"reflect"
	"strings"
	"testing"
)

// TestDecodeStateWithStringBinds reads a state document written before
// binds had TLS settings, when each bind was its address string.
func TestDecodeStateWithStringBinds(t *testing.T) {
	old := `{"v":1,"state":{"Config":{"Global":{"StatsSockets":null},"Frontends":[{"Name":"www","ID":1,` +
		`"Binds":["127.0.0.1:8080","[::1]:8080"],"DefaultBackend":"app"}],"Backends":[{"Name":"app","ID":2}]},"Servers":{}}}`
	st, err := DecodeState([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	want := []Bind{{Addr: "127.0.0.1:8080"}, {Addr: "[::1]:8080"}}
	if got := st.Config.Frontends[0].Binds; !reflect.DeepEqual(got, want) {
		t.Errorf("binds %+v, want %+v", got, want)
	}
}

// TestBindCodecRoundTrip: a plain bind is still written as its address
// string, a TLS bind as an object, and both read back unchanged.
func TestBindCodecRoundTrip(t *testing.T) {
	st := State{Config: Config{
		Global: Global{SSLDefaultBind: SSLDefaults{Options: []string{"ssl-min-ver", "TLSv1.2"}, Ciphers: "ECDHE-RSA-AES128-GCM-SHA256"}},
		Frontends: []Frontend{{Name: "www", Binds: []Bind{
			{Addr: ":80"},
			{Addr: ":443", TLS: &BindTLS{Certs: []CertSource{{Path: "/etc/site.pem"}, {Path: "/etc/list", List: true}},
				ALPN: []string{"h2", "http/1.1"}, MinVer: "TLSv1.2", StrictSNI: true, Verify: "optional", CAFile: "/etc/ca.pem"}},
		}}},
	}}
	data, err := EncodeState(st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"Binds":[":80",{"Addr":":443","TLS":{`) {
		t.Errorf("encoded binds: %s", data)
	}
	got, err := DecodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config.Frontends, st.Config.Frontends) || !reflect.DeepEqual(got.Config.Global, st.Config.Global) {
		t.Errorf("decoded %+v\nwant    %+v", got.Config, st.Config)
	}
}

func TestEffectiveTLS(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bind     BindTLS
		defaults SSLDefaults
		min, max string
		err      string
	}{
		{name: "HAProxy's defaults", min: "TLSv1.2", max: "TLSv1.3"},
		{name: "bind range", bind: BindTLS{MinVer: "TLSv1.0", MaxVer: "TLSv1.2"}, min: "TLSv1.0", max: "TLSv1.2"},
		{name: "global range", defaults: SSLDefaults{Options: []string{"ssl-min-ver", "TLSv1.3"}}, min: "TLSv1.3", max: "TLSv1.3"},
		{name: "bind over global", bind: BindTLS{MinVer: "TLSv1.1"}, defaults: SSLDefaults{Options: []string{"ssl-min-ver", "TLSv1.3"}}, min: "TLSv1.1", max: "TLSv1.3"},
		{name: "no flags", defaults: SSLDefaults{Options: []string{"no-tlsv13"}}, min: "TLSv1.2", max: "TLSv1.2"},
		{name: "hole", bind: BindTLS{MinVer: "TLSv1.0"}, defaults: SSLDefaults{Options: []string{"no-tlsv11"}}, err: "hole"},
		{name: "inverted", bind: BindTLS{MinVer: "TLSv1.3", MaxVer: "TLSv1.2"}, err: "above"},
		{name: "all off", defaults: SSLDefaults{Options: []string{"no-tlsv12", "no-tlsv13"}}, err: "disabled"},
		{name: "unknown option", defaults: SSLDefaults{Options: []string{"no-tls-tickets"}}, err: "not supported"},
		{name: "global ciphers", defaults: SSLDefaults{Ciphers: "AES128-SHA"}, min: "TLSv1.2", max: "TLSv1.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.bind.Effective(tc.defaults)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.MinVer != tc.min || got.MaxVer != tc.max || got.Ciphers != tc.defaults.Ciphers {
				t.Errorf("got %s..%s ciphers %q", got.MinVer, got.MaxVer, got.Ciphers)
			}
		})
	}
}
