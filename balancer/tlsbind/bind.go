package tlsbind

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"tether/balancer"
)

// Bind is the TLS side of one bind line: its certificates, their SNI
// index and the crypto/tls configuration that serves them. It is safe for
// concurrent use; a certificate replaced through its Store is served to
// the next handshakes.
type Bind struct {
	entries []*entry
	// idx is the SNI index, rebuilt when a certificate is replaced.
	idx    atomic.Pointer[sniIndex]
	strict bool
	// refuse is the configuration of a handshake strict-sni refuses: it has
	// no certificate, so crypto/tls answers alert unrecognized_name.
	refuse *tls.Config
	config *tls.Config
}

// sniIndex indexes a bind's entries by exact name, and by the name a
// wildcard covers without its "*" (".example.com"); the first entry
// loaded wins. def is the default certificate's entry: the first loaded.
type sniIndex struct {
	exact map[string]*entry
	wild  map[string]*entry
	def   *entry
}

// entry is one certificate of the bind with its own configuration.
type entry struct {
	cert *certRef
	// filters are the crt-list SNI filters ("!" for negative ones).
	filters []string
	config  *tls.Config
	// noALPN is config without ALPN, for a client whose protocols share
	// none with the entry's.
	noALPN *tls.Config
}

// certRef is a certificate that may be replaced at run time.
type certRef struct {
	path string
	cur  atomic.Pointer[Certificate]
}

// load returns the current certificate.
func (r *certRef) load() *Certificate { return r.cur.Load() }

// Build loads the certificates of t and returns its TLS side; g are the
// global ssl-default-bind-* lines. Errors name the file at fault.
func Build(t balancer.BindTLS, g balancer.SSLDefaults) (*Bind, error) {
	return build(t, g, nil)
}

func build(t balancer.BindTLS, g balancer.SSLDefaults, store *Store) (*Bind, error) {
	eff, err := t.Effective(g)
	if err != nil {
		return nil, err
	}
	base, err := baseConfig(eff)
	if err != nil {
		return nil, err
	}
	b := &Bind{strict: eff.StrictSNI}
	add := func(c *Certificate, filters []string, conf *tls.Config) {
		ref := &certRef{path: c.Path}
		ref.cur.Store(c)
		if store != nil {
			ref = store.ref(c)
		}
		e := &entry{cert: ref, filters: filters, config: withCert(conf, ref)}
		e.noALPN = e.config.Clone()
		e.noALPN.NextProtos = nil
		b.entries = append(b.entries, e)
	}
	for _, src := range eff.Certs {
		if !src.List {
			st, err := os.Stat(src.Path)
			if err != nil {
				return nil, fmt.Errorf("unable to stat SSL certificate from file '%s': %w", src.Path, err)
			}
			var certs []*Certificate
			if st.IsDir() {
				if certs, err = LoadDir(src.Path); err != nil {
					return nil, err
				}
			} else {
				c, err := LoadPEM(src.Path)
				if err != nil {
					return nil, err
				}
				certs = []*Certificate{c}
			}
			for _, c := range certs {
				add(c, nil, base)
			}
			continue
		}
		data, err := os.ReadFile(src.Path)
		if err != nil {
			return nil, fmt.Errorf("cannot open crt-list '%s': %w", src.Path, err)
		}
		lines, err := ParseList(src.Path, data)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			c, err := LoadPEM(g.WithCrtBase(l.Path))
			if err != nil {
				return nil, fmt.Errorf("'%s:%d': %w", src.Path, l.Line, err)
			}
			conf := base
			if len(l.Options) > 0 {
				if conf, err = entryConfig(eff, l.Options, g); err != nil {
					return nil, fmt.Errorf("'%s:%d': %w", src.Path, l.Line, err)
				}
			}
			add(c, l.Filters, conf)
		}
	}
	if len(b.entries) == 0 {
		return nil, fmt.Errorf("no certificate loaded for the bind (crt or crt-list)")
	}
	b.reindex()
	// OpenSSL looks at the SNI before it negotiates a version: every
	// version is allowed here so that the refusal is unrecognized_name,
	// whatever the client offers.
	b.refuse = &tls.Config{MinVersion: tls.VersionTLS10,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }}
	b.config = &tls.Config{GetConfigForClient: b.configFor}
	if store != nil {
		store.attach(b)
	}
	return b, nil
}

// reindex builds the SNI index from the entries' current certificates:
// each is indexed under its positive SNI filters, or its own names when
// it has none.
func (b *Bind) reindex() {
	idx := &sniIndex{exact: make(map[string]*entry), wild: make(map[string]*entry), def: b.entries[0]}
	for _, e := range b.entries {
		var positive, negative []string
		for _, f := range e.filters {
			if n, ok := strings.CutPrefix(f, "!"); ok {
				negative = append(negative, n)
				continue
			}
			positive = append(positive, f)
		}
		if len(positive) == 0 && !contains(negative, "*") {
			positive = e.cert.load().Names
		}
		for _, n := range positive {
			if contains(negative, n) {
				continue
			}
			if rest, ok := strings.CutPrefix(n, "*"); ok && strings.HasPrefix(rest, ".") {
				if _, dup := idx.wild[rest]; !dup {
					idx.wild[rest] = e
				}
				continue
			}
			if _, dup := idx.exact[n]; !dup {
				idx.exact[n] = e
			}
		}
	}
	b.idx.Store(idx)
}

// ownNames reports whether the entry is indexed by its certificate's own
// names (it has no positive SNI filter and no "!*").
func (e *entry) ownNames() bool {
	for _, f := range e.filters {
		if !strings.HasPrefix(f, "!") || f == "!*" {
			return false
		}
	}
	return true
}

// negated reports whether a "!" filter of the entry excludes name.
func (e *entry) negated(name string) bool {
	for _, f := range e.filters {
		if f == "!"+name {
			return true
		}
	}
	return false
}

// withCert returns a copy of conf that serves the current certificate of
// ref.
func withCert(conf *tls.Config, ref *certRef) *tls.Config {
	out := conf.Clone()
	out.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &ref.load().TLS, nil }
	return out
}

// Config returns the crypto/tls configuration of the bind.
func (b *Bind) Config() *tls.Config { return b.config }

// Certificates returns the bind's certificates in the order they were
// loaded; the first is the default one.
func (b *Bind) Certificates() []*Certificate {
	out := make([]*Certificate, len(b.entries))
	for i, e := range b.entries {
		out[i] = e.cert.load()
	}
	return out
}

// Choose returns the certificate served to a client that sent serverName
// ("" for none), or nil when strict-sni refuses the handshake.
func (b *Bind) Choose(serverName string) *Certificate {
	if e := b.choose(serverName); e != nil {
		return e.cert.load()
	}
	return nil
}

// choose picks the entry as HAProxy 2.6 does: the default certificate when
// the name is one of its own; otherwise an exact name, then a wildcard
// covering the name's first label; otherwise the default certificate, or
// nothing under strict-sni.
func (b *Bind) choose(serverName string) *entry {
	idx := b.idx.Load()
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if name != "" {
		if idx.def.ownNames() && contains(idx.def.cert.load().Names, name) && !idx.def.negated(name) {
			return idx.def
		}
		if e := idx.exact[name]; e != nil {
			return e
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if e := idx.wild[name[i:]]; e != nil && !e.negated(name) {
				return e
			}
		}
	}
	if b.strict {
		return nil
	}
	return idx.def
}

// configFor returns the configuration of the entry chosen for hello. A
// client offering ALPN protocols none of which the bind has goes on
// without ALPN, as with HAProxy (OpenSSL's selection callback declines),
// where crypto/tls would refuse the handshake.
func (b *Bind) configFor(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	e := b.choose(hello.ServerName)
	if e == nil {
		return b.refuse, nil
	}
	if len(hello.SupportedProtos) > 0 && len(e.config.NextProtos) > 0 && !overlaps(e.config.NextProtos, hello.SupportedProtos) {
		return e.noALPN, nil
	}
	return e.config, nil
}

// overlaps reports whether a and b share an element.
func overlaps(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}

// baseConfig returns the configuration of the bind line's own settings,
// without a certificate.
func baseConfig(t balancer.BindTLS) (*tls.Config, error) {
	conf := &tls.Config{
		MinVersion: goVersion(t.MinVer),
		MaxVersion: goVersion(t.MaxVer),
		NextProtos: append([]string(nil), t.ALPN...),

		SessionTicketsDisabled: t.NoTLSTickets,
	}
	if t.MinVer == "SSLv3" {
		return nil, fmt.Errorf("'ssl-min-ver SSLv3' is not supported by Tether (crypto/tls has no SSLv3)")
	}
	var err error
	if conf.CipherSuites, err = CipherSuites(t.Ciphers); err != nil {
		return nil, err
	}
	if err := CheckCipherSuites13(t.CipherSuites); err != nil {
		return nil, err
	}
	switch t.Verify {
	case "", "none":
	case "optional", "required":
		if t.CAFile == "" {
			return nil, fmt.Errorf("'verify %s' needs a 'ca-file'", t.Verify)
		}
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if t.Verify == "required" {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	default:
		return nil, fmt.Errorf("'verify' expects 'none', 'optional' or 'required', got '%s'", t.Verify)
	}
	if t.CAFile != "" {
		pool, err := LoadCAFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		conf.ClientCAs = pool
	}
	return conf, nil
}

// entryConfig returns the configuration of a crt-list line's options over
// the bind line's settings.
func entryConfig(bind balancer.BindTLS, options []string, g balancer.SSLDefaults) (*tls.Config, error) {
	t := *bind.Clone()
	for i := 0; i+1 < len(options); i += 2 {
		v := options[i+1]
		switch options[i] {
		case "alpn":
			t.ALPN = strings.Split(v, ",")
		case "ciphers":
			t.Ciphers = v
		case "ciphersuites":
			t.CipherSuites = v
		case "ssl-min-ver", "ssl-max-ver":
			if balancer.TLSVersionIndex(v) < 0 {
				return nil, fmt.Errorf("'%s' : expects one of %s", options[i], strings.Join(balancer.TLSVersions, ", "))
			}
			if options[i] == "ssl-min-ver" {
				t.MinVer = v
			} else {
				t.MaxVer = v
			}
		case "verify":
			t.Verify = v
		case "ca-file":
			t.CAFile = g.WithCABase(v)
		}
	}
	if t.MinVer != bind.MinVer || t.MaxVer != bind.MaxVer {
		eff, err := balancer.BindTLS{MinVer: t.MinVer, MaxVer: t.MaxVer}.Effective(g)
		if err != nil {
			return nil, err
		}
		t.MinVer, t.MaxVer = eff.MinVer, eff.MaxVer
	}
	return baseConfig(t)
}

// LoadCAFile reads a PEM file of CA certificates.
func LoadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("unable to load CA file '%s': %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("unable to load CA file '%s': no certificate in it", path)
	}
	return pool, nil
}

// goVersion returns crypto/tls's constant for an HAProxy version name.
func goVersion(v string) uint16 {
	switch v {
	case "TLSv1.0":
		return tls.VersionTLS10
	case "TLSv1.1":
		return tls.VersionTLS11
	case "TLSv1.2":
		return tls.VersionTLS12
	case "TLSv1.3":
		return tls.VersionTLS13
	}
	return 0
}
