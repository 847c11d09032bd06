package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"

	"tether/balancer/tlsbind/tlsbindtest"
)

// TestServeTLSBind runs "tether serve" with a TLS bind: HTTP/1.1 and
// HTTP/2 clients are served, and a reload reads the certificate file
// again, as HAProxy does, so that new handshakes get the renewed one.
func TestServeTLSBind(t *testing.T) {
	f := newFixture(t, 1)
	ca := tlsbindtest.NewCA(t, "Test CA")
	crt := filepath.Join(f.dir, "site.pem")
	tlsbindtest.WriteFile(t, f.dir, "site.pem", ca.Issue(t, "site.test", "site.test").Bundle(ca))
	cfg, err := os.ReadFile(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("bind "+f.frontend), []byte("bind "+f.frontend+" ssl crt "+crt+" alpn h2,http/1.1"), 1)
	if err := os.WriteFile(f.cfg, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	stop := f.serve(t)
	defer stop()

	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "site.test"}
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
	h2 := &http.Client{Transport: &http2.Transport{TLSClientConfig: conf}}
	for _, c := range []*http.Client{h1, h2} {
		resp, err := c.Get("https://" + f.frontend + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "s1" || resp.TLS.PeerCertificates[0].Subject.CommonName != "site.test" {
			t.Errorf("%s %s %q from %s", resp.Proto, resp.Status, body, resp.TLS.PeerCertificates[0].Subject.CommonName)
		}
	}

	tlsbindtest.WriteFile(t, f.dir, "site.pem", ca.Issue(t, "renewed.test", "site.test").Bundle(ca))
	if out, err := runCmd(t, "reload", "-s", f.sock); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	c, err := tls.Dial("tcp", f.frontend, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "renewed.test" {
		t.Errorf("after reload the bind serves %s, want the renewed certificate", cn)
	}
}

// TestHotCertificateReplacement replaces a TLS bind's certificate through
// the Runtime API socket while clients make new TLS connections in a
// loop: no request fails, and handshakes after the commit get the new
// certificate.
func TestHotCertificateReplacement(t *testing.T) {
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
	stop := f.serve(t)
	defer stop()

	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "site.test"}
	var mu sync.Mutex
	served := map[string]int{}
	var failures []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := c.Get("https://" + f.frontend + "/")
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failures = append(failures, resp.Status)
					}
					served[resp.TLS.PeerCertificates[0].Subject.CommonName]++
				}
				mu.Unlock()
			}
		}()
	}
	count := func(cn string) int {
		mu.Lock()
		defer mu.Unlock()
		return served[cn]
	}
	waitFor(t, "requests with the first certificate", func() bool { return count("site.test") >= 20 })
	renewed := ca.Issue(t, "renewed.test", "site.test").Bundle(ca)
	if out := exec1(t, f.sock, "set ssl cert "+crt+" <<\n"+string(renewed)+"\n"); !strings.Contains(out, "Transaction created for certificate "+crt+"!") {
		t.Fatalf("set ssl cert: %q", out)
	}
	if out := exec1(t, f.sock, "commit ssl cert "+crt); out != "Committing "+crt+".\nSuccess!\n\n" {
		t.Fatalf("commit ssl cert: %q", out)
	}
	waitFor(t, "requests with the renewed certificate", func() bool { return count("renewed.test") >= 20 })
	close(done)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d requests failed during the replacement, first: %s", len(failures), failures[0])
	}
	c, err := tls.Dial("tcp", f.frontend, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "renewed.test" {
		t.Errorf("a handshake after the commit got %s", cn)
	}
	t.Logf("requests: %v", served)
}
