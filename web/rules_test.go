package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// rulesConfig is testConfig with content switching and request rules.
const rulesConfig = `
frontend fe
    bind 127.0.0.1:8080
    acl office src 10.1.0.0/16
    acl api path_beg /api
    http-request deny if { path /deny }
    use_backend other if api || office
    default_backend servers

backend servers
    balance roundrobin
    server s1 127.0.0.1:%s
    server s2 127.0.0.1:%s

backend other
    server s3 127.0.0.1:%s
`

// TestOverviewShowsRules lists each frontend's acl lines and rules, in the
// order the rules run, with how many requests each acted on; viewers see
// them without addresses.
func TestOverviewShowsRules(t *testing.T) {
	e := newEnvConfig(t, rulesConfig, Options{})
	for _, path := range []string{"/", "/api/a", "/api/b", "/deny"} {
		res, err := http.Get(e.frontend.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	rows := func(doc *html.Node) []string {
		var out []string
		for _, tr := range find(doc, func(n *html.Node) bool {
			return n.Data == "tr" && n.Parent != nil && n.Parent.Data == "tbody" && n.Parent.Parent != nil && hasClass(n.Parent.Parent, "rules")
		}) {
			var cells []string
			for _, td := range find(tr, func(n *html.Node) bool { return n.Data == "td" }) {
				if c := strings.TrimSpace(text(td)); c != "" {
					cells = append(cells, c)
				}
			}
			out = append(out, strings.Join(cells, " "))
		}
		return out
	}
	_, doc, _ := e.get(e.login("alice"), "/")
	want := []string{
		"acl office src 10.1.0.0/16",
		"acl api path_beg /api",
		"http-request deny if { path /deny } 1",
		"use_backend other if api || office 2",
	}
	if got := rows(doc); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules as admin:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, doc, _ = e.get(e.login("victor"), "/")
	if got := strings.Join(rows(doc), "\n"); strings.Contains(got, "10.1.0.0") || !strings.Contains(got, "use_backend other") {
		t.Errorf("rules as viewer:\n%s", got)
	}
	// The counts reach open pages live.
	m := e.srv.buildModel(e.bal.Snapshot(), viewer{perms: permsFor(user{level: roleAdmin}), now: time.Now()}, nil, false)
	if got := m["r:fe:1"]["hits"]; got != "2" {
		t.Errorf("live cell of the use_backend rule = %q, want 2", got)
	}
}
