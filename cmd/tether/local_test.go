package main

import (
	"reflect"
	"testing"

	"tether/balancer"
)

func TestBindFlag(t *testing.T) {
	tlsBind := balancer.Bind{Addr: "*:8443", TLS: &balancer.BindTLS{}}
	cfg := balancer.Config{Frontends: []balancer.Frontend{
		{Name: "www", Binds: balancer.BindAddrs("*:80")},
		{Name: "api", Binds: []balancer.Bind{{Addr: "*:8080"}, tlsBind}},
	}}
	tests := []struct {
		name    string
		flags   []string
		setErr  bool
		checkOK bool
		want    map[string][]string
	}{
		{"none", nil, false, true, map[string][]string{"www": {"*:80"}, "api": {"*:8080", "*:8443"}}},
		{"one frontend", []string{"www=127.0.0.1:8081"}, false, true, map[string][]string{"www": {"127.0.0.1:8081"}, "api": {"*:8080", "*:8443"}}},
		{"several addresses", []string{"api=127.0.0.1:1, 127.0.0.2:2"}, false, true, map[string][]string{"www": {"*:80"}, "api": {"127.0.0.1:1", "127.0.0.2:2"}}},
		{"last one wins", []string{"www=:1", "www=:2"}, false, true, map[string][]string{"www": {":2"}, "api": {"*:8080", "*:8443"}}},
		{"unknown frontend", []string{"nope=:1"}, false, false, nil},
		{"fewer addresses than binds", []string{"api=:1"}, false, false, nil},
		{"more addresses than binds", []string{"www=:1,:2"}, false, false, nil},
		{"no address", []string{"www="}, true, false, nil},
		{"no frontend", []string{"=:1"}, true, false, nil},
		{"no equals sign", []string{":1"}, true, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := bindFlag{}
			for _, v := range tt.flags {
				if err := f.Set(v); (err != nil) != tt.setErr {
					t.Fatalf("Set(%q) = %v, want error %v", v, err, tt.setErr)
				}
			}
			if tt.setErr {
				return
			}
			if err := f.check(cfg); (err == nil) != tt.checkOK {
				t.Fatalf("check = %v, want ok %v", err, tt.checkOK)
			}
			if !tt.checkOK {
				return
			}
			got := map[string][]string{}
			local := f.apply(cfg)
			for _, fe := range local.Frontends {
				for _, bd := range fe.Binds {
					got[fe.Name] = append(got[fe.Name], bd.Addr)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("binds = %v, want %v", got, tt.want)
			}
			if local.Frontends[1].Binds[1].TLS != tlsBind.TLS {
				t.Error("the TLS bind lost its TLS settings")
			}
			if cfg.Frontends[0].Binds[0].Addr != "*:80" || cfg.Frontends[1].Binds[1].Addr != "*:8443" {
				t.Error("apply changed the shared configuration")
			}
		})
	}
}
