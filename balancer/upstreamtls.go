package balancer

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// ServerTLS is the TLS side of a server line.
type ServerTLS struct {
	// Verify is "none" or "required" ("" is required, HAProxy's default):
	// whether the server's certificate chain is checked against CAFile.
	Verify string `json:",omitempty"`
	CAFile string `json:",omitempty"`
	// SNI is the sni expression as written: "str(NAME)", or
	// "req.hdr(host)" (or "hdr(host)") for the request's Host.
	SNI string `json:",omitempty"`
	// Crt is a PEM bundle with the client certificate Tether presents.
	Crt string `json:",omitempty"`
}

// VerifyRequired reports whether the server's certificate is checked.
func (t ServerTLS) VerifyRequired() bool { return t.Verify != "none" }

// SNIFromHost reports whether the SNI is the request's Host header.
func (t ServerTLS) SNIFromHost() bool { return t.SNI == "req.hdr(host)" || t.SNI == "hdr(host)" }

// SNIName returns the fixed server name of "sni str(NAME)", and whether
// the expression is one.
func (t ServerTLS) SNIName() (string, bool) {
	if v, ok := strings.CutPrefix(t.SNI, "str("); ok && strings.HasSuffix(v, ")") {
		return v[:len(v)-1], true
	}
	return "", false
}

// CheckSNI checks an sni expression: Tether implements str(NAME) and
// req.hdr(host).
func CheckSNI(expr string) error {
	t := ServerTLS{SNI: expr}
	if _, ok := t.SNIName(); ok || t.SNIFromHost() {
		return nil
	}
	return fmt.Errorf("'sni %s' is not supported by Tether (supported: str(NAME), req.hdr(host))", expr)
}

// upstreamTLS is the crypto/tls side of a server's TLS connections, built
// once per server from its configuration.
type upstreamTLS struct {
	// conf has no ServerName; conn adds the request's.
	conf *tls.Config
	// sni is the fixed server name, sniHost says it is the request's Host.
	sni     string
	sniHost bool
}

// newUpstreamTLS builds the TLS client side of a server's connections:
// its CA and client certificate files are read here. It returns nil for
// a server without TLS.
func newUpstreamTLS(s Server) (*upstreamTLS, error) {
	if !s.SSL && !s.CheckSSL {
		return nil, nil
	}
	t := s.TLS
	u := &upstreamTLS{sniHost: t.SNIFromHost()}
	u.sni, _ = t.SNIName()
	if t.SNI != "" {
		if err := CheckSNI(t.SNI); err != nil {
			return nil, err
		}
	}
	// Names are checked only against the SNI sent, as HAProxy does; the
	// chain is checked by VerifyConnection, with crypto/tls's own check
	// (which always checks a name) turned off.
	conf := &tls.Config{InsecureSkipVerify: true}
	if t.VerifyRequired() {
		if t.CAFile == "" {
			return nil, errors.New("verify is enabled by default but no CA file specified; set 'verify none' or a 'ca-file'")
		}
		data, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("unable to load CA file '%s': %w", t.CAFile, err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("unable to load CA file '%s': no certificate in it", t.CAFile)
		}
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), DNSName: cs.ServerName}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	if t.Crt != "" {
		data, err := os.ReadFile(t.Crt)
		if err != nil {
			return nil, fmt.Errorf("unable to load SSL certificate '%s': %w", t.Crt, err)
		}
		key := data
		if !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
			if key, err = os.ReadFile(t.Crt + ".key"); err != nil {
				return nil, fmt.Errorf("no private key found in '%s' nor in '%s.key'", t.Crt, t.Crt)
			}
		}
		pair, err := tls.X509KeyPair(data, key)
		if err != nil {
			return nil, fmt.Errorf("unable to load SSL certificate '%s': %w", t.Crt, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	u.conf = conf
	return u, nil
}

// serverName returns the SNI to send for r (nil for a health check).
func (u *upstreamTLS) serverName(r *http.Request) string {
	if u.sniHost {
		if r == nil {
			return ""
		}
		return r.Host
	}
	return u.sni
}

// config returns the configuration of a connection sending serverName.
func (u *upstreamTLS) config(serverName string) *tls.Config {
	if serverName == "" {
		return u.conf
	}
	c := u.conf.Clone()
	c.ServerName = serverName
	return c
}

// CheckServerTLS checks a server's TLS settings and reads its files, as
// the balancer will when it runs the server.
func CheckServerTLS(s Server) error {
	_, err := newUpstreamTLS(s)
	return err
}
