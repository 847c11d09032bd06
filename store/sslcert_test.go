package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// TestCommittedCertificateSurvivesRestart commits certificates through a
// store and reloads them, from the journal and from a state document: the
// bundle comes back whole, and only the secrets table holds it.
func TestCommittedCertificateSurvivesRestart(t *testing.T) {
	for _, fromDocument := range []bool{false, true} {
		name := map[bool]string{false: "journal", true: "document"}[fromDocument]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "tether.db")
			s := storetest.OpenPath(t, path)
			b, err := balancer.New(liveConfig(), balancer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ReplaceState(ctx, b.State(), store.AuditEntry{Channel: "import", Command: "seed"}); err != nil {
				t.Fatal(err)
			}
			b.SetCommitter(s.Committer())
			first := balancer.SSLCert{Path: "/etc/site.pem", PEM: "first bundle PRIVATE KEY", FileDigest: "d1", Subject: "/CN=first", SHA1: "AA"}
			second := first
			second.PEM, second.Subject, second.SHA1 = "second bundle PRIVATE KEY", "/CN=second", "BB"
			other := balancer.SSLCert{Path: "/etc/other.pem", PEM: "other bundle PRIVATE KEY", Subject: "/CN=other", SHA1: "CC"}
			for _, c := range []balancer.SSLCert{first, other, second} {
				if err := b.Apply(balancer.CommitSSLCert{Cert: c}, balancer.Origin{Channel: "socket", Command: "commit ssl cert " + c.Path}); err != nil {
					t.Fatal(err)
				}
			}
			if fromDocument {
				if err := s.ReplaceState(ctx, b.State(), store.AuditEntry{Channel: "import", Command: "checkpoint"}); err != nil {
					t.Fatal(err)
				}
			}
			entries, err := s.ListAudit(ctx, store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if text := e.Command + e.Detail + e.Before + e.After; strings.Contains(text, "bundle") {
					t.Errorf("audit row shows a bundle: %+v", e)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = storetest.OpenPath(t, path)
			st, found, err := s.LoadState(ctx)
			if err != nil || !found {
				t.Fatalf("load state: found %v, %v", found, err)
			}
			want := []balancer.SSLCert{other, second}
			if got := st.Config.SSLCerts; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Errorf("loaded certificates %+v, want %+v", got, want)
			}
		})
	}
}
