package web

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"tether/balancer"
	"tether/balancer/runtimeapi"
	"tether/balancer/tlsbind"
	"tether/balancer/tlsbind/tlsbindtest"
)

// tlsEnv is an env whose frontend terminates TLS with site.pem, served
// on a real TLS listener from the same certificate store the Runtime API
// and the console use.
type tlsEnv struct {
	*env
	ca    *tlsbindtest.CA
	crt   string
	certs *tlsbind.Store
	addr  string
}

func newTLSEnv(t *testing.T) *tlsEnv {
	t.Helper()
	te := &tlsEnv{ca: tlsbindtest.NewCA(t, "Test CA"), certs: tlsbind.NewStore()}
	te.crt = tlsbindtest.WriteFile(t, t.TempDir(), "site.pem", te.ca.Issue(t, "site.test", "site.test").Bundle(te.ca))
	bind, err := te.certs.Build(balancer.BindTLS{Certs: []balancer.CertSource{{Path: te.crt}}, ALPN: []string{"h2", "http/1.1"}, StrictSNI: true}, balancer.SSLDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: time.Second}
	go srv.Serve(tls.NewListener(ln, bind.Config()))
	t.Cleanup(func() { srv.Close() })
	te.addr = ln.Addr().String()
	config := strings.Replace(testConfig, "bind 127.0.0.1:8080", "bind 127.0.0.1:8443 ssl crt "+te.crt+" alpn h2,http/1.1 strict-sni", 1)
	te.env = newEnvConfig(t, config, Options{Socat: "/run/tether/admin.sock"}, func(d *Deps) {
		d.Runtime = runtimeapi.NewDispatcher(d.Balancer.(*balancer.Balancer), runtimeapi.DispatcherOptions{
			Certificates: func() *tlsbind.Store { return te.certs },
		})
		d.Certificates = func() *tlsbind.Store { return te.certs }
	})
	return te
}

// servedCN returns the subject CN of the certificate a TLS client gets.
func (te *tlsEnv) servedCN(t *testing.T) string {
	t.Helper()
	c, err := tls.Dial("tcp", te.addr, &tls.Config{RootCAs: te.ca.Pool(), ServerName: "site.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestBrowserCertificateUpdate(t *testing.T) {
	ctx := newBrowser(t)
	te := newTLSEnv(t)
	browserLogin(t, ctx, te.env, "alice")
	navigate(t, ctx, te.console.URL+"/")
	poll(t, ctx, "live dot", `document.getElementById("live").dataset.state === "live"`)
	subject := `document.querySelector('#certs tr[data-k=` + jsString("c:"+te.crt) + `] [data-f=subj]').textContent`
	poll(t, ctx, "the certificate listed", subject+` === "/CN=site.test"`)
	poll(t, ctx, "the bind listed", `document.querySelector(".tlsbinds tbody").textContent.includes("h2,http/1.1")`)
	poll(t, ctx, "the expiry warning", `document.querySelector('#certs tbody tr').dataset.expiry === "warn"`)
	// A page load would lose this mark: the update must come over the
	// websocket.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.sameLoad = true`)); err != nil {
		t.Fatal(err)
	}

	t.Run("a bundle without its key is refused and changes nothing", func(t *testing.T) {
		leaf := te.ca.Issue(t, "nokey.test", "site.test")
		if err := chromedp.Do(ctx, chromedp.SetValue("#cert-pem", string(leaf.CertPEM)), chromedp.Click("#cert-submit")); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the refusal", `[...document.querySelectorAll(".toast.err")].some(t => t.textContent.includes(`+jsString("Can't update "+te.crt)+`))`)
		if _, open := te.certs.Pending(te.crt); open {
			t.Error("a transaction stays open after the refusal")
		}
		if cn := te.servedCN(t); cn != "site.test" {
			t.Errorf("after the refusal the frontend serves %s", cn)
		}
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("cert-pem").value = ""`)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a new bundle is served and shown live", func(t *testing.T) {
		renewed := te.ca.Issue(t, "renewed.test", "site.test", "www.site.test")
		if err := chromedp.Do(ctx, chromedp.SetValue("#cert-pem", string(renewed.Bundle(te.ca))), chromedp.Click("#cert-submit")); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the new subject", subject+` === "/CN=renewed.test"`)
		poll(t, ctx, "the new SANs", `document.querySelector('#certs [data-f=sans]').textContent === "site.test, www.site.test"`)
		poll(t, ctx, "the form emptied", `document.getElementById("cert-pem").value === ""`)
		poll(t, ctx, "the commands shown", `[...document.querySelectorAll(".toast.ok code")].map(c => c.textContent).join("|") === "set ssl cert `+te.crt+` <<|commit ssl cert `+te.crt+`"`)
		if same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.sameLoad === true`)); err != nil || !same {
			t.Errorf("the page was loaded again (%v)", err)
		}
		if cn := te.servedCN(t); cn != "renewed.test" {
			t.Errorf("a TLS client gets %s, want renewed.test", cn)
		}
		_, _, body := te.get(te.login("alice"), "/")
		if strings.Contains(body, "PRIVATE KEY") {
			t.Error("the overview shows a private key")
		}
	})
}
