package rules

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func req(method, target, host string, hdr ...string) *Request {
	r := &Request{Method: method, Target: target, Host: host, Header: http.Header{}, Version: "1.1",
		Src: netip.MustParseAddr("192.0.2.10"), DstPort: 80}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

// TestConditions evaluates conditions over ACLs of every fetch and
// matching method, in the forms the HAProxy documentation gives them.
func TestConditions(t *testing.T) {
	acls := []string{
		"url_static path_beg /static /images /img /css",
		"url_static path_end .gif .png .jpg .css .js",
		"host_www hdr_beg(host) -i www",
		"host_static hdr_beg(host) -i img. video. download. ftp.",
		"api hdr(host) -i api.example.com",
		"is_json hdr_sub(content-type) json",
		"lang_fr hdr(accept-language) fr",
		"has_auth hdr_cnt(authorization) gt 0",
		"missing_cl req.hdr_cnt(content-length) eq 0",
		"admin_net src 10.0.0.0/8 192.0.2.0/255.255.255.0",
		"dom_example hdr_dom(host) example.com",
		"dir_v2 path_dir v2",
		"reg_id path_reg ^/users/[0-9]+$",
		"reg_i path_reg -i ^/ADMIN",
		"tok url_param(token) -m found",
		"tok_abc urlp(token) abc",
		"q_len query -m len gt 10",
		"sess req.cook(JSESSIONID) -m found",
		"sess_a cook_beg(JSESSIONID) a",
		"two_sess req.cook_cnt(JSESSIONID) ge 2",
		"port_range dst_port 8000:8999",
		"tls ssl_fc",
		"sni ssl_fc_sni -i shop.example.com",
		"base_shop base_beg shop.example.com/cart",
		"first_xff hdr(x-forwarded-for,1) 203.0.113.1",
		"last_xff hdr(x-forwarded-for,-1) 203.0.113.9",
		`ua_full req.fhdr(user-agent) Mozilla/5.0\ (X11,\ Linux)`,
		`ua_split hdr(user-agent) Mozilla/5.0\ (X11,\ Linux)`,
		"dash_pattern hdr(x-flag) -- -i",
	}
	tests := []struct {
		cond string
		r    *Request
		want bool
	}{
		{"if url_static", req("GET", "/static/app.js", "x"), true},
		{"if url_static", req("GET", "/a/logo.png?v=1", "x"), true},
		{"if url_static", req("GET", "/a/logo.png.bak", "x"), false},
		{"if host_static or host_www url_static", req("GET", "/css/site.css", "WWW.example.com"), true},
		{"if host_static or host_www url_static", req("GET", "/index.html", "www.example.com"), false},
		{"if host_static || host_www url_static", req("GET", "/", "img.example.com"), true},
		{"if api", req("GET", "/", "API.Example.COM"), true},
		{"if api", req("GET", "/", "api.example.com.evil"), false},
		{"if is_json", req("POST", "/", "x", "Content-Type", "application/json; charset=utf-8"), true},
		{"if lang_fr", req("GET", "/", "x", "Accept-Language", "en, fr"), true},
		{"if lang_fr", req("GET", "/", "x", "Accept-Language", "en-fr"), false},
		{"if has_auth", req("GET", "/", "x", "Authorization", "Bearer x"), true},
		{"if has_auth", req("GET", "/", "x"), false},
		{"if METH_POST missing_cl", req("POST", "/", "x"), true},
		{"if METH_POST missing_cl", req("POST", "/", "x", "Content-Length", "3"), false},
		{"if METH_POST { req.hdr_cnt(Content-length) eq 0 }", req("POST", "/", "x"), true},
		{"if HTTP_CONTENT", req("POST", "/", "x", "Content-Length", "3"), true},
		{"if HTTP_CONTENT", req("POST", "/", "x", "Content-Length", "0"), false},
		{"if METH_GET", req("HEAD", "/", "x"), true},
		{"if METH_GET", req("get", "/", "x"), false},
		{"unless METH_GET or METH_POST or METH_OPTIONS", req("DELETE", "/", "x"), true},
		{"unless METH_GET or METH_POST or METH_OPTIONS", req("OPTIONS", "*", "x"), false},
		{"if HTTP_URL_STAR !METH_OPTIONS", req("GET", "*", "x"), true},
		{"if HTTP_URL_STAR !METH_OPTIONS", req("OPTIONS", "*", "x"), false},
		{"if ! METH_OPTIONS", req("GET", "/", "x"), true},
		{"if HTTP_URL_ABS", req("GET", "http://a.example/x", "a.example"), true},
		{"if HTTP_URL_SLASH", req("GET", "http://a.example/x", "a.example"), false},
		{"if HTTP_1.1", req("GET", "/", "x"), true},
		{"if admin_net", req("GET", "/", "x"), true},
		{"if LOCALHOST", req("GET", "/", "x"), false},
		{"if dom_example", req("GET", "/", "www.example.com:8080"), true},
		{"if dom_example", req("GET", "/", "notexample.com"), false},
		{"if dir_v2", req("GET", "/api/v2/users", "x"), true},
		{"if dir_v2", req("GET", "/api/v22/users", "x"), false},
		{"if reg_id", req("GET", "/users/42", "x"), true},
		{"if reg_id", req("GET", "/users/42/edit", "x"), false},
		{"if reg_i", req("GET", "/admin/panel", "x"), true},
		{"if tok", req("GET", "/x?a=1&token=", "x"), true},
		{"if tok", req("GET", "/x?a=1&tokens=2", "x"), false},
		{"if tok_abc", req("GET", "/x?token=abc&token=zzz", "x"), true},
		{"if q_len", req("GET", "/x?abcdefghijk", "x"), true},
		{"if q_len", req("GET", "/x?abc", "x"), false},
		{"if sess", req("GET", "/", "x", "Cookie", "a=1; JSESSIONID="), true},
		{"if sess", req("GET", "/", "x", "Cookie", "XJSESSIONID=1"), false},
		{"if sess_a", req("GET", "/", "x", "Cookie", "JSESSIONID=zz", "Cookie", "JSESSIONID=abc"), true},
		{"if two_sess", req("GET", "/", "x", "Cookie", "JSESSIONID=zz; JSESSIONID=abc"), true},
		{"if port_range", &Request{DstPort: 8443}, true},
		{"if port_range", &Request{DstPort: 443}, false},
		{"if tls", &Request{TLS: true}, true},
		{"if !tls", &Request{}, true},
		{"if !{ ssl_fc }", &Request{}, true},
		{"if ! { ssl_fc } || !!tls", &Request{TLS: true}, true},
		{"if sni", &Request{TLS: true, SNI: "Shop.Example.com"}, true},
		{"if base_shop", req("GET", "/cart/1?x", "shop.example.com"), true},
		{"if first_xff", req("GET", "/", "x", "X-Forwarded-For", "203.0.113.1, 203.0.113.9"), true},
		{"if last_xff", req("GET", "/", "x", "X-Forwarded-For", "203.0.113.1", "X-Forwarded-For", "203.0.113.9"), true},
		{"if first_xff", req("GET", "/", "x", "X-Forwarded-For", "203.0.113.9, 203.0.113.1"), false},
		{"if ua_full", req("GET", "/", "x", "User-Agent", "Mozilla/5.0 (X11, Linux)"), true},
		{"if ua_split", req("GET", "/", "x", "User-Agent", "Mozilla/5.0 (X11, Linux)"), false},
		{"if dash_pattern", req("GET", "/", "x", "X-Flag", "-i"), true},
		{"if TRUE", &Request{}, true},
		{"if FALSE", &Request{}, false},
		{"if FALSE || TRUE", &Request{}, true},
	}
	s := NewSet(nil)
	for _, line := range acls {
		if err := s.Define(splitWords(line)); err != nil {
			t.Fatalf("acl %s: %v", line, err)
		}
	}
	for _, tt := range tests {
		c, err := s.Cond(splitWords(tt.cond))
		if err != nil {
			t.Errorf("%s: %v", tt.cond, err)
			continue
		}
		if tt.r.Header == nil {
			tt.r.Header = http.Header{}
		}
		if got := c.Match(tt.r); got != tt.want {
			t.Errorf("%s on %s %s (host %q, headers %v) = %v, want %v", tt.cond, tt.r.Method, tt.r.Target, tt.r.Host, tt.r.Header, got, tt.want)
		}
	}
}

// splitWords splits at spaces, keeping "(X11" style words whole enough
// for these tests; a word may hold a space escaped as "\ ".
func splitWords(s string) []string {
	var out []string
	for _, w := range strings.Fields(strings.ReplaceAll(s, `\ `, "\x00")) {
		out = append(out, strings.ReplaceAll(w, "\x00", " "))
	}
	return out
}

// TestLaterACLLinesCount: an ACL line after a rule that names it still
// counts for the rule, as in HAProxy, where the rule points at the ACL.
func TestLaterACLLinesCount(t *testing.T) {
	s := NewSet(nil)
	if err := s.Define(splitWords("static path_beg /static")); err != nil {
		t.Fatal(err)
	}
	c, err := s.Cond(splitWords("if static"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Define(splitWords("static path_end .css")); err != nil {
		t.Fatal(err)
	}
	if !c.Match(req("GET", "/a.css", "x")) {
		t.Error("the second acl line does not count for the condition")
	}
}

func TestPatternFiles(t *testing.T) {
	files := map[string]string{
		"blocked.lst": "# blocked networks\n10.1.0.0/16\n\n  203.0.113.7\r\n",
		"bad.lst":     "10.0.0.0/8\nnot-an-ip\n",
		// HAProxy keeps trailing blanks, which no address has.
		"blank.lst": "10.0.0.1  \n",
	}
	s := NewSet(func(name string) ([]byte, error) {
		if f, ok := files[name]; ok {
			return []byte(f), nil
		}
		return nil, errors.New("no such file")
	})
	if err := s.Define(splitWords("blocked src -f blocked.lst 192.0.2.99")); err != nil {
		t.Fatal(err)
	}
	c, err := s.Cond([]string{"if", "blocked"})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{"10.1.2.3": true, "203.0.113.7": true, "192.0.2.99": true, "10.2.0.1": false, "::ffff:10.1.0.1": true} {
		if got := c.Match(&Request{Src: netip.MustParseAddr(ip)}); got != want {
			t.Errorf("src %s: %v, want %v", ip, got, want)
		}
	}
	if err := s.Define(splitWords("bad src -f bad.lst")); err == nil || !strings.Contains(err.Error(), "bad.lst:2") {
		t.Errorf("bad pattern file: %v, want the file and line", err)
	}
	if err := s.Define(splitWords("blank src -f blank.lst")); err == nil || !strings.Contains(err.Error(), "blank.lst:1: '10.0.0.1  '") {
		t.Errorf("address with trailing blanks: %v, want it refused", err)
	}
	if err := s.Define(splitWords("none src -f missing.lst")); err == nil {
		t.Error("a missing pattern file was accepted")
	}
}

// TestRefusals: what Tether cannot run faithfully is refused with a
// message, never run as something else.
func TestRefusals(t *testing.T) {
	s := NewSet(nil)
	for _, line := range []string{
		"x hdr(host),lower -i www",      // converter
		"x nbsrv(app) lt 2",             // unknown fetch
		"x path_beg",                    // no pattern
		"x path_reg (?<=a)b",            // look-behind: not RE2
		"x dst_port abc",                // not an integer
		"x src 10.0.0.300",              // not an address
		"x hdr_beg",                     // missing argument
		"x path(1) /",                   // argument to a fetch without one
		"x hdr(host) -m nope x",         // unknown method
		"x hdr(host) -M map",            // unsupported flag
		"b@d path /",                    // bad name
		"TRUE path /",                   // predefined name
		"x req.cook(a,b) v",             // two arguments
		"x path_beg(/x /",               // missing ')'
		"x hdr(host) -f x.lst",          // no file reader
		"x url_param(a) -m int foo bar", // bad integers
	} {
		if err := s.Define(splitWords(line)); err == nil {
			t.Errorf("acl %s: accepted", line)
		}
	}
	if err := s.Define(splitWords("ok path /")); err != nil {
		t.Fatal(err)
	}
	for _, cond := range []string{
		"", "when ok", "if", "if nope", "if ok ||", "if || ok", "if ok !", "if { path /", "if { }", "if ok }",
	} {
		if _, err := s.Cond(splitWords(cond)); err == nil {
			t.Errorf("condition %q: accepted", cond)
		}
	}
}

// TestMatchDoesNotAllocate: evaluating a condition of header, path,
// method, cookie and address ACLs allocates nothing.
func TestMatchDoesNotAllocate(t *testing.T) {
	s := NewSet(nil)
	for _, line := range []string{
		"host_www hdr_beg(host) -i www.", "static path_beg /static /img", "get method GET",
		"sess req.cook(SRV) -m found", "lan src 10.0.0.0/8", "js path_end -i .js", "api hdr_dom(host) -i api",
	} {
		if err := s.Define(splitWords(line)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.Cond(splitWords("if host_www static get || sess !lan || api js"))
	if err != nil {
		t.Fatal(err)
	}
	r := req("GET", "/app/main.JS?v=3", "API.example.com", "Cookie", "a=1; b=2", "Accept", "*/*")
	if !c.Match(r) {
		t.Fatal("condition does not match")
	}
	if n := testing.AllocsPerRun(100, func() { c.Match(r) }); n != 0 {
		t.Errorf("Match allocates %v times per call", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	s := NewSet(nil)
	for _, line := range []string{"host_www hdr_beg(host) -i www.", "static path_beg /static /img", "get method GET"} {
		if err := s.Define(splitWords(line)); err != nil {
			b.Fatal(err)
		}
	}
	c, err := s.Cond(splitWords("if host_www static get"))
	if err != nil {
		b.Fatal(err)
	}
	r := req("GET", "/static/app.js", "www.example.com")
	b.ReportAllocs()
	for b.Loop() {
		c.Match(r)
	}
}
