package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"tether/balancer/e2etest"
	"tether/balancer/tlsbind/tlsbindtest"
	"tether/store"
	"tether/store/pgtest"
)

// tlsFixture is a fixture whose frontend terminates TLS with one
// certificate file issued by ca for site.test.
func tlsFixture(t *testing.T) (fixture, *tlsbindtest.CA, string) {
	t.Helper()
	f := newFixture(t, 1)
	ca := tlsbindtest.NewCA(t, "Test CA")
	crt := tlsbindtest.WriteFile(t, f.dir, "site.pem", ca.Issue(t, "site.test", "site.test").Bundle(ca))
	cfg, err := os.ReadFile(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("bind "+f.frontend), []byte("bind "+f.frontend+" ssl crt "+crt), 1)
	if err := os.WriteFile(f.cfg, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, ca, crt
}

// servedCN returns the subject CN of the certificate a handshake with
// the frontend gets.
func servedCN(t *testing.T, f fixture, ca *tlsbindtest.CA) string {
	t.Helper()
	c, err := tls.Dial("tcp", f.frontend, &tls.Config{RootCAs: ca.Pool(), ServerName: "site.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// dbText returns every text column of the journal, the secrets and the
// state documents, concatenated.
func dbText(t *testing.T, path string) (journal, secrets string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	read := func(q string) string {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		return b.String()
	}
	journal = read("SELECT command || ' | ' || detail || ' | ' || state_before || ' | ' || state_after || ' | ' || changes FROM journal") +
		read("SELECT document FROM state_documents")
	return journal, read("SELECT value FROM secrets")
}

func TestCommittedCertificateSurvivesRestart(t *testing.T) {
	tests := []struct {
		name string
		// between runs between the commit and the restart, with the
		// certificate file's path.
		between func(t *testing.T, f fixture, ca *tlsbindtest.CA, crt string)
		// before and want are the CNs served before and after the
		// restart ("" for before means renewed.test).
		before, want string
	}{
		{name: "restart", want: "renewed.test"},
		{name: "reload of an unchanged file then restart", want: "renewed.test",
			between: func(t *testing.T, f fixture, _ *tlsbindtest.CA, _ string) {
				exec1(t, f.sock, "reload")
			}},
		{name: "certificate file replaced", want: "deployed.test",
			between: func(t *testing.T, f fixture, ca *tlsbindtest.CA, crt string) {
				if err := os.WriteFile(crt, ca.Issue(t, "deployed.test", "site.test").Bundle(ca), 0o600); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "certificate file replaced then reload", before: "deployed.test", want: "deployed.test",
			between: func(t *testing.T, f fixture, ca *tlsbindtest.CA, crt string) {
				if err := os.WriteFile(crt, ca.Issue(t, "deployed.test", "site.test").Bundle(ca), 0o600); err != nil {
					t.Fatal(err)
				}
				if out := exec1(t, f.sock, "reload"); !strings.Contains(out, "- ssl cert "+crt+" committed at run time") {
					t.Errorf("reload reply: %q", out)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, ca, crt := tlsFixture(t)
			stop := f.serve(t)
			renewed := ca.Issue(t, "renewed.test", "site.test").Bundle(ca)
			exec1(t, f.sock, "set ssl cert "+crt+" <<\n"+string(renewed)+"\n")
			if out := exec1(t, f.sock, "commit ssl cert "+crt); out != "Committing "+crt+".\nSuccess!\n\n" {
				t.Fatalf("commit ssl cert: %q", out)
			}
			if cn := servedCN(t, f, ca); cn != "renewed.test" {
				t.Fatalf("after the commit the frontend serves %s", cn)
			}
			if tc.between != nil {
				tc.between(t, f, ca, crt)
			}
			before := tc.before
			if before == "" {
				before = "renewed.test"
			}
			if cn := servedCN(t, f, ca); cn != before {
				t.Errorf("before the restart the frontend serves %s, want %s", cn, before)
			}
			stop()

			journal, secrets := dbText(t, f.db)
			if strings.Contains(journal, "PRIVATE KEY") {
				t.Error("the journal holds the private key")
			}
			if !strings.Contains(secrets, string(renewed)) {
				t.Error("the secrets table does not hold the committed bundle")
			}
			st, err := store.OpenReadOnly(context.Background(), f.db, nil)
			if err != nil {
				t.Fatal(err)
			}
			entries, err := st.ListAudit(context.Background(), store.AuditFilter{})
			st.Close()
			if err != nil {
				t.Fatal(err)
			}
			var row string
			for _, e := range entries {
				if e.Command == "commit ssl cert "+crt {
					row = e.Detail
				}
			}
			if !strings.Contains(row, "CN=renewed.test") || !strings.Contains(row, "SHA1 ") {
				t.Errorf("audit detail of the commit = %q, want the subject and fingerprint", row)
			}

			stop = f.serve(t)
			defer stop()
			if cn := servedCN(t, f, ca); cn != tc.want {
				t.Errorf("after the restart the frontend serves %s, want %s", cn, tc.want)
			}
			if tc.want == "renewed.test" {
				if out := exec1(t, f.sock, "show ssl cert "+crt); !strings.Contains(out, "/CN=renewed.test") {
					t.Errorf("show ssl cert after the restart:\n%s", out)
				}
			}
		})
	}
}

func TestAbortedCertificateStoresNothing(t *testing.T) {
	f, ca, crt := tlsFixture(t)
	stop := f.serve(t)
	leaf := ca.Issue(t, "renewed.test", "site.test")
	renewed := leaf.Bundle(ca)
	exec1(t, f.sock, "set ssl cert "+crt+" <<\n"+string(renewed)+"\n")
	if out := exec1(t, f.sock, "abort ssl cert "+crt); !strings.Contains(out, "Transaction aborted") {
		t.Fatalf("abort ssl cert: %q", out)
	}
	// Refused: no transaction, a payload without a key, an unknown file.
	exec1(t, f.sock, "commit ssl cert "+crt)
	exec1(t, f.sock, "set ssl cert "+crt+" <<\n"+string(leaf.CertPEM)+"\n")
	exec1(t, f.sock, "set ssl cert /nowhere.pem <<\n"+string(renewed)+"\n")
	stop()
	journal, secrets := dbText(t, f.db)
	if strings.Contains(secrets, "CERTIFICATE") || strings.Contains(journal, "CommitSSLCert") || strings.Contains(journal, "SSLCerts") {
		t.Errorf("an aborted or refused transaction was stored:\n%s", journal)
	}
	stop = f.serve(t)
	defer stop()
	if cn := servedCN(t, f, ca); cn != "site.test" {
		t.Errorf("after the restart the frontend serves %s", cn)
	}
}

// TestExportKeepsTLSBinds exports a state with a TLS bind and a
// certificate committed at run time: the bind line names the file, the
// warning says the committed bundle is not in it, and HAProxy loads the
// export.
func TestExportKeepsTLSBinds(t *testing.T) {
	f, ca, crt := tlsFixture(t)
	cfg, err := os.ReadFile(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("ssl crt "+crt), []byte("ssl crt "+crt+" alpn h2,http/1.1 ssl-min-ver TLSv1.2 strict-sni"), 1)
	if err := os.WriteFile(f.cfg, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := f.serve(t)
	exec1(t, f.sock, "set ssl cert "+crt+" <<\n"+string(ca.Issue(t, "renewed.test", "site.test").Bundle(ca))+"\n")
	exec1(t, f.sock, "commit ssl cert "+crt)
	stop()

	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"export", "-db", f.db}, func(string) string { return "" }, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	if !strings.Contains(out, "ssl crt "+crt+" alpn h2,http/1.1 ssl-min-ver TLSv1.2 strict-sni") {
		t.Errorf("export lacks the TLS bind:\n%s", out)
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Error("export holds a private key")
	}
	if !strings.Contains(stderr.String(), "certificate "+crt+" was committed at run time (subject /CN=renewed.test") {
		t.Errorf("export did not warn about the committed certificate: %q", stderr.String())
	}
	file := filepath.Join(f.dir, "exported.cfg")
	if err := os.WriteFile(file, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	haproxy := e2etest.RequireProgram(t, "haproxy")
	if msg, err := exec.Command(haproxy, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c refuses the export: %v\n%s\n%s", err, msg, out)
	}
}

// TestFleetCertificate commits a certificate on one node of a fleet: the
// other node serves it too, without a reload.
func TestFleetCertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	cluster := pgtest.Start(t)
	url := cluster.NewDatabase(t)
	f, ca, crt := tlsFixture(t)
	a := startFleetNode(t, url, f, "a", true)
	b := startFleetNode(t, url, f, "b", false)
	cn := func(m fleetMember) string {
		c, err := tls.Dial("tcp", m.frontend, &tls.Config{RootCAs: ca.Pool(), ServerName: "site.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn(b); got != "site.test" {
		t.Fatalf("b serves %s before the commit", got)
	}
	exec1(t, a.sock, "set ssl cert "+crt+" <<\n"+string(ca.Issue(t, "renewed.test", "site.test").Bundle(ca))+"\n")
	if out := exec1(t, a.sock, "commit ssl cert "+crt); !strings.Contains(out, "Success!") {
		t.Fatalf("commit on a: %q", out)
	}
	if got := cn(a); got != "renewed.test" {
		t.Errorf("a serves %s after its commit", got)
	}
	waitFor(t, "b to serve the committed certificate", func() bool { return cn(b) == "renewed.test" })
	if out := exec1(t, b.sock, "show ssl cert "+crt); !strings.Contains(out, "/CN=renewed.test") {
		t.Errorf("show ssl cert on b:\n%s", out)
	}
}
