package balancer

import (
	"fmt"
	"slices"
	"time"
)

// SSLCert is a certificate committed at run time ("commit ssl cert") in
// place of the file a TLS bind names. It is part of the durable state, so
// it survives a restart and reaches every node of a fleet.
type SSLCert struct {
	// Path is the certificate file as the configuration names it.
	Path string
	// PEM is the bundle: certificate, chain and private key.
	PEM Secret
	// FileDigest is the digest of the file at Path when the certificate
	// was committed. A start or reload that finds another file there
	// serves the file, as HAProxy does on reload, and drops this one.
	FileDigest string `json:",omitempty"`
	// Subject, SHA1 (the leaf's fingerprint) and NotAfter describe the
	// leaf for the audit log and the console.
	Subject  string
	SHA1     string
	NotAfter time.Time `json:",omitzero"`
}

// Describe names the certificate without its key: subject and
// fingerprint.
func (c SSLCert) Describe() string {
	return fmt.Sprintf("subject %s, SHA1 %s", c.Subject, c.SHA1)
}

// CommitSSLCert records a certificate committed at run time. The Runtime
// API serves it to new handshakes itself; the change makes it durable.
type CommitSSLCert struct {
	Cert SSLCert
}

// BackendName returns "": a certificate belongs to no backend.
func (CommitSSLCert) BackendName() string { return "" }

func (CommitSSLCert) isChange() {}

// withSSLCert returns certs with c in place of the certificate of the same
// path, or added; certs is not modified.
func withSSLCert(certs []SSLCert, c SSLCert) []SSLCert {
	out := slices.Clone(certs)
	if i := slices.IndexFunc(out, func(x SSLCert) bool { return x.Path == c.Path }); i >= 0 {
		out[i] = c
		return out
	}
	out = append(out, c)
	slices.SortFunc(out, func(a, b SSLCert) int {
		switch {
		case a.Path < b.Path:
			return -1
		case a.Path > b.Path:
			return 1
		}
		return 0
	})
	return out
}

// SSLCert returns the certificate committed for path, if any.
func (cfg Config) SSLCert(path string) (SSLCert, bool) {
	i := slices.IndexFunc(cfg.SSLCerts, func(c SSLCert) bool { return c.Path == path })
	if i < 0 {
		return SSLCert{}, false
	}
	return cfg.SSLCerts[i], true
}
