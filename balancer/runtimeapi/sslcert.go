package runtimeapi

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"tether/balancer"
	"tether/balancer/tlsbind"
)

// store returns the certificates of the running TLS binds, nil when
// there are none.
func (c *call) store() *tlsbind.Store {
	if c.d.opts.Certificates == nil {
		return nil
	}
	return c.d.opts.Certificates()
}

// cmdShowSSLCert is "show ssl cert [<certfile>|*<certfile>]": the list of
// certificate files (the open transaction first), or one file's details.
func cmdShowSSLCert(c *call) {
	st := c.store()
	path := c.arg(3)
	if path == "" {
		var b strings.Builder
		var paths []string
		var tx string
		if st != nil {
			paths, tx = st.Paths()
		}
		if tx != "" {
			b.WriteString("# transaction\n*" + tx + "\n")
		}
		b.WriteString("# filename\n")
		for _, p := range paths {
			b.WriteString(p + "\n")
		}
		c.dump(b.String())
		return
	}
	var cert *tlsbind.Certificate
	ok, status, name := false, "Used", path
	if st != nil {
		if pending, found := strings.CutPrefix(path, "*"); found {
			cert, ok = st.Pending(pending)
			status = "Unused"
		} else {
			cert, ok = st.Current(path)
		}
	}
	if !ok {
		c.err("Can't display the certificate: Not found or the certificate is a bundle!\n")
		return
	}
	c.dump(certDetails(name, status, cert))
}

// cmdSetSSLCert is "set ssl cert <certfile> <<" followed by a PEM payload.
func cmdSetSSLCert(c *call) {
	path := c.arg(3)
	if path == "" || c.payload == "" {
		c.err("'set ssl cert expects a filename and a certificate as a payload\n")
		return
	}
	st := c.store()
	if st == nil {
		c.err(tlsbind.ErrNotReferenced.Error() + "\nCan't update " + path + "!\n")
		return
	}
	created, err := st.Set(path, []byte(c.payload))
	var other *tlsbind.OtherTransactionError
	switch {
	case errors.Is(err, tlsbind.ErrNotReferenced), errors.As(err, &other):
		c.err(err.Error() + "\nCan't update " + path + "!\n")
	case err != nil:
		c.err("unable to load certificate from file '" + path + "'.\nCan't load the payload\nCan't update " + path + "!\n")
	case created:
		c.msg(sevInfo, "Transaction created for certificate "+path+"!\n")
	default:
		c.msg(sevInfo, "Transaction updated for certificate "+path+"!\n")
	}
}

// cmdCommitSSLCert is "commit ssl cert <certfile>": new handshakes get the
// transaction's certificate, connections keep theirs. Unlike HAProxy's, the
// commit is durable (balancer.CommitSSLCert).
func cmdCommitSSLCert(c *call) {
	path := c.arg(3)
	if path == "" {
		c.err("'commit ssl cert expects a filename\n")
		return
	}
	st := c.store()
	if st == nil {
		c.err(tlsbind.ErrNoTransaction.Error() + " !\nCan't commit " + path + "!\n")
		return
	}
	// The certificate is journalled before it is served, as every change
	// is: it survives a restart and reaches every node of a fleet.
	var persistErr error
	var persist func(balancer.SSLCert) error
	if c.d.b != nil {
		persist = func(cert balancer.SSLCert) error {
			persistErr = c.apply(balancer.CommitSSLCert{Cert: cert})
			return persistErr
		}
	}
	n, err := st.CommitWith(path, persist)
	var other *tlsbind.OtherTransactionError
	switch {
	case persistErr != nil:
		c.d.log.Error("commit ssl cert", "path", path, "error", persistErr)
		c.err("Can't commit " + path + ": the change could not be stored!\n")
	case errors.Is(err, tlsbind.ErrNoTransaction):
		// HAProxy 2.6 writes this "!" twice.
		c.err(err.Error() + " !\nCan't commit " + path + "!\n")
	case errors.As(err, &other):
		c.err(err.Error() + "\nCan't commit " + path + "!\n")
	case err != nil:
		c.err(err.Error() + "\n")
	default:
		c.msg(sevInfo, "Committing "+path+strings.Repeat(".", n)+"\nSuccess!\n")
	}
}

// cmdAbortSSLCert is "abort ssl cert <certfile>".
func cmdAbortSSLCert(c *call) {
	path := c.arg(3)
	if path == "" {
		c.err("'abort ssl cert expects a filename\n")
		return
	}
	st := c.store()
	err := tlsbind.ErrNoTransaction
	if st != nil {
		err = st.Abort(path)
	}
	var other *tlsbind.OtherTransactionError
	switch {
	case errors.As(err, &other):
		c.err(fmt.Sprintf("The ongoing transaction is about '%s' but you are trying to abort a transaction for '%s'\n", other.Open, other.Asked))
	case err != nil:
		c.err(err.Error() + "\n")
	default:
		c.msg(sevInfo, "Transaction aborted for certificate '"+path+"'!\n")
	}
}

// certDetails writes a certificate as HAProxy's "show ssl cert <file>"
// does.
func certDetails(name, status string, cert *tlsbind.Certificate) string {
	leaf := cert.TLS.Leaf
	var b strings.Builder
	fmt.Fprintf(&b, "Filename: %s\nStatus: %s\n", name, status)
	fmt.Fprintf(&b, "Serial: %s\n", serialHex(leaf))
	fmt.Fprintf(&b, "notBefore: %s\nnotAfter: %s\n", leaf.NotBefore.UTC().Format("Jan _2 15:04:05 2006 GMT"), leaf.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT"))
	if san := sanLine(leaf); san != "" {
		fmt.Fprintf(&b, "Subject Alternative Name: %s\n", san)
	}
	fmt.Fprintf(&b, "Algorithm: %s\n", keyAlgorithm(leaf))
	fmt.Fprintf(&b, "SHA1 FingerPrint: %X\n", sha1.Sum(leaf.Raw))
	fmt.Fprintf(&b, "Subject: %s\nIssuer: %s\n", tlsbind.Oneline(leaf.RawSubject), tlsbind.Oneline(leaf.RawIssuer))
	for _, der := range cert.TLS.Certificate[1:] {
		if ch, err := x509.ParseCertificate(der); err == nil {
			fmt.Fprintf(&b, "Chain Subject: %s\nChain Issuer: %s\n", tlsbind.Oneline(ch.RawSubject), tlsbind.Oneline(ch.RawIssuer))
		}
	}
	b.WriteString("OCSP Response Key: \n")
	return b.String()
}

// serialHex writes the serial number's magnitude in upper-case hex, as
// HAProxy does from OpenSSL's ASN1_INTEGER data: without the zero byte
// DER puts before a number whose top bit is set (seen with serial
// 8C1EB785B09348 against HAProxy 2.6), and 00 for zero.
func serialHex(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	return fmt.Sprintf("%X", b)
}

// sanLine lists the SAN entries as OpenSSL prints them.
func sanLine(c *x509.Certificate) string {
	var parts []string
	for _, n := range c.DNSNames {
		parts = append(parts, "DNS:"+n)
	}
	for _, ip := range c.IPAddresses {
		parts = append(parts, "IP Address:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		parts = append(parts, "email:"+e)
	}
	for _, u := range c.URIs {
		parts = append(parts, "URI:"+u.String())
	}
	return strings.Join(parts, ", ")
}

// keyAlgorithm names the key as HAProxy does: RSA2048, EC256…
func keyAlgorithm(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return fmt.Sprintf("EC%d", k.Curve.Params().BitSize)
	case ed25519.PublicKey:
		return "ED25519"
	}
	return "Unknown"
}
