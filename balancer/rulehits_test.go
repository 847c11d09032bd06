package balancer

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRuleHits counts what each rule of a frontend acted on, in the order
// the rules run, and keeps the counts of unchanged rules across a reload.
func TestRuleHits(t *testing.T) {
	o := startOrigins(t, 2)
	server := func(name string, ori *origin) Server {
		return Server{Name: name, Address: ori.addr.Addr().String(), Port: int(ori.addr.Port()), PortSet: true, Weight: 1}
	}
	cfg := Config{
		Frontends: []Frontend{{
			Name: "fe", DefaultBackend: "app",
			ACLs:          []ACL{{Name: "api", Words: []string{"path_beg", "/api"}}},
			RequestRules:  []HTTPRule{{Words: []string{"deny"}, Cond: []string{"if", "{", "path", "/deny", "}"}}},
			UseBackends:   []BackendRule{{Backend: "api", Cond: []string{"if", "api"}}},
			ResponseRules: []HTTPRule{{Words: []string{"set-header", "X-A", "1"}}},
		}},
		Backends: []Backend{
			{Name: "app", Servers: []Server{server("s1", o[0])}},
			{Name: "api", Servers: []Server{server("s2", o[1])}},
		},
	}
	b, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/api/x", "/api/y", "/deny"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "127.0.0.1:1234"
		h.ServeHTTP(w, r)
	}
	want := []RuleStatus{
		{Line: "http-request deny if { path /deny }", Hits: 1},
		{Line: "use_backend api if api", Hits: 2},
		{Line: "http-response set-header X-A 1", Hits: 3},
	}
	check := func(when string, want []RuleStatus) {
		t.Helper()
		got := b.Snapshot().Frontends[0].Rules
		if len(got) != len(want) {
			t.Fatalf("%s: rules %+v, want %+v", when, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: rule %d = %+v, want %+v", when, i, got[i], want[i])
			}
		}
	}
	check("after four requests", want)

	// A reload that changes the deny rule starts it afresh and keeps the
	// others' counts.
	st := b.State()
	st.Config.Frontends[0].RequestRules = []HTTPRule{{Words: []string{"deny", "deny_status", "429"}, Cond: []string{"if", "{", "path", "/deny", "}"}}}
	if err := b.Replace(st, Origin{Channel: "import"}, "reload"); err != nil {
		t.Fatal(err)
	}
	want[0] = RuleStatus{Line: "http-request deny deny_status 429 if { path /deny }"}
	check("after a reload", want)
}
