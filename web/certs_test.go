package web

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"tether/balancer/tlsbind"
	"tether/balancer/tlsbind/tlsbindtest"
)

func TestCertRowExpiry(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	c, err := tlsbind.ParsePEM("site.pem", ca.Issue(t, "site.test", "site.test").Bundle(ca))
	if err != nil {
		t.Fatal(err)
	}
	notAfter := c.TLS.Leaf.NotAfter
	tests := []struct {
		now        time.Time
		want, left string
	}{
		{notAfter.Add(-30 * 24 * time.Hour), "ok", "in 30 days"},
		{notAfter.Add(-13 * 24 * time.Hour), "warn", "⚠ in 13 days"},
		{notAfter.Add(-23 * time.Hour), "warn", "⚠ in 23 hours"},
		{notAfter.Add(time.Minute), "expired", "✖ expired under an hour ago"},
		{notAfter.Add(49 * time.Hour), "expired", "✖ expired 2 days ago"},
	}
	for _, tc := range tests {
		row := certRow("site.pem", c, tc.now)
		if row.Expiry != tc.want || row.Left != tc.left {
			t.Errorf("at %s: %s %q, want %s %q", tc.now, row.Expiry, row.Left, tc.want, tc.left)
		}
		if row.Subject != "/CN=site.test" || row.Issuer != "/CN=Test CA" || row.SANs != "site.test" || len(row.SHA1) != 40 {
			t.Errorf("row %+v", row)
		}
		if strings.Contains(row.Subject+row.SANs+row.Issuer, "PRIVATE") {
			t.Error("a row shows the key")
		}
	}
}

func TestSSLCertFormRefusals(t *testing.T) {
	te := newTLSEnv(t)
	bundle := string(te.ca.Issue(t, "renewed.test", "site.test").Bundle(te.ca))
	tests := []struct {
		user, path string
		status     int
	}{
		{"victor", te.crt, 403},
		{"olga", te.crt, 403},
		{"alice", "/etc/passwd", 400},
		{"alice", te.crt + "\ncommit ssl cert " + te.crt, 400},
	}
	for _, tc := range tests {
		resp, _ := te.post(te.login(tc.user), "/ssl-cert", url.Values{"path": {tc.path}, "pem": {bundle}})
		if resp.StatusCode != tc.status {
			t.Errorf("%s posting for %q: status %d, want %d", tc.user, tc.path, resp.StatusCode, tc.status)
		}
	}
	if _, open := te.certs.Pending(te.crt); open {
		t.Error("a refused post opened a transaction")
	}
	if cn := te.servedCN(t); cn != "site.test" {
		t.Errorf("after refused posts the frontend serves %s", cn)
	}
}
