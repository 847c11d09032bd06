package balancer

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestAssignProxyIDs(t *testing.T) {
	const api = RuntimeAPIProxy
	tests := []struct {
		name string
		ids  []int
		want []int
	}{
		{"none", nil, []int{}},
		{"automatic from 1", []int{0, 0, 0}, []int{1, 2, 3}},
		{"runtime API proxy first", []int{api, 0, 0, 0, 0}, []int{0, 2, 3, 4, 5}},
		{"runtime API proxy in the middle", []int{0, 0, api, 0}, []int{1, 2, 0, 4}},
		// Checked with HAProxy 2.6.12: b0 id 4, fe, b, li id 3, b9, b1 id 1.
		{"explicit IDs are skipped and move the counter", []int{api, 4, 0, 0, 3, 0, 1}, []int{0, 4, 5, 6, 3, 8, 1}},
		{"explicit ID taken by nobody else", []int{0, 10, 0}, []int{1, 10, 3}},
		{"automatic IDs skip later explicit ones", []int{0, 0, 2}, []int{1, 3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AssignProxyIDs(tt.ids); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AssignProxyIDs(%v) = %v, want %v", tt.ids, got, tt.want)
			}
		})
	}
}

func TestProxyOrder(t *testing.T) {
	ref := func(s string) []ProxyRef {
		var out []ProxyRef
		for _, w := range strings.Fields(s) {
			name, id, _ := strings.Cut(w, ":")
			var n int
			fmt.Sscan(id, &n)
			out = append(out, ProxyRef{Name: name, ID: n})
		}
		return out
	}
	show := func(fes, bes []ProxyRef, ps []Proxy) string {
		var out []string
		for _, p := range ps {
			switch {
			case p.Frontend >= 0 && p.Backend >= 0:
				out = append(out, "L"+fes[p.Frontend].Name)
			case p.Frontend >= 0:
				out = append(out, "F"+fes[p.Frontend].Name)
			default:
				out = append(out, "B"+bes[p.Backend].Name)
			}
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		name     string
		fes, bes string
		want     string
	}{
		{"merged by ID", "fe:3 li:5", "b0:2 b:4 li:5", "Bb0 Ffe Bb Lli"},
		// HAProxy's declaration order for the explicit-ID example.
		{"out-of-order IDs keep each list's order", "fe:5 li:3", "b0:4 b:6 li:3 b9:8 b1:1", "Bb0 Ffe Bb Lli Bb9 Bb1"},
		{"same name, different IDs: two proxies", "x:3", "x:2", "Bx Fx"},
		{"same name, no IDs: one proxy", "x:0 y:0", "x:0", "Lx Fy"},
		{"zero IDs: frontends first", "f:0", "b:0", "Ff Bb"},
		{"a listen waits for the frontends before it", "f:2 li:1", "li:1", "Ff Lli"},
		{"a listen waits for the backends before it", "li:1", "b:2 li:1", "Bb Lli"},
		{"crossed listen sections", "x:2 y:1", "y:1 x:2", "Ly Lx"},
		{"no frontends", "", "a:2 b:3", "Ba Bb"},
		{"no backends", "a:2 b:3", "", "Fa Fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fes, bes := ref(tt.fes), ref(tt.bes)
			ps := ProxyOrder(fes, bes)
			if got := show(fes, bes, ps); got != tt.want {
				t.Errorf("ProxyOrder = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNumberProxies(t *testing.T) {
	sock := Global{StatsSockets: []StatsSocket{{Address: "/run/t.sock"}}}
	tests := []struct {
		name    string
		cfg     Config
		want    string // "F:name=id" and "B:name=id" in slice order
		wantErr string
	}{
		{
			name: "automatic, from 2 with a stats socket",
			cfg:  Config{Global: sock, Frontends: []Frontend{{Name: "fe"}}, Backends: []Backend{{Name: "be"}, {Name: "other"}}},
			want: "F:fe=2 B:be=3 B:other=4",
		},
		{
			name: "automatic, from 1 without",
			cfg:  Config{Frontends: []Frontend{{Name: "fe"}}, Backends: []Backend{{Name: "be"}}},
			want: "F:fe=1 B:be=2",
		},
		{
			name: "kept and skipped",
			cfg:  Config{Global: sock, Frontends: []Frontend{{Name: "fe", ID: 3}}, Backends: []Backend{{Name: "be"}, {Name: "x", ID: 2}}},
			want: "F:fe=3 B:be=4 B:x=2",
		},
		{
			name: "a frontend and a backend of the same name without IDs share one",
			cfg:  Config{Global: sock, Frontends: []Frontend{{Name: "li"}}, Backends: []Backend{{Name: "li"}}},
			want: "F:li=2 B:li=2",
		},
		{
			name: "listen halves with the same ID",
			cfg:  Config{Frontends: []Frontend{{Name: "li", ID: 7}}, Backends: []Backend{{Name: "li", ID: 7}}},
			want: "F:li=7 B:li=7",
		},
		{
			name:    "two proxies with one ID",
			cfg:     Config{Frontends: []Frontend{{Name: "fe", ID: 7}}, Backends: []Backend{{Name: "be", ID: 7}}},
			wantErr: `frontend "fe" has the same proxy ID 7 as backend "be"`,
		},
		{
			name:    "two backends with one ID",
			cfg:     Config{Backends: []Backend{{Name: "a", ID: 4}, {Name: "b", ID: 4}}},
			wantErr: `backend "b" has the same proxy ID 4 as backend "a"`,
		},
		{
			name:    "negative",
			cfg:     Config{Backends: []Backend{{Name: "a", ID: -1}}},
			wantErr: `backend "a": proxy ID -1 out of range`,
		},
		{
			name:    "too large",
			cfg:     Config{Frontends: []Frontend{{Name: "f", ID: MaxProxyID + 1}}},
			wantErr: `frontend "f": proxy ID 2147483648 out of range`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprint(tt.cfg)
			got, err := NumberProxies(tt.cfg)
			if fmt.Sprint(tt.cfg) != before {
				t.Errorf("NumberProxies modified its argument")
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := idList(got); s != tt.want {
				t.Errorf("IDs = %q, want %q", s, tt.want)
			}
		})
	}
}

func idList(cfg Config) string {
	var out []string
	for _, f := range cfg.Frontends {
		out = append(out, fmt.Sprintf("F:%s=%d", f.Name, f.ID))
	}
	for _, b := range cfg.Backends {
		out = append(out, fmt.Sprintf("B:%s=%d", b.Name, b.ID))
	}
	return strings.Join(out, " ")
}

// TestBalancerProxyIDs checks that the balancer keeps configured IDs,
// numbers the others, reports them in Snapshot and State, finds backends
// by "#ID", and refuses a duplicate.
func TestBalancerProxyIDs(t *testing.T) {
	cfg := Config{
		Global:    Global{StatsSockets: []StatsSocket{{Address: "/run/t.sock"}}},
		Frontends: []Frontend{{Name: "fe", DefaultBackend: "app"}, {Name: "li", ID: 9, DefaultBackend: "li"}},
		Backends:  []Backend{{Name: "app"}, {Name: "li", ID: 9}, {Name: "fixed", ID: 3}},
	}
	b, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Frontends[0].ID != 0 || cfg.Backends[0].ID != 0 {
		t.Error("New modified the Config it was given")
	}
	snap := b.Snapshot()
	var got []string
	for _, f := range snap.Frontends {
		got = append(got, fmt.Sprintf("F:%s=%d", f.Config.Name, f.ID))
	}
	for _, be := range snap.Backends {
		got = append(got, fmt.Sprintf("B:%s=%d", be.Config.Name, be.ID))
	}
	if want := "F:fe=2 F:li=9 B:app=4 B:li=9 B:fixed=3"; strings.Join(got, " ") != want {
		t.Errorf("Snapshot IDs = %q, want %q", strings.Join(got, " "), want)
	}
	if s := idList(b.State().Config); s != "F:fe=2 F:li=9 B:app=4 B:li=9 B:fixed=3" {
		t.Errorf("State IDs = %q", s)
	}
	if be := b.tab.Load().lookupBackend("#3"); be == nil || be.cfg.Name != "fixed" {
		t.Errorf("lookupBackend(#3) = %+v", be)
	}

	cfg.Backends[2].ID = 9
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), `backend "fixed" has the same proxy ID 9 as listen "li"`) {
		t.Errorf("New with a duplicate ID: err = %v", err)
	}
}

// TestHealthThroughMaintenance follows HAProxy 2.6's check health and
// operational state of an unchecked and a checked server through
// maintenance and forced health, as "show servers state" shows them.
func TestHealthThroughMaintenance(t *testing.T) {
	cfg := Config{
		Frontends: []Frontend{{Name: "fe", DefaultBackend: "be"}},
		Backends: []Backend{{Name: "be", Servers: []Server{
			{Name: "plain", Address: "127.0.0.1", Port: 1, PortSet: true, Weight: 1, Rise: 4, Fall: 5},
			{Name: "checked", Address: "127.0.0.1", Port: 2, PortSet: true, Weight: 1, Check: true, Disabled: true},
		}}},
	}
	b, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(s string) ServerRef { return ServerRef{Backend: "be", Server: s} }
	state := func(name string) string {
		sv := b.Snapshot().Backend("be").Server(name)
		return fmt.Sprintf("op=%d health=%d", sv.Op, sv.Check.Health)
	}
	steps := []struct {
		change Change
		server string
		want   string
	}{
		{nil, "plain", "op=2 health=4"},
		{nil, "checked", "op=0 health=0"},
		{SetAdminState{ServerRef: ref("plain"), State: Maint}, "plain", "op=0 health=0"},
		{SetAdminState{ServerRef: ref("plain"), State: Ready}, "plain", "op=2 health=0"},
		{SetAdminState{ServerRef: ref("plain"), State: Drain}, "plain", "op=2 health=0"},
		{SetHealth{ServerRef: ref("plain"), Health: HealthUp}, "plain", "op=2 health=8"},
		{SetHealth{ServerRef: ref("plain"), Health: HealthDown}, "plain", "op=0 health=0"},
		{SetHealth{ServerRef: ref("plain"), Health: HealthStopping}, "plain", "op=3 health=8"},
		{SetAdminState{ServerRef: ref("checked"), State: Ready}, "checked", "op=2 health=2"},
	}
	for i, st := range steps {
		if st.change != nil {
			if err := b.Apply(st.change, Origin{Channel: "test"}); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		if got := state(st.server); got != st.want {
			t.Errorf("step %d (%T): %s %s, want %s", i, st.change, st.server, got, st.want)
		}
	}
}
