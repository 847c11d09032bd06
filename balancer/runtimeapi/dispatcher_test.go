package runtimeapi

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/haproxycfg"
)

// TestExecuteOriginAndAudit checks that Execute attributes changes to the
// caller's origin with the command as issued (key masked), and that
// refused changes reach the Audit hook.
func TestExecuteOriginAndAudit(t *testing.T) {
	cfg, _, err := haproxycfg.Parse("test.cfg", []byte(testCfg))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var commits []balancer.Commit
	b, err := balancer.New(cfg, balancer.Options{Committer: func(c balancer.Commit) error {
		mu.Lock()
		defer mu.Unlock()
		commits = append(commits, c)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	type audit struct {
		origin      balancer.Origin
		cmd, result string
	}
	var audits []audit
	d := NewDispatcher(b, DispatcherOptions{Audit: func(o balancer.Origin, cmd, result string) {
		audits = append(audits, audit{o, cmd, result})
	}})
	origin := balancer.Origin{Channel: "console", Actor: "alice"}
	got := d.Execute(context.Background(), "set dynamic-cookie-key backend be my\\ secret;set weight be/s1 7;set weight be/s1 999", balancer.LevelAdmin, origin)
	if want := "\n\nAbsolute weight can only be between 0 and 256 inclusive.\n\n"; got != want {
		t.Fatalf("reply %q, want %q", got, want)
	}
	if len(commits) != 2 {
		t.Fatalf("%d commits, want 2", len(commits))
	}
	if c := commits[0]; c.Origin.Channel != "console" || c.Origin.Actor != "alice" ||
		c.Origin.Command != "set dynamic-cookie-key backend be ********" {
		t.Errorf("key change origin = %+v", c.Origin)
	}
	if c := commits[1]; c.Origin.Command != "set weight be/s1 7" {
		t.Errorf("weight change origin = %+v", c.Origin)
	}
	if len(audits) != 1 || audits[0].cmd != "set weight be/s1 999" || audits[0].origin.Actor != "alice" ||
		!strings.Contains(audits[0].result, "between 0 and 256") {
		t.Errorf("audits = %+v", audits)
	}
	// A key no configuration line can hold is refused, not half-applied.
	if got := d.Execute(context.Background(), "set dynamic-cookie-key backend be a\x00b", balancer.LevelAdmin, origin); got != "The key must not contain NUL, CR or LF bytes.\n\n" {
		t.Errorf("NUL key: %q", got)
	}
	if len(commits) != 2 {
		t.Errorf("a NUL key was committed")
	}
	if strings.Contains(d.Execute(context.Background(), "show stat", balancer.LevelUser, origin), "my secret") {
		t.Error("key visible in show stat")
	}
	// A user-level caller cannot change anything.
	if got := d.Execute(context.Background(), "set weight be/s1 1", balancer.LevelUser, origin); got != "Permission denied\n\n" {
		t.Errorf("user-level change: %q", got)
	}
	if len(commits) != 2 {
		t.Errorf("refused change committed")
	}
}

func TestMaskCommand(t *testing.T) {
	d := NewDispatcher(nil, DispatcherOptions{})
	for _, tt := range []struct{ in, want string }{
		{"set dynamic-cookie-key backend be k", "set dynamic-cookie-key backend be ********"},
		{"set dynamic-cookie-key backend be", "set dynamic-cookie-key backend be"},
		{`add server be/x\ y 1.2.3.4`, `add server be/x\ y 1.2.3.4`},
	} {
		args := parseWords(tt.in)
		if got := maskCommand(args, d.find(args)); got != tt.want {
			t.Errorf("maskCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestShowStickyAndResolvers(t *testing.T) {
	b, _ := newTestBalancer(t, testCfg)
	var asked string
	d := NewDispatcher(b, DispatcherOptions{ShowResolvers: func(w io.Writer, id string) error {
		asked = id
		_, err := io.WriteString(w, "Resolvers section dns\n")
		return err
	}})
	got := adminExec(d, "show sticky")
	// "stats timeout" makes HAProxy's Runtime API proxy, which takes ID 1.
	want := stickyHeader + "2 be 1 s1 2a094aea8f55acb2 1 0 0 0 0 0 0 0 0 0\n2 be 2 s2 c2 0 0 0 0 0 0 0 0 0 0\n\n"
	if got != want {
		t.Errorf("show sticky:\n%q\nwant\n%q", got, want)
	}
	user := d.Execute(context.Background(), "show sticky be", balancer.LevelUser, balancer.Origin{})
	if strings.Contains(user, "c2") || !strings.HasPrefix(user, stickyHeader) {
		t.Errorf("user-level show sticky shows cookies: %q", user)
	}
	if got := adminExec(d, "show sticky nob"); got != "Can't find backend.\n\n" {
		t.Errorf("unknown backend: %q", got)
	}
	if got := adminExec(d, "show resolvers dns"); got != "Resolvers section dns\n\n" || asked != "dns" {
		t.Errorf("show resolvers via hook: %q (asked %q)", got, asked)
	}
	plain := NewDispatcher(b, DispatcherOptions{})
	if got := adminExec(plain, "show resolvers;show resolvers x"); got != "\nCan't find that resolvers section\n\n" {
		t.Errorf("show resolvers without hook: %q", got)
	}
}

func BenchmarkExecuteShowStat(b *testing.B) {
	bal, err := balancer.New(mustParse(b, testCfg), balancer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	d := NewDispatcher(bal, DispatcherOptions{})
	b.ReportAllocs()
	for b.Loop() {
		d.Execute(context.Background(), "show stat", balancer.LevelAdmin, balancer.Origin{})
	}
}

func BenchmarkExecuteSetWeight(b *testing.B) {
	bal, err := balancer.New(mustParse(b, testCfg), balancer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	d := NewDispatcher(bal, DispatcherOptions{})
	b.ReportAllocs()
	for b.Loop() {
		d.Execute(context.Background(), "set weight be/s1 7", balancer.LevelAdmin, balancer.Origin{})
	}
}

func mustParse(tb testing.TB, text string) balancer.Config {
	tb.Helper()
	cfg, _, err := haproxycfg.Parse("test.cfg", []byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// TestSetAndShowCookie drives the cookie-line extension: show at any
// level, set at admin level with the parser's messages, and the change
// reaching the balancer.
func TestSetAndShowCookie(t *testing.T) {
	b, _ := newTestBalancer(t, testCfg+"\nbackend nocookie\n    server n1 127.0.0.1:18083\n")
	var audits []string
	d := NewDispatcher(b, DispatcherOptions{Audit: func(_ balancer.Origin, cmd, result string) {
		audits = append(audits, cmd+" => "+result)
	}})
	exec := func(level balancer.Level, line string) string {
		return d.Execute(context.Background(), line, level, balancer.Origin{Channel: "test"})
	}
	tests := []struct {
		name  string
		level balancer.Level
		line  string
		want  string
	}{
		{"show at user level", balancer.LevelUser, "show cookie backend be", "cookie SRV insert indirect nocache dynamic\n\n"},
		{"show without cookie line", balancer.LevelUser, "show cookie backend nocookie", "\n"},
		{"show unknown backend", balancer.LevelUser, "show cookie backend nob", "No such backend.\n\n"},
		{"show without backend", balancer.LevelUser, "show cookie backend", "A backend name is expected.\n\n"},
		{"set needs admin", balancer.LevelOperator, "set cookie backend be S insert", "Permission denied\n\n"},
		{"set without backend", balancer.LevelAdmin, "set cookie backend", "A backend name is expected.\n\n"},
		{"set unknown backend", balancer.LevelAdmin, "set cookie backend nob S insert", "No such backend.\n\n"},
		{"set without name", balancer.LevelAdmin, "set cookie backend be", "'cookie' expects <cookie_name> as argument.\n\n"},
		{"set rewrite indirect", balancer.LevelAdmin, "set cookie backend be S rewrite indirect", "cookie 'rewrite' and 'indirect' modes are incompatible.\n\n"},
		{"set two broken rules", balancer.LevelAdmin, "set cookie backend be S rewrite insert indirect",
			"cookie 'rewrite' and 'indirect' modes are incompatible.\ncookie 'rewrite', 'insert' and 'prefix' modes are incompatible.\n\n"},
		{"set bad maxidle", balancer.LevelAdmin, "set cookie backend be S insert maxidle 5x", "unexpected character 'x' in argument to <maxidle>.\n\n"},
		{"set unknown option", balancer.LevelAdmin, "set cookie backend be S insert sticky",
			"'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options.\n\n"},
		{"unchanged after refusals", balancer.LevelUser, "show cookie backend be", "cookie SRV insert indirect nocache dynamic\n\n"},
		{"set", balancer.LevelAdmin, `set cookie backend be APP insert indirect maxidle 1800 maxlife 8h domain .a.example attr SameSite=Lax attr x\ y`, "\n"},
		{"show after set", balancer.LevelUser, "show cookie backend be", `cookie APP insert indirect domain .a.example maxidle 30m maxlife 8h attr SameSite=Lax attr x\ y` + "\n\n"},
		{"set on a backend without cookie", balancer.LevelAdmin, "set cookie backend nocookie J", "\n"},
		{"show passive", balancer.LevelUser, "show cookie backend nocookie", "cookie J\n\n"},
		{"set a word ending in <<", balancer.LevelAdmin, `set cookie backend nocookie J attr a\<\<`, "\n"},
		{"show escapes it back", balancer.LevelUser, "show cookie backend nocookie", `cookie J attr a\<\<` + "\n\n"},
	}
	for _, tt := range tests {
		if got := exec(tt.level, tt.line); got != tt.want {
			t.Errorf("%s: %q replied %q, want %q", tt.name, tt.line, got, tt.want)
		}
	}
	be := b.Snapshot().Backend("be")
	want := &balancer.CookieConfig{Name: "APP", Mode: balancer.CookieInsert, Indirect: true, MaxIdle: 30 * time.Minute, MaxLife: 8 * time.Hour,
		Domains: []string{".a.example"}, Attrs: []string{"SameSite=Lax", "x y"}}
	if !reflect.DeepEqual(be.Config.Cookie, want) {
		t.Errorf("balancer cookie = %+v, want %+v", be.Config.Cookie, want)
	}
	// Without "dynamic" the computed cookie of s1 is gone; s2 keeps its own.
	if s1, s2 := be.Server("s1"), be.Server("s2"); s1.Cookie != "" || s2.Cookie != "c2" {
		t.Errorf("after set cookie: s1 cookie %q, s2 cookie %q; want none and c2", s1.Cookie, s2.Cookie)
	}
	if len(audits) != 8 || !strings.HasPrefix(audits[4], "set cookie backend be S rewrite indirect => cookie 'rewrite' and 'indirect'") {
		t.Errorf("audited refusals = %q", audits)
	}
	help := exec(balancer.LevelAdmin, "help")
	for _, usage := range []string{"set cookie backend <bk> <cookie line>", "show cookie backend <bk>"} {
		if !strings.Contains(help, "  "+usage+" ") {
			t.Errorf("help lacks %q", usage)
		}
	}
}

// TestAddServerWithCookie checks the documented difference from HAProxy
// 2.6: "add server ... cookie V" is accepted and the server gets V.
func TestAddServerWithCookie(t *testing.T) {
	b, _ := newTestBalancer(t, "defaults\n    mode http\nbackend be\n    cookie SRV insert\n    server s1 127.0.0.1:18081 cookie one\n")
	d := NewDispatcher(b, DispatcherOptions{})
	if got := adminExec(d, "add server be/ck 127.0.0.1:18082 cookie v"); got != "New server registered.\n\n" {
		t.Fatalf("add server replied %q", got)
	}
	if got := b.Snapshot().Backend("be").Server("ck").Cookie; got != "v" {
		t.Fatalf("added server's cookie = %q, want %q", got, "v")
	}
}

// TestAddServerPoolSettings checks pool-max-conn and pool-purge-delay on
// "add server", with HAProxy 2.6.12's replies to bad values and to the
// pool keywords it refuses for dynamic servers.
func TestAddServerPoolSettings(t *testing.T) {
	b, _ := newTestBalancer(t, "defaults\n    mode http\nbackend be\n    balance roundrobin\n    server s1 127.0.0.1:18081\n")
	d := NewDispatcher(b, DispatcherOptions{})
	if got := adminExec(d, "add server be/p1 127.0.0.1:18082 pool-max-conn 0 pool-purge-delay 1s"); got != "New server registered.\n\n" {
		t.Fatalf("add server replied %q", got)
	}
	want := balancer.IdlePool{MaxIdle: 0, MaxIdleSet: true, PurgeDelay: time.Second, PurgeDelaySet: true}
	if got := b.Snapshot().Backend("be").Server("p1").Config.IdlePool; got != want {
		t.Fatalf("added server's pool settings = %+v, want %+v", got, want)
	}
	for cmd, reply := range map[string]string{
		"add server be/p2 127.0.0.1:18082 pool-max-conn -2":   "'pool-max-conn' must be >= -1.\n\n",
		"add server be/p2 127.0.0.1:18082 pool-purge-delay x": "unexpected character 'x' in argument to <pool-purge-delay>.\n\n",
		"add server be/p2 127.0.0.1:18082 max-reuse 1":        "'max-reuse' option is not accepted for dynamic server\n\n",
		"add server be/p2 127.0.0.1:18082 tcp-ut 1s":          "'tcp-ut' option is not accepted for dynamic server\n\n",
	} {
		if got := adminExec(d, cmd); got != reply {
			t.Errorf("%s: replied %q, want %q", cmd, got, reply)
		}
	}
	if b.Snapshot().Backend("be").Server("p2") != nil {
		t.Error("a refused add server added the server")
	}
}

// TestDelServerPreconditions checks del server's refusals in HAProxy 2.6's
// order and words (observed with haproxy 2.6.12): a server resolved through
// a resolvers section, server-template slots included, is never removable;
// others must be in maintenance first.
func TestDelServerPreconditions(t *testing.T) {
	const referenced = "This server cannot be removed at runtime due to other configuration elements pointing to it.\n"
	b, _ := newTestBalancer(t, `
resolvers dns
    nameserver ns1 127.0.0.1:1053

backend be
    balance roundrobin
    server s1 127.0.0.1:18081
    server hn app.example:80 resolvers dns init-addr none
    server-template web 1-2 _http._tcp.app.example resolvers dns init-addr none
    server-template plain 1-2 127.0.0.1:18082
`)
	defer b.Close()
	d := NewDispatcher(b, DispatcherOptions{})
	tests := []struct {
		cmd, want string
	}{
		{"del server be/web1", referenced},
		{"set server be/web1 state maint", "\n"},
		{"del server be/web1", referenced},
		{"set server be/hn state maint;del server be/hn", "\n" + referenced},
		{"del server be/s1", "Only servers in maintenance mode can be deleted.\n"},
		{"set server be/s1 state maint;del server be/s1", "\nServer deleted.\n"},
		{"set server be/plain2 state maint;del server be/plain2", "\nServer deleted.\n"},
	}
	for _, tt := range tests {
		if got := adminExec(d, tt.cmd); got != tt.want {
			t.Errorf("%s: reply %q, want %q", tt.cmd, got, tt.want)
		}
	}
	be := b.Snapshot().Backend("be")
	for _, name := range []string{"web1", "web2", "hn"} {
		sv := be.Server(name)
		if sv == nil {
			t.Fatalf("%s was deleted", name)
		}
		if !errors.Is(sv.DeleteBlocker(), balancer.ErrServerReferenced) {
			t.Errorf("%s: DeleteBlocker %v, want ErrServerReferenced", name, sv.DeleteBlocker())
		}
	}
	if be.Server("s1") != nil || be.Server("plain2") != nil {
		t.Errorf("s1 or plain2 still there after Server deleted.")
	}
	if err := b.Apply(balancer.DelServer{ServerRef: balancer.ServerRef{Backend: "be", Server: "web1"}}, balancer.Origin{}); !errors.Is(err, balancer.ErrServerReferenced) {
		t.Errorf("balancer deleted a template slot: %v", err)
	}
}
