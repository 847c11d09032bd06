package rules

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzCond feeds arbitrary acl lines and conditions to the parser: it
// either refuses them or returns a condition that evaluates without
// panicking.
func FuzzCond(f *testing.F) {
	for _, seed := range [][2]string{
		{"static path_beg /static", "if static"},
		{"h hdr_dom(host) -i example.com", "unless h || { src 10.0.0.0/8 } !METH_GET"},
		{"n req.hdr_cnt(x) gt 2 lt 9 1:3", "if n or ! n"},
		{"c req.cook(SRV) -m reg ^a.*$", "if { url_param(q) -m len 3: } c"},
		{"p dst_port -m str 80", "if ! ! p || TRUE FALSE"},
		{"x hdr(x,-2) -- -i", "if x { ssl_fc } { ssl_fc_sni -m dom shop }"},
	} {
		f.Add(seed[0], seed[1])
	}
	r := &Request{Method: "GET", Target: "http://a.example/p/q.js?x=1&q=abc", Host: "a.example:80",
		Header: http.Header{"X": {"1,2", "3"}, "Cookie": {"SRV=abc; b=2"}}, Version: "1.1",
		Src: netip.MustParseAddr("10.1.2.3"), DstPort: 80, TLS: true, SNI: "shop.example"}
	f.Fuzz(func(t *testing.T, acl, cond string) {
		s := NewSet(func(string) ([]byte, error) { return []byte(acl), nil })
		_ = s.Define(strings.Fields(acl))
		c, err := s.Cond(strings.Fields(cond))
		if err != nil {
			return
		}
		c.Match(r)
		c.Match(&Request{Header: http.Header{}})
	})
}
