package haproxycfg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tether/balancer"
)

// defaultServer is a server as Parse fills it when the file sets nothing.
func defaultServer(name, addr string, port int) balancer.Server {
	return balancer.Server{
		Name: name, Address: addr, Port: port, PortSet: port != 0,
		Weight: 1, Inter: 2 * time.Second, FastInter: 2 * time.Second, DownInter: 2 * time.Second,
		Rise: 2, Fall: 3, InitAddr: []string{"last", "libc"},
	}
}

func defaultBackend(name string, servers ...balancer.Server) balancer.Backend {
	return balancer.Backend{Name: name, Balance: balancer.RoundRobin, Retries: 3, RedispatchInterval: -1, Servers: servers}
}

func TestParseFillsDefaults(t *testing.T) {
	src := "global\n stats socket /run/t.sock\ndefaults\n mode http\nfrontend f\n bind :8080\n default_backend b\nbackend b\n server s1 10.0.0.1:80\n server s2 10.0.0.2\n"
	cfg, warns, err := parse("t.cfg", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	want := balancer.Config{
		Global: balancer.Global{
			StatsSockets: []balancer.StatsSocket{{Address: "/run/t.sock", Level: balancer.LevelOperator}},
			StatsTimeout: 10 * time.Second,
			StatsMaxConn: 10,
		},
		Frontends: []balancer.Frontend{{Name: "f", ID: 2, Binds: balancer.BindAddrs(":8080"), DefaultBackend: "b"}},
		Backends:  []balancer.Backend{defaultBackend("b", defaultServer("s1", "10.0.0.1", 80), defaultServer("s2", "10.0.0.2", 0))},
	}
	want.Backends[0].ID = 3
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Config =\n%+v\nwant\n%+v", cfg, want)
	}
}

// TestParseSemantics checks how directives combine: defaults, default-server,
// listen, cookie quirks, options and resolvers.
func TestParseSemantics(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, cfg balancer.Config)
	}{
		{
			name: "default-server copies to later servers only, its cookie included",
			src: `defaults
  mode http
backend b
  server s0 10.0.0.1:80
  default-server cookie X weight 5 check inter 3s
  server s1 10.0.0.1:81
  server s2 10.0.0.1:82 cookie own weight 7 fastinter 1s
  default-server no-check
  server s3 10.0.0.1:83`,
			check: func(t *testing.T, cfg balancer.Config) {
				s := cfg.Backends[0].Servers
				if s[0].Cookie != "" || s[0].Weight != 1 || s[0].Check {
					t.Errorf("s0 = %+v", s[0])
				}
				if s[1].Cookie != "X" || s[1].Weight != 5 || !s[1].Check || s[1].Inter != 3*time.Second || s[1].FastInter != 3*time.Second {
					t.Errorf("s1 = %+v", s[1])
				}
				if s[2].Cookie != "own" || s[2].Weight != 7 || s[2].FastInter != time.Second || s[2].DownInter != 3*time.Second {
					t.Errorf("s2 = %+v", s[2])
				}
				if s[3].Cookie != "X" || s[3].Check {
					t.Errorf("s3 = %+v", s[3])
				}
			},
		},
		{
			name: "a new defaults section resets the previous one",
			src: `defaults
  mode http
  balance leastconn
  retries 9
  cookie C insert
  option persist
backend one
defaults
  mode http
backend two`,
			check: func(t *testing.T, cfg balancer.Config) {
				one, two := cfg.Backends[0], cfg.Backends[1]
				if one.Balance != balancer.LeastConn || one.Retries != 9 || one.Cookie == nil || !one.Persist {
					t.Errorf("one = %+v", one)
				}
				want := defaultBackend("two")
				want.ID = 2
				if !reflect.DeepEqual(two, want) {
					t.Errorf("two = %+v", two)
				}
			},
		},
		{
			name: "cookie line resets options but appends attr",
			src: `defaults
  mode http
  cookie A insert indirect nocache domain .a.example maxidle 1h attr x=1
backend b
  cookie B prefix attr y=2 attr z=3
backend c`,
			check: func(t *testing.T, cfg balancer.Config) {
				want := &balancer.CookieConfig{Name: "B", Mode: balancer.CookiePrefix, Attrs: []string{"x=1", "y=2", "z=3"}}
				if got := cfg.Backends[0].Cookie; !reflect.DeepEqual(got, want) {
					t.Errorf("b cookie = %+v, want %+v", got, want)
				}
				want = &balancer.CookieConfig{Name: "A", Mode: balancer.CookieInsert, Indirect: true, NoCache: true,
					Domains: []string{".a.example"}, MaxIdle: time.Hour, Attrs: []string{"x=1"}}
				if got := cfg.Backends[1].Cookie; !reflect.DeepEqual(got, want) {
					t.Errorf("c cookie = %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "listen is a frontend and a backend",
			src: `defaults
  mode http
  timeout client 5s
  timeout server 6s
listen web
  bind 127.0.0.1:8000,127.0.0.1:8001,[::1]:8002
  bind *:8003
  bind ipv4@127.0.0.2:8004
  option forwardfor
  server s 10.0.0.1:80
listen other
  bind :9000
  default_backend web`,
			check: func(t *testing.T, cfg balancer.Config) {
				fe := cfg.Frontends[0]
				wantFE := balancer.Frontend{Name: "web", ID: 1, Binds: balancer.BindAddrs("127.0.0.1:8000", "127.0.0.1:8001", "[::1]:8002", ":8003", "127.0.0.2:8004"),
					DefaultBackend: "web", ForwardFor: true, TimeoutClient: 5 * time.Second}
				if !reflect.DeepEqual(fe, wantFE) {
					t.Errorf("frontend = %+v, want %+v", fe, wantFE)
				}
				be := cfg.Backends[0]
				if be.Name != "web" || be.ID != 1 || !be.ForwardFor || be.TimeoutServer != 6*time.Second || len(be.Servers) != 1 {
					t.Errorf("backend = %+v", be)
				}
				if cfg.Frontends[1].DefaultBackend != "web" || len(cfg.Backends) != 2 || cfg.Frontends[1].ID != 2 || cfg.Backends[1].ID != 2 {
					t.Errorf("listen with default_backend: %+v", cfg)
				}
			},
		},
		{
			name: "options",
			src: `defaults
  mode http
  option redispatch
  option httpchk
  http-check expect status 204
backend plain
backend counted
  option redispatch 3
  option httpchk /up
backend negated
  no option redispatch
  option httpchk HEAD /h HTTP/1.1
  http-check send meth GET ver HTTP/2
  http-check expect status 200`,
			check: func(t *testing.T, cfg balancer.Config) {
				b := cfg.Backends
				if !b[0].Redispatch || b[0].RedispatchInterval != -1 {
					t.Errorf("plain redispatch = %v %d", b[0].Redispatch, b[0].RedispatchInterval)
				}
				if !b[1].Redispatch || b[1].RedispatchInterval != 3 {
					t.Errorf("counted redispatch = %v %d", b[1].Redispatch, b[1].RedispatchInterval)
				}
				if b[2].Redispatch {
					t.Errorf("negated redispatch is on")
				}
				checks := []balancer.HTTPCheck{
					{Method: "OPTIONS", URI: "/", Version: "HTTP/1.0", ExpectStatus: 204},
					{Method: "OPTIONS", URI: "/up", Version: "HTTP/1.0", ExpectStatus: 204},
					{Method: "GET", URI: "/h", Version: "HTTP/2", ExpectStatus: 200},
				}
				for i, want := range checks {
					if b[i].HTTPCheck == nil || *b[i].HTTPCheck != want {
						t.Errorf("%s check = %+v, want %+v", b[i].Name, b[i].HTTPCheck, want)
					}
				}
			},
		},
		{
			name: "resolvers defaults and init-addr",
			src: `resolvers r
  nameserver a 10.0.0.53:53
  nameserver b tcp@10.0.0.54:5353
  hold valid 20s
defaults
  mode http
backend b
  server s1 app.example:80 resolvers r
  server s2 app.example:80 resolvers default init-addr none,10.0.0.9
  server s3 app.example:80 resolve-prefer ipv4 resolve-opts allow-dup-ip,prevent-dup-ip,allow-dup-ip`,
			check: func(t *testing.T, cfg balancer.Config) {
				r := cfg.Resolvers[0]
				wantHold := map[string]time.Duration{"nx": 30 * time.Second, "refused": 30 * time.Second,
					"timeout": 30 * time.Second, "other": 30 * time.Second, "valid": 20 * time.Second, "obsolete": 0}
				if r.AcceptedPayloadSize != 512 || r.ResolveRetries != 3 || r.TimeoutResolve != time.Second ||
					r.TimeoutRetry != time.Second || !reflect.DeepEqual(r.Hold, wantHold) ||
					!reflect.DeepEqual(r.Nameservers, []balancer.Nameserver{{Name: "a", Address: "10.0.0.53:53"}, {Name: "b", Address: "10.0.0.54:5353", TCP: true}}) {
					t.Errorf("resolvers = %+v", r)
				}
				if len(cfg.Resolvers) != 2 || cfg.Resolvers[1].Name != "default" || !cfg.Resolvers[1].ParseResolvConf {
					t.Errorf("no implicit default resolvers: %+v", cfg.Resolvers)
				}
				s := cfg.Backends[0].Servers
				if !reflect.DeepEqual(s[0].InitAddr, []string{"last", "libc", "none"}) {
					t.Errorf("s1 init-addr = %q", s[0].InitAddr)
				}
				if !reflect.DeepEqual(s[1].InitAddr, []string{"none", "10.0.0.9"}) {
					t.Errorf("s2 init-addr = %q", s[1].InitAddr)
				}
				if s[2].ResolvePrefer != "ipv4" || !s[2].AllowDupIP {
					t.Errorf("s3 = %+v", s[2])
				}
			},
		},
		{
			name: "limits and timeouts, inherited from defaults",
			src: `global
  maxconn 5000
  tune.bufsize 1000
defaults
  mode http
  maxconn 300
  timeout client 30s
  timeout http-request 5s
  timeout http-keep-alive 2s
  timeout client-fin 1s
  timeout tunnel 1h
  timeout server-fin 3s
frontend f
  bind :80
  maxconn 200
  timeout http-request 7s
  default_backend b
backend b
  timeout tunnel 2m
  timeout http-request 9s
listen l
  bind :81`,
			check: func(t *testing.T, cfg balancer.Config) {
				// 1000 rounds up to 1008; the rewrite reserve is capped at half.
				if g := cfg.Global; g.MaxConn != 5000 || g.BufSize != 1008 || g.MaxRewrite != 504 {
					t.Errorf("global = %+v", g)
				}
				f, l := cfg.Frontends[0], cfg.Frontends[1]
				if f.MaxConn != 200 || f.TimeoutClient != 30*time.Second || f.TimeoutHTTPRequest != 7*time.Second ||
					f.TimeoutHTTPKeepAlive != 2*time.Second || f.TimeoutClientFin != time.Second {
					t.Errorf("frontend f = %+v", f)
				}
				if l.MaxConn != 300 || l.TimeoutHTTPRequest != 5*time.Second {
					t.Errorf("listen l = %+v", l)
				}
				b, lb := cfg.Backends[0], cfg.Backends[1]
				if b.TimeoutTunnel != 2*time.Minute || b.TimeoutServerFin != 3*time.Second {
					t.Errorf("backend b = %+v", b)
				}
				if lb.TimeoutTunnel != time.Hour || lb.TimeoutServerFin != 3*time.Second {
					t.Errorf("listen l backend = %+v", lb)
				}
			},
		},
		{
			name: "setenv and friends change later expansions",
			src: `global
  setenv PORT 8001
  presetenv PORT 9999
  presetenv OTHER 8002
  setenv GONE x
  unsetenv GONE
defaults
  mode http
backend b
  server s1 "127.0.0.1:$PORT"
  server s2 "127.0.0.1:${OTHER}"
  server s3 "127.0.0.1:${GONE-8003}"`,
			check: func(t *testing.T, cfg balancer.Config) {
				s := cfg.Backends[0].Servers
				if s[0].Port != 8001 || s[1].Port != 8002 || s[2].Port != 8003 {
					t.Errorf("ports = %d %d %d, want 8001 8002 8003", s[0].Port, s[1].Port, s[2].Port)
				}
			},
		},
		{
			name: "log targets, log global and option httplog",
			src: `global
  log stdout format raw local0
  log 127.0.0.1 len 2048 local0
  log stderr format raw daemon notice err
defaults
  mode http
  log global
  option httplog
  option dontlognull
frontend inherits
  bind :80
  default_backend b
frontend own
  bind :81
  no option httplog
  log stdout format raw local1 info
  option httplog
  default_backend b
backend b
  log global
  server s 10.0.0.1:80`,
			check: func(t *testing.T, cfg balancer.Config) {
				global := []balancer.LogTarget{
					{Address: "stdout", Format: "raw", Facility: "local0"},
					{Address: "127.0.0.1:514", Len: 2048, Facility: "local0"},
					{Address: "stderr", Format: "raw", Facility: "daemon", Level: "notice", MinLevel: "err"},
				}
				if !reflect.DeepEqual(cfg.Global.Logs, global) {
					t.Errorf("global logs = %+v, want %+v", cfg.Global.Logs, global)
				}
				fe := cfg.Frontends[0]
				if !reflect.DeepEqual(fe.Logs, global) || !fe.HTTPLog || !fe.DontLogNull {
					t.Errorf("frontend inherits = logs %+v httplog %v dontlognull %v", fe.Logs, fe.HTTPLog, fe.DontLogNull)
				}
				own := append(global, balancer.LogTarget{Address: "stdout", Format: "raw", Facility: "local1", Level: "info"})
				if fe := cfg.Frontends[1]; !reflect.DeepEqual(fe.Logs, own) || !fe.HTTPLog {
					t.Errorf("frontend own = logs %+v httplog %v", fe.Logs, fe.HTTPLog)
				}
				if global[2].TakesInfo() || !own[3].TakesInfo() || !global[0].TakesInfo() {
					t.Errorf("TakesInfo: notice-only target takes info or an info target does not")
				}
			},
		},
		{
			name: "stats sockets",
			src: `global
  stats socket ipv4@127.0.0.1:9999 level admin mode 640 severity-output none
  stats socket 127.0.0.1:9998
  stats socket ipv6@::1:9997 severity-output string level user
  stats socket unix@relative.sock
  stats timeout 2m
  stats maxconn 3`,
			check: func(t *testing.T, cfg balancer.Config) {
				want := balancer.Global{StatsSockets: []balancer.StatsSocket{
					{Address: "ipv4@127.0.0.1:9999", Level: balancer.LevelAdmin, Mode: 0o640},
					{Address: "ipv4@127.0.0.1:9998", Level: balancer.LevelOperator},
					{Address: "ipv6@[::1]:9997", Level: balancer.LevelUser, SeverityOutput: "string"},
					{Address: "relative.sock", Level: balancer.LevelOperator},
				}, StatsTimeout: 2 * time.Minute, StatsMaxConn: 3}
				if !reflect.DeepEqual(cfg.Global, want) {
					t.Errorf("global = %+v, want %+v", cfg.Global, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := parse("t.cfg", []byte(tt.src), noEnv)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
			out, err := Format(cfg)
			if err != nil {
				t.Fatal(err)
			}
			again, _, err := parse("w.cfg", out, noEnv)
			if err != nil || !reflect.DeepEqual(cfg, again) {
				t.Errorf("round trip failed (err %v):\n%s", err, out)
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	src := `global
  daemon
  log /dev/log local0
defaults
  log stdout format short local0
frontend f
  bind :80 name web defer-accept
  default_backend b
backend b
  mode http
  http-reuse safe
  server s 10.0.0.1:80 check slowstart 5s no-send-proxy weight 3
frontend nobind
  mode http
peers p
  peer a 127.0.0.1:1000
`
	cfg, warns, err := parse("w.cfg", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"w.cfg:2: 'daemon' is not supported by Tether (process management",
		"w.cfg:3: 'log /dev/log' is not supported by Tether (log targets other than stdout, stderr and syslog over UDP",
		"w.cfg:6: frontend 'f' has no 'mode http'",
		"w.cfg:7: bind parameter 'name' is not supported",
		"w.cfg:7: bind parameter 'defer-accept' is not supported",
		"w.cfg:11: 'http-reuse safe' is not supported by Tether",
		"w.cfg:12: 'server b/s' : server keyword 'slowstart' is not supported by Tether",
		"w.cfg:13: frontend 'nobind' has no 'bind' directive",
		"w.cfg:15: 'peers' sections are not supported",
	} {
		if !containsWarning(warns, want) {
			t.Errorf("no warning %q in\n%v", want, warns)
		}
	}
	for _, w := range warns {
		if strings.Contains(w.Msg, "no-send-proxy") || strings.Contains(w.Msg, "'peer'") {
			t.Errorf("unexpected warning %v", w)
		}
	}
	if s := cfg.Backends[0].Servers[0]; s.Weight != 3 || !s.Check {
		t.Errorf("parameters after unsupported ones were lost: %+v", s)
	}
}

// TestParseRefusesFailOpen checks that directives whose absence would
// change who gets what, over which protocol, or what is refused stop the
// file with their line, and that the rest of the file is still checked.
func TestParseRefusesFailOpen(t *testing.T) {
	src := `global
  user haproxy
defaults
  mode http
frontend f
  bind :443 ssl crt /x.pem
  use-server b if TRUE
  http-request deny if { path_beg /admin }
  default_backend b
backend b
  balance uri
  server s 10.0.0.1:80 check send-proxy source 10.0.0.2 usesrc clientip weight 3
  server t 10.0.0.1:80 weight x
`
	_, _, err := parse("r.cfg", []byte(src), noEnv)
	if err == nil {
		t.Fatal("Parse accepted a fail-open configuration")
	}
	for _, want := range []string{
		"r.cfg:2: 'user haproxy' is not supported by Tether (privileges",
		"r.cfg:6: 'bind' : unable to stat SSL certificate from file '/x.pem'",
		"r.cfg:7: 'use-server b' is not supported by Tether",
		"r.cfg:11: 'balance uri' is not supported by Tether",
		"r.cfg:12: 'server b/s' : server keyword 'send-proxy' is not supported by Tether",
		"r.cfg:13: 'server b/t' : weight of server t is not within 0 and 256",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}

// TestParseZeroWarning checks that zero-warning turns any warning into a
// refusal, as HAProxy does.
func TestParseZeroWarning(t *testing.T) {
	src := "global\n  zero-warning\n  log /dev/log local0\ndefaults\n  mode http\nbackend b\n"
	_, _, err := parse("z.cfg", []byte(src), noEnv)
	var pe *Error
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(pe.Msg, "1 warnings were emitted") {
		t.Fatalf("err = %v, want z.cfg:2 refusing 1 warning", err)
	}
	if _, _, err := parse("z.cfg", []byte("global\n  zero-warning\ndefaults\n  mode http\nbackend b\n"), noEnv); err != nil {
		t.Errorf("zero-warning without warnings: %v", err)
	}
}

func TestParseReportsEveryError(t *testing.T) {
	src := "defaults\n mode http\nbackend b\n weight 3\n server a\n server b 10.0.0.1:80 weight x\n cookie C rewrite indirect prefix\nfrontend f\n bind :80\n default_backend nope\n"
	_, _, err := parse("e.cfg", []byte(src), noEnv)
	if err == nil {
		t.Fatal("no error")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T does not unwrap to a list", err)
	}
	var lines []int
	for _, e := range joined.Unwrap() {
		var pe *Error
		if !errors.As(e, &pe) || pe.File != "e.cfg" {
			t.Fatalf("not an *Error: %v", e)
		}
		lines = append(lines, pe.Line)
	}
	if want := []int{4, 5, 6, 7, 7, 10}; !reflect.DeepEqual(lines, want) {
		t.Errorf("error lines = %v, want %v\n%v", lines, want, err)
	}
}

func TestParseEnvironment(t *testing.T) {
	t.Setenv("TETHER_HAPROXYCFG_KEY", "from env")
	cfg, _, err := Parse("env.cfg", []byte("defaults\n mode http\nbackend b\n dynamic-cookie-key \"$TETHER_HAPROXYCFG_KEY\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Backends[0].DynamicCookieKey; got != "from env" {
		t.Errorf("key = %q", got)
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte("defaults\n mode http\nbackend b\n server s 10.0.0.1:80 weight 999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := ParseFile(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":4: ") {
		t.Errorf("ParseFile error = %v, want one starting with %s:4:", err, path)
	}
	if _, _, err := ParseFile(filepath.Join(dir, "missing.cfg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestFormatRejects(t *testing.T) {
	base := func() balancer.Config {
		return balancer.Config{Backends: []balancer.Backend{defaultBackend("b", defaultServer("s", "10.0.0.1", 80))}}
	}
	tests := []struct {
		name   string
		mutate func(*balancer.Config)
		want   string
	}{
		{"weight", func(c *balancer.Config) { c.Backends[0].Servers[0].Weight = 300 }, "weight 300"},
		{"no address", func(c *balancer.Config) { c.Backends[0].Servers[0].Address = "" }, "has no address"},
		{"bad name", func(c *balancer.Config) { c.Backends[0].Name = "a b" }, "not permitted"},
		{"attr", func(c *balancer.Config) {
			c.Backends[0].Cookie = &balancer.CookieConfig{Name: "C", Attrs: []string{"a;b"}}
		}, "cookie attr"},
		{"maxidle", func(c *balancer.Config) {
			c.Backends[0].Cookie = &balancer.CookieConfig{Name: "C", MaxIdle: 1500 * time.Millisecond}
		}, "cookie maxidle"},
		{"level", func(c *balancer.Config) {
			c.Global.StatsSockets = []balancer.StatsSocket{{Address: "/s", Level: 9}}
		}, "invalid level"},
		{"hold", func(c *balancer.Config) {
			c.Resolvers = []balancer.Resolvers{{Name: "r", Hold: map[string]time.Duration{"never": 1}}}
		}, "unknown hold event"},
		{"bind", func(c *balancer.Config) {
			c.Frontends = []balancer.Frontend{{Name: "f", Binds: balancer.BindAddrs("nowhere")}}
		}, "does not parse"},
	}
	for _, tt := range tests {
		cfg := base()
		tt.mutate(&cfg)
		_, err := Format(cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Format error = %v, want %q", tt.name, err, tt.want)
		}
		var buf bytes.Buffer
		if err := Write(&buf, cfg); err == nil || buf.Len() != 0 {
			t.Errorf("%s: Write error = %v, wrote %d bytes", tt.name, err, buf.Len())
		}
	}
	var buf bytes.Buffer
	if err := Write(&buf, base()); err != nil || !strings.Contains(buf.String(), "server s 10.0.0.1:80\n") {
		t.Errorf("Write = %v:\n%s", err, buf.String())
	}
}

// TestParseEnvKeywords checks presetenv against the process environment and
// resetenv, which keeps only the variables it names.
func TestParseEnvKeywords(t *testing.T) {
	env := func(name string) (string, bool) {
		switch name {
		case "KEEP":
			return "8001", true
		case "DROP":
			return "9999", true
		}
		return "", false
	}
	src := `global
  presetenv KEEP 7000
  resetenv KEEP
defaults
  mode http
backend b
  server s1 "127.0.0.1:$KEEP"
  server s2 "127.0.0.1:${DROP-8002}"`
	cfg, _, err := parse("e.cfg", []byte(src), env)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Backends[0].Servers; s[0].Port != 8001 || s[1].Port != 8002 {
		t.Errorf("ports = %d %d, want 8001 8002", s[0].Port, s[1].Port)
	}
}
