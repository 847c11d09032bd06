package haproxycfg

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"tether/balancer/e2etest"
)

// keywordCase is one keyword of the tables, written into a small file at a
// known line.
type keywordCase struct {
	scope, keyword string
	verdict        verdict
	src            string
	line           int
}

// keywordCases returns a case for every keyword of every table, each in the
// smallest file that reaches the parser's check for it.
func keywordCases() []keywordCase {
	const listen = "listen l\n    mode http\n    bind 127.0.0.1:8080\n"
	argsOf := func(n int) string {
		if n == 1 {
			return " 1"
		}
		return ""
	}
	var cases []keywordCase
	add := func(scope string, t keywordTable, src func(kw string, g keywordGroup) (string, int)) {
		for _, g := range t {
			for _, kw := range strings.Fields(g.words) {
				s, line := src(kw, g)
				cases = append(cases, keywordCase{scope: scope, keyword: kw, verdict: g.verdict, src: s, line: line})
			}
		}
	}
	// A log line needs an address and a facility; Tether writes to
	// stdout, stderr and UDP syslog servers, not to UNIX sockets.
	const logArgs = " /dev/log local0"
	add("global", globalKeywords, func(kw string, _ keywordGroup) (string, int) {
		if kw == "log" {
			return "global\n    log" + logArgs + "\n", 2
		}
		return "global\n    " + kw + " 1\n", 2
	})
	add("proxy", proxyKeywords, func(kw string, _ keywordGroup) (string, int) {
		if kw == "log" {
			return listen + "    log" + logArgs + "\n", 4
		}
		return listen + "    " + kw + " x\n", 4
	})
	add("option", proxyOptions, func(kw string, _ keywordGroup) (string, int) {
		return listen + "    option " + kw + "\n", 4
	})
	add("timeout", timeoutKeywords, func(kw string, _ keywordGroup) (string, int) {
		return listen + "    timeout " + kw + " 1s\n", 4
	})
	add("http-check", httpCheckKeywords, func(kw string, _ keywordGroup) (string, int) {
		return listen + "    option httpchk\n    http-check " + kw + " x\n", 5
	})
	add("section", otherSections, func(kw string, _ keywordGroup) (string, int) {
		return kw + " x\n", 1
	})
	add("bind", bindParams, func(kw string, g keywordGroup) (string, int) {
		return "listen l\n    mode http\n    bind 127.0.0.1:8080 " + kw + argsOf(g.args) + "\n", 3
	})
	add("stats socket", statsParams, func(kw string, g keywordGroup) (string, int) {
		return "global\n    stats socket /tmp/tether-test.sock " + kw + argsOf(g.args) + "\n", 2
	})
	add("server", serverParams, func(kw string, g keywordGroup) (string, int) {
		return listen + "    server s 127.0.0.1:80 " + kw + argsOf(g.args) + "\n", 4
	})
	return cases
}

// detailCases are the verdicts that depend on arguments (detailRows).
var detailCases = []struct {
	line    string
	verdict verdict
}{
	{"balance uri", refused},
	{"option httpchk\n    http-check comment x", warned},
	{"balance url_param id", refused},
	{"balance hdr(Host)", refused},
	{"balance rdp-cookie", refused},
	{"balance hash path", refused},
	{"balance random(3)", refused},
	{"balance random(2)", accepted},
	{"balance random", accepted},
	{"hash-type consistent", refused},
	{"hash-type map-based sdbm avalanche", refused},
	{"hash-type map-based", accepted},
	{"hash-type map-based djb2", accepted},
	{"http-reuse never", refused},
	{"http-reuse safe", warned},
	{"http-reuse always", warned},
	{"retry-on conn-failure", accepted},
	{"retry-on conn-failure empty-response", refused},
	{"retry-on all-retryable-errors", refused},
	{"retry-on none", refused},
	{"option forwardfor except 127.0.0.0/8", accepted},
	{"option forwardfor header X-Client-IP", accepted},
	{"option forwardfor if-none", accepted},
	{"option http-restrict-req-hdr-names preserve", accepted},
	{"option http-restrict-req-hdr-names delete", refused},
	{"no option http-server-close", accepted},
	{"no option httplog", accepted},
	{"option httplog", accepted},
	{"option dontlognull", accepted},
	{"option httplog clf", accepted},
	{"option httplog foo", warned},
	{"log stdout format raw local0", accepted},
	{"log stderr format raw local7 info debug", accepted},
	{"log global", accepted},
	{"log stdout local0", accepted},
	{"log stdout format short local0", accepted},
	{"log stderr format rfc5424 local0", accepted},
	{"log stdout len 512 format raw local0", accepted},
	{"log 127.0.0.1:514 local0", accepted},
	{"log udp@127.0.0.1 len 2048 format rfc3164 local0 info", accepted},
	{"log 127.0.0.1:514 sample 1:2 local0", warned},
	{"log syslog.example:514 local0", warned},
	{"log-format %ci:%cp\\ %ST", accepted},
	{"capture request header Host len 32", accepted},
	{"capture cookie SRV len 32", accepted},
	{"log-tag app", accepted},
	{"log-format %ID", refused},
	{"log-format %[src]", refused},
	{"log /dev/log local0", warned},
	{"option httpchk\n    http-check expect string OK", refused},
	{"option httpchk\n    http-check expect ! status 500", refused},
	{"option httpchk\n    http-check expect status 200-399", refused},
	{"option httpchk\n    http-check expect status 200 comment ok", refused},
	{"option httpchk\n    http-check send meth GET hdr Host example.com", refused},
	{"option httpchk\n    http-check send meth GET body x", refused},
	{"option httpchk\n    http-check send meth GET comment x", warned},
	{"server s 127.0.0.1:80 source 127.0.0.2 usesrc clientip", refused},
	{"server s app.example:80 resolvers default resolve-opts ignore-weight", refused},
}

// TestKeywordVerdicts parses every HAProxy 2.6 keyword Tether does not
// implement and checks that it is refused with its file and line, warned
// about with its line, or accepted silently, as classified.
func TestKeywordVerdicts(t *testing.T) {
	cases := keywordCases()
	const listen = "listen l\n    mode http\n    bind 127.0.0.1:8080\n"
	for _, d := range detailCases {
		line := 4 + strings.Count(d.line, "\n")
		cases = append(cases, keywordCase{scope: "detail", keyword: d.line, verdict: d.verdict, src: listen + "    " + d.line + "\n", line: line})
	}
	if len(cases) < 350 {
		t.Fatalf("only %d keywords classified", len(cases))
	}
	for _, c := range cases {
		t.Run(c.scope+"/"+c.keyword, func(t *testing.T) {
			_, warns, err := parse("k.cfg", []byte(c.src), noEnv)
			at := fmt.Sprintf("k.cfg:%d: ", c.line)
			switch c.verdict {
			case refused:
				var pe *Error
				if !errors.As(err, &pe) {
					t.Fatalf("not refused; warnings %v\n%s", warns, c.src)
				}
				if !strings.HasPrefix(err.Error(), at) || !strings.Contains(err.Error(), "not supported by Tether") {
					t.Errorf("error = %q, want %q… saying Tether does not support it", err, at)
				}
			case warned, accepted:
				if err != nil {
					t.Fatalf("refused: %v\n%s", err, c.src)
				}
				var found bool
				for _, w := range warns {
					if strings.HasPrefix(w.String(), at) && strings.Contains(w.Msg, "not supported by Tether") {
						found = true
					}
				}
				if found != (c.verdict == warned) {
					t.Errorf("verdict %v, but warnings are %v", c.verdict, warns)
				}
			default:
				t.Fatalf("keyword has no verdict")
			}
		})
	}
}

// TestKeywordTablesDisjoint checks that no keyword is classified twice in a
// table, and that none of the implemented keywords is classified.
func TestKeywordTablesDisjoint(t *testing.T) {
	implemented := map[string]string{
		"global": "maxconn tune.bufsize tune.maxrewrite setenv presetenv unsetenv resetenv zero-warning stats" +
			" ssl-default-bind-options ssl-default-bind-ciphers ssl-default-bind-ciphersuites crt-base ca-base ssl-server-verify",
		"bind":   strings.Join(slices.Collect(maps.Keys(bindTLSParams)), " "),
		"proxy":  "mode bind default_backend acl use_backend http-request http-response redirect timeout balance cookie dynamic-cookie-key retries option http-check server default-server server-template id maxconn hash-type http-reuse retry-on",
		"option": "persist redispatch forwardfor httpchk httplog dontlognull",
		"server": implementedServerKeywords0 + implementedServerKeywords1 + " source",
	}
	for scope, t2 := range map[string]keywordTable{
		"global": globalKeywords, "proxy": proxyKeywords, "option": proxyOptions, "bind": bindParams,
		"server": serverParams, "section": otherSections, "stats socket": statsParams,
	} {
		seen := map[string]bool{}
		for _, g := range t2 {
			if g.why == "" || g.verdict == 0 {
				t.Errorf("%s group %q has no verdict or reason", scope, g.words)
			}
			for _, kw := range strings.Fields(g.words) {
				if seen[kw] {
					t.Errorf("%s keyword %q classified twice", scope, kw)
				}
				seen[kw] = true
				if hasWord(implemented[scope], kw) {
					t.Errorf("%s keyword %q is implemented but classified", scope, kw)
				}
			}
		}
	}
}

// TestKeywordsKnownToHAProxy runs "haproxy -c" on the lines of every
// classified keyword: HAProxy must know each one (it may still reject the
// dummy argument), so the tables hold HAProxy 2.6's keywords and no others.
// Keywords are checked in files of up to 20 lines, one by one when HAProxy
// stops reading such a file early.
func TestKeywordsKnownToHAProxy(t *testing.T) {
	haproxy := e2etest.RequireProgram(t, "haproxy")
	path := filepath.Join(t.TempDir(), "k.cfg")
	// run checks cases sharing the lines before the keyword's; it reports
	// false when HAProxy did not read the whole file.
	run := func(t *testing.T, cases []keywordCase) bool {
		t.Helper()
		lines := strings.SplitAfter(cases[0].src, "\n")
		var src strings.Builder
		for _, l := range lines[:cases[0].line-1] {
			src.WriteString(l)
		}
		for _, c := range cases {
			src.WriteString(strings.SplitAfter(c.src, "\n")[c.line-1])
		}
		// A keyword HAProxy does not know, last, shows the whole file was read.
		src.WriteString(strings.Replace(lines[cases[0].line-1], cases[0].keyword, "tether-unknown", 1))
		if err := os.WriteFile(path, []byte(src.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(haproxy, "-c", "-f", path).CombinedOutput()
		if !bytes.Contains(out, []byte("'tether-unknown'")) && len(cases) > 1 {
			return false
		}
		for _, c := range cases {
			for _, unknown := range []string{"unknown keyword '" + c.keyword + "'", "unknown option '" + c.keyword + "'", "but got '" + c.keyword + "'"} {
				if bytes.Contains(out, []byte(unknown)) {
					t.Errorf("HAProxy does not know %s %q:\n%s", c.scope, c.keyword, out)
				}
			}
		}
		return true
	}
	var scopes []string
	byScope := map[string][]keywordCase{}
	for _, c := range keywordCases() {
		if byScope[c.scope] == nil {
			scopes = append(scopes, c.scope)
		}
		byScope[c.scope] = append(byScope[c.scope], c)
	}
	for _, scope := range scopes {
		t.Run(scope, func(t *testing.T) {
			cases := byScope[scope]
			for len(cases) > 0 {
				n := min(20, len(cases))
				if !run(t, cases[:n]) {
					for i := range n {
						run(t, cases[i:i+1])
					}
				}
				cases = cases[n:]
			}
		})
	}
}

var docsPath = filepath.Join("..", "..", "docs", "haproxy-keywords.md")

// TestKeywordDocs checks that docs/haproxy-keywords.md is the table of
// keywords this package classifies; -update rewrites it.
func TestKeywordDocs(t *testing.T) {
	got := keywordDoc()
	if *update {
		if err := os.WriteFile(docsPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatalf("read %s (run with -update to create it): %v", docsPath, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date; run go test -run TestKeywordDocs -update ./balancer/haproxycfg/", docsPath)
	}
}

// keywordDoc renders the keyword tables as Markdown.
func keywordDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`# HAProxy 2.6 keywords Tether does not implement

Tether reads HAProxy 2.6 configuration files. Every keyword HAProxy 2.6 knows
and Tether does not implement is listed here with what Tether does with it:

- **refused**: the file is refused with an error naming the file and line,
  as HAProxy refuses an unknown keyword. Without the directive, Tether would
  change who gets what, over which protocol, or what is refused; it never
  runs such a file fail-open.
- **warned**: the line is ignored with a warning naming it. The directive
  changes nothing but logging, tuning or process management.
- **accepted**: the line asks for what Tether does anyway; no warning.

Keywords that are in no table and that Tether does not implement are unknown
to HAProxy 2.6 too, and are errors. This page is generated from
balancer/haproxycfg/keywords.go by
` + "`go test -run TestKeywordDocs -update ./balancer/haproxycfg/`" + `.

Implemented, for reference: global ` + "`stats socket`" + ` (with ` + "`mode`, `level`, `severity-output`" + `),
` + "`stats timeout`, `stats maxconn`, `maxconn`, `tune.bufsize`, `tune.maxrewrite`, `setenv`, `presetenv`,\n`unsetenv`, `resetenv`, `zero-warning`, `log stdout|stderr|IP[:PORT] [len N] [format raw|short|local|rfc3164|rfc5424|priority|timed|iso] FACILITY [LEVEL [MINLEVEL]]`, `log-tag`, `log-send-hostname`" + `; ` + "`defaults`/`frontend`/`backend`/`listen`" + ` with
` + "`mode http`, `bind`, `default_backend`, `acl`, `use_backend`, `http-request`, `http-response`, `redirect`, `maxconn`, `balance` (roundrobin, static-rr, leastconn,\nfirst, source, random), `cookie`, `dynamic-cookie-key`, `retries`, `retry-on conn-failure`, `id`,\n`option persist`, `option redispatch`, `option forwardfor`, `option httpchk`, `log global`, `log stdout|stderr|IP[:PORT]\n…`, `option httplog`, `option dontlognull`, `log-format`, `log-tag`, `capture request|response header`,\n`capture cookie`, `http-check expect\nstatus`, `http-check send meth|uri|ver`" + `, the timeouts ` + "`client`, `server`, `connect`, `check`, `queue`,\n`http-request`, `http-keep-alive`, `tunnel`, `client-fin`, `server-fin`" + `, ` + "`server`, `default-server`,\n`server-template`" + ` with ` + strings.Join(quoted(strings.Fields(implementedServerKeywords0+implementedServerKeywords1)), ", ") + `;
and ` + "`resolvers`" + ` sections.

TLS binds, implemented: ` + "`bind … ssl`" + ` with ` + strings.Join(quoted(slices.Sorted(maps.Keys(bindTLSParams))), ", ") + `;
global ` + "`ssl-default-bind-options`, `ssl-default-bind-ciphers`, `ssl-default-bind-ciphersuites`, `crt-base`, `ca-base`, `ssl-server-verify`" + `.
TLS servers: ` + "`ssl`, `no-ssl`, `check-ssl`, `no-check-ssl`, `verify`, `ca-file`, `sni`, `crt`" + `; the global
` + "`ssl-default-server-*`" + ` lines are refused once a server uses TLS.
`)
	sections := []struct {
		title string
		table keywordTable
	}{
		{"Global section", globalKeywords},
		{"Proxy sections (defaults, frontend, backend, listen)", proxyKeywords},
		{"Proxy options (`option NAME`; `no option NAME` is always accepted)", proxyOptions},
		{"Timeouts (`timeout NAME`)", timeoutKeywords},
		{"Health checks (`http-check NAME`)", httpCheckKeywords},
		{"Bind parameters (`bind ADDR PARAM`)", bindParams},
		{"Stats socket parameters, where they differ from bind parameters", statsParams},
		{"Server parameters (`server`, `default-server`, `server-template`)", serverParams},
		{"Other sections (their content is not read)", otherSections},
	}
	for _, s := range sections {
		var rows []docRow
		for _, g := range s.table {
			for _, kw := range strings.Fields(g.words) {
				rows = append(rows, docRow{keyword: kw, verdict: g.verdict, why: g.why})
			}
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].keyword < rows[j].keyword })
		writeRows(&b, s.title, rows)
	}
	writeRows(&b, "Verdicts that depend on arguments", detailRows)
	return b.Bytes()
}

func writeRows(b *bytes.Buffer, title string, rows []docRow) {
	fmt.Fprintf(b, "\n## %s\n\n| keyword | verdict | why |\n|---|---|---|\n", title)
	for _, r := range rows {
		kw := r.keyword
		if r.scope != "" {
			kw = r.scope + " " + kw
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", kw, r.verdict, r.why)
	}
}

func quoted(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = "`" + w + "`"
	}
	return out
}
