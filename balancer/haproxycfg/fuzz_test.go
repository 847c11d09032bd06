package haproxycfg

import (
	"reflect"
	"testing"

	"tether/balancer"
)

// FuzzParse checks that no input makes Parse panic, and that whatever
// parses is written by Format and parses back to the same Config. Seeds are
// every testdata configuration, the lines below and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, tf := range loadTestFiles(f) {
		f.Add(tf.src)
	}
	for _, s := range []string{
		"",
		"backend b\n server s \"127.0.0.1:80\" cookie 'a b' weight 0\n",
		"defaults\n mode http\n cookie C insert attr x\nbackend b\n cookie D attr y\n",
		"backend b\n server-template w 0-3 \"_x._tcp.example\" resolvers default\n",
		"global\n stats socket ipv6@::1:9 level admin\n stats timeout 1us\n",
		"frontend f\n bind :1,[::]:2\n default_backend b\nbackend b\n",
		"backend b\n option httpchk \"\\x01\" \"/\\t\"\n",
		"backend b\n dynamic-cookie-key \"${A[*]}\"\n",
		"listen l 127.0.0.1:80 from d\n",
		"backend a\n id 3\nfrontend a\n bind :1\nglobal\n stats maxconn 4\nlisten b\n id 1\n",
		"listen x\n id 07x\nbackend y\n id 4294967298\n",
		"global\n maxconn 10\n tune.bufsize 2147483647\n tune.maxrewrite 9999999\n",
		"global\n setenv A 1\n resetenv\n presetenv B \"$A\"\ndefaults\n maxconn 3\n timeout tunnel 1s\nlisten l\n timeout http-request 2s\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, _, err := parse("fuzz.cfg", src, noEnv)
		if err != nil {
			return
		}
		out, err := Format(cfg)
		if err != nil {
			t.Fatalf("Format of a parsed Config failed: %v\ninput:\n%q", err, src)
		}
		again, _, err := parse("written.cfg", out, noEnv)
		if err != nil {
			t.Fatalf("written configuration does not parse: %v\ninput:\n%q\nwritten:\n%s", err, src, out)
		}
		if !reflect.DeepEqual(withoutPositions(cfg), withoutPositions(again)) {
			t.Fatalf("round trip changed the Config\ninput:\n%q\nwritten:\n%s\nfirst:  %+v\nsecond: %+v", src, out, cfg, again)
		}
	})
}

// withoutPositions returns cfg with the configuration lines of its ACLs
// and rules cleared: a written file puts them on other lines.
func withoutPositions(cfg balancer.Config) balancer.Config { return cfg.WithoutPositions() }
