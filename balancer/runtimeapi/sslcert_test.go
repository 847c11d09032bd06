package runtimeapi

import (
	"context"
	"strings"
	"testing"

	"tether/balancer"
	"tether/balancer/tlsbind"
	"tether/balancer/tlsbind/tlsbindtest"
)

// TestSSLCertCommands runs a certificate transaction and checks HAProxy
// 2.6's replies (TestSSLCertCommandsMatchHAProxy in balancer/compat
// compares them with HAProxy itself) and that new handshakes get the
// committed certificate.
func TestSSLCertCommands(t *testing.T) {
	ca := tlsbindtest.NewCA(t, "Test CA")
	dir := t.TempDir()
	a := tlsbindtest.WriteFile(t, dir, "a.pem", ca.Issue(t, "a.test", "a.test").Bundle(ca))
	b := tlsbindtest.WriteFile(t, dir, "b.pem", ca.Issue(t, "b.test", "b.test").Bundle(ca))
	store := tlsbind.NewStore()
	bind, err := store.Build(balancer.BindTLS{Certs: []balancer.CertSource{{Path: a}, {Path: b}}}, balancer.SSLDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher(nil, DispatcherOptions{Certificates: func() *tlsbind.Store { return store }})
	renewed := string(ca.Issue(t, "renewed.test", "renewed.test", "a.test").Bundle(ca))
	for _, tc := range []struct{ in, want string }{
		{"show ssl cert\n", "# filename\n" + a + "\n" + b + "\n\n"},
		{"commit ssl cert " + a + "\n", "No ongoing transaction! !\nCan't commit " + a + "!\n\n"},
		{"abort ssl cert " + a + "\n", "No ongoing transaction!\n\n"},
		{"set ssl cert " + dir + "/c.pem <<\n" + renewed + "\n", "Can't replace a certificate which is not referenced by the configuration!\nCan't update " + dir + "/c.pem!\n\n"},
		{"set ssl cert " + a + " <<\n" + renewed + "\n", "Transaction created for certificate " + a + "!\n\n"},
		{"set ssl cert " + a + " <<\n" + renewed + "\n", "Transaction updated for certificate " + a + "!\n\n"},
		{"show ssl cert\n", "# transaction\n*" + a + "\n# filename\n" + a + "\n" + b + "\n\n"},
		{"commit ssl cert " + b + "\n", "The ongoing transaction is about '" + a + "' but you are trying to set '" + b + "'\nCan't commit " + b + "!\n\n"},
		{"abort ssl cert " + b + "\n", "The ongoing transaction is about '" + a + "' but you are trying to abort a transaction for '" + b + "'\n\n"},
		{"commit ssl cert " + a + "\n", "Committing " + a + ".\nSuccess!\n\n"},
		{"set ssl cert " + b + " <<\ngarbage\n\n", "unable to load certificate from file '" + b + "'.\nCan't load the payload\nCan't update " + b + "!\n\n"},
		{"show ssl cert " + dir + "/c.pem\n", "Can't display the certificate: Not found or the certificate is a bundle!\n\n"},
	} {
		if got := d.Execute(context.Background(), tc.in, balancer.LevelAdmin, balancer.Origin{}); got != tc.want {
			t.Errorf("%.40q:\ngot  %q\nwant %q", tc.in, got, tc.want)
		}
	}
	if cn := bind.Choose("").TLS.Leaf.Subject.CommonName; cn != "renewed.test" {
		t.Errorf("after the commit the default certificate is %s", cn)
	}
	if cn := bind.Choose("renewed.test").TLS.Leaf.Subject.CommonName; cn != "renewed.test" {
		t.Errorf("the SNI index does not know the new certificate's names: %s", cn)
	}
	got := d.Execute(context.Background(), "show ssl cert "+a+"\n", balancer.LevelAdmin, balancer.Origin{})
	for _, want := range []string{"Filename: " + a + "\nStatus: Used\nSerial: ", "Subject Alternative Name: DNS:renewed.test, DNS:a.test\nAlgorithm: EC256\nSHA1 FingerPrint: ",
		"Subject: /CN=renewed.test\nIssuer: /CN=Test CA\nChain Subject: /CN=Test CA\nChain Issuer: /CN=Test CA\nOCSP Response Key: \n\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("show ssl cert %s:\n%s\nwant it to contain %q", a, got, want)
		}
	}
	if got := d.Execute(context.Background(), "show ssl cert\n", balancer.LevelOperator, balancer.Origin{}); got != "Permission denied\n\n" {
		t.Errorf("operator level: %q", got)
	}
}
