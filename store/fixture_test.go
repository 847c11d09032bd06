package store_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
)

// richState returns a state that uses every kind of setting: several
// backends, every cookie option, templates, resolvers, sockets and runtime
// states.
func richState() balancer.State {
	return balancer.State{
		Config: balancer.Config{
			Global: balancer.Global{
				StatsSockets: []balancer.StatsSocket{
					{Address: "/run/tether/admin.sock", Mode: 0o660, Level: balancer.LevelAdmin, SeverityOutput: "number"},
					{Address: "ipv4@127.0.0.1:9999", Level: balancer.LevelUser},
				},
				StatsTimeout: 30 * time.Second,
				StatsMaxConn: 20,
			},
			Frontends: []balancer.Frontend{
				{Name: "www", Binds: balancer.BindAddrs("127.0.0.1:8080", "[::1]:8080"), DefaultBackend: "app", ForwardFor: true, TimeoutClient: time.Minute},
				{Name: "api", Binds: balancer.BindAddrs("127.0.0.1:8081"), DefaultBackend: "api"},
			},
			Backends: []balancer.Backend{
				{
					Name:    "app",
					Balance: balancer.RoundRobin,
					Cookie: &balancer.CookieConfig{
						Name: "SRV", Mode: balancer.CookieInsert, Indirect: true, NoCache: true, PostOnly: true,
						Preserve: true, HTTPOnly: true, Secure: true, Dynamic: true,
						Domains: []string{".example.com", ".example.org"},
						MaxIdle: 30 * time.Minute, MaxLife: 8 * time.Hour,
						Attrs: []string{"SameSite=Lax", "Partitioned"},
					},
					DynamicCookieKey:   "s3cr3t-key-app",
					Persist:            true,
					Redispatch:         true,
					RedispatchInterval: -1,
					Retries:            3,
					ForwardFor:         true,
					HTTPCheck:          &balancer.HTTPCheck{Method: "GET", URI: "/health", Version: "HTTP/1.1", ExpectStatus: 200},
					TimeoutConnect:     5 * time.Second,
					TimeoutServer:      30 * time.Second,
					TimeoutCheck:       2 * time.Second,
					TimeoutQueue:       10 * time.Second,
					Servers: []balancer.Server{
						{Name: "web1", Address: "10.0.0.1", Port: 80, PortSet: true, Check: true, Inter: 2 * time.Second,
							FastInter: time.Second, DownInter: 5 * time.Second, Rise: 2, Fall: 3, CheckPort: 8080, Weight: 10, MaxConn: 100},
						{Name: "web2", Address: "10.0.0.2", Port: 80, PortSet: true, Cookie: "w2", Weight: 20, Backup: true},
						{Name: "web3", Address: "web3.internal", Port: 8080, PortSet: true, Weight: 1, Disabled: true,
							Resolvers: "dns", ResolvePrefer: "ipv4", AllowDupIP: true, InitAddr: []string{"last", "libc", "none"}},
					},
					Templates: []balancer.ServerTemplate{
						{Prefix: "dyn", Low: 1, High: 5, FQDN: "_http._tcp.app.internal",
							Params: balancer.Server{Port: 80, PortSet: true, Check: true, Weight: 5, Resolvers: "dns", InitAddr: []string{"none"}}},
						{Prefix: "alt", Low: 10, High: 12, FQDN: "alt.internal", Params: balancer.Server{Weight: 1}},
					},
				},
				{
					Name:    "api",
					Balance: balancer.LeastConn,
					Cookie:  &balancer.CookieConfig{Name: "API", Mode: balancer.CookiePrefix},
					Servers: []balancer.Server{
						{Name: "a1", Address: "10.0.1.1", Port: 9000, PortSet: true, Weight: 1},
						{Name: "a2", Address: "10.0.1.2", Port: 9000, PortSet: true, Weight: 1},
					},
				},
				{Name: "rewrite", Balance: balancer.Source, Cookie: &balancer.CookieConfig{Name: "JSESSIONID", Mode: balancer.CookieRewrite}},
				{Name: "passive", Balance: balancer.StaticRR, Cookie: &balancer.CookieConfig{Name: "PHPSESSID", Mode: balancer.CookiePassive, Dynamic: true}},
				{Name: "plain", Balance: balancer.First, Servers: []balancer.Server{{Name: "p1"}}},
			},
			Resolvers: []balancer.Resolvers{
				{
					Name: "dns",
					Nameservers: []balancer.Nameserver{
						{Name: "ns1", Address: "127.0.0.1:5353"},
						{Name: "ns2", Address: "127.0.0.2:53", TCP: true},
					},
					AcceptedPayloadSize: 8192,
					ResolveRetries:      3,
					TimeoutResolve:      time.Second,
					TimeoutRetry:        time.Second,
					Hold:                map[string]time.Duration{"nx": 30 * time.Second, "valid": 10 * time.Second, "obsolete": 0},
					ParseResolvConf:     true,
				},
				{Name: "empty"},
			},
		},
		Servers: map[string]balancer.ServerRuntime{
			"app/web1": {Admin: balancer.Ready, Weight: 10, CheckEnabled: true, Address: "10.0.0.1", Port: 80, PortSet: true},
			"app/web2": {Admin: balancer.Drain, Weight: 0},
			"app/web3": {Admin: balancer.Maint, Weight: 1},
			"api/a1":   {Admin: balancer.Ready, Weight: 1, Address: "10.0.1.1"},
			// A server-template slot: runtime settings, no configured server.
			"app/dyn1": {Admin: balancer.Ready, Weight: 5, CheckEnabled: true, Address: "10.0.5.1", Port: 80, PortSet: true},
			// api/a2 and plain/p1 have no runtime settings.
		},
	}
}

// filledState returns a state in which every field of every type reachable
// from balancer.State holds a non-zero value, so that a field the store
// forgets is caught when a new one is added to the balancer's types.
func filledState(t *testing.T) balancer.State {
	t.Helper()
	var st balancer.State
	n := 0
	fillValue(t, reflect.ValueOf(&st).Elem(), "State", &n)
	// Map keys must name real servers.
	rt := st.Servers
	st.Servers = map[string]balancer.ServerRuntime{}
	for _, r := range rt {
		b := st.Config.Backends[0]
		st.Servers[b.Name+"/"+b.Servers[0].Name] = r
	}
	return st
}

func fillValue(t *testing.T, v reflect.Value, path string, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(t, v.Field(i), path+"."+v.Type().Field(i).Name, n)
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillValue(t, v.Elem(), path, n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fillValue(t, v.Index(i), fmt.Sprintf("%s[%d]", path, i), n)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			fillValue(t, k, path+".key", n)
			if k.Kind() == reflect.String {
				k.SetString(fmt.Sprintf("k%d", i))
			}
			e := reflect.New(v.Type().Elem()).Elem()
			fillValue(t, e, path+".value", n)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() || v.Type() == reflect.TypeFor[int]() {
			v.SetInt(int64(*n))
		} else {
			// A named integer is an enumeration: pick a valid, non-zero value.
			v.SetInt(2)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	default:
		t.Fatalf("fillValue: %s has kind %s, which the test cannot fill", path, v.Kind())
	}
}

// clone deep-copies a state.
func clone(st balancer.State) balancer.State { return store.Normalize(st) }

// server returns a pointer to the named server in st.
func server(t *testing.T, st *balancer.State, backend, name string) *balancer.Server {
	t.Helper()
	b := backendOf(t, st, backend)
	for i := range b.Servers {
		if b.Servers[i].Name == name {
			return &b.Servers[i]
		}
	}
	t.Fatalf("no server %s/%s", backend, name)
	return nil
}

func backendOf(t *testing.T, st *balancer.State, name string) *balancer.Backend {
	t.Helper()
	for i := range st.Config.Backends {
		if st.Config.Backends[i].Name == name {
			return &st.Config.Backends[i]
		}
	}
	t.Fatalf("no backend %s", name)
	return nil
}

// diffStates describes the first difference between two states, for test
// failure messages.
func diffStates(a, b balancer.State) string {
	var out []string
	var walk func(path string, x, y reflect.Value)
	walk = func(path string, x, y reflect.Value) {
		if len(out) > 5 {
			return
		}
		if reflect.DeepEqual(x.Interface(), y.Interface()) {
			return
		}
		switch x.Kind() {
		case reflect.Struct:
			for i := range x.NumField() {
				walk(path+"."+x.Type().Field(i).Name, x.Field(i), y.Field(i))
			}
			return
		case reflect.Slice:
			if x.Len() == y.Len() {
				for i := range x.Len() {
					walk(fmt.Sprintf("%s[%d]", path, i), x.Index(i), y.Index(i))
				}
				return
			}
		case reflect.Pointer:
			if !x.IsNil() && !y.IsNil() {
				walk(path, x.Elem(), y.Elem())
				return
			}
		}
		out = append(out, fmt.Sprintf("%s: %#v != %#v", path, x.Interface(), y.Interface()))
	}
	walk("State", reflect.ValueOf(a), reflect.ValueOf(b))
	return strings.Join(out, "\n")
}
