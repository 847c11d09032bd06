package tlsbind

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"slices"
	"sync"

	"tether/balancer"
)

// Store holds the certificates of every TLS bind of a configuration by the
// path the configuration names, shared by the binds that name the same
// file, and the one transaction of the Runtime API's "set ssl cert"
// commands. It is safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	certs map[string]*storedCert
	// tx is the open transaction, nil when none.
	tx *Certificate
}

// storedCert is one certificate file and the binds serving it.
type storedCert struct {
	ref   *certRef
	binds []*Bind
	// fileDigest is the Digest of the file the configuration names, as
	// read when the store was built.
	fileDigest string
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{certs: make(map[string]*storedCert)}
}

// Build is the package's Build, with the certificates kept in s.
func (s *Store) Build(t balancer.BindTLS, g balancer.SSLDefaults) (*Bind, error) {
	return build(t, g, s)
}

// ref returns the shared reference of the certificate at c.Path, serving
// c (a file named twice is read twice and serves what was read last).
func (s *Store) ref(c *Certificate) *certRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.certs[c.Path]
	if sc == nil {
		sc = &storedCert{ref: &certRef{path: c.Path}}
		s.certs[c.Path] = sc
	}
	sc.ref.cur.Store(c)
	sc.fileDigest = c.FileDigest
	return sc.ref
}

// attach records the binds serving each certificate of b.
func (s *Store) attach(b *Bind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range b.entries {
		sc := s.certs[e.cert.path]
		if !slices.Contains(sc.binds, b) {
			sc.binds = append(sc.binds, b)
		}
	}
}

// Paths returns the paths of the certificates in the store, sorted as
// HAProxy lists them, and the path of the open transaction ("" if none).
func (s *Store) Paths() (paths []string, transaction string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.certs {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	if s.tx != nil {
		transaction = s.tx.Path
	}
	return paths, transaction
}

// Current returns the certificate served for path.
func (s *Store) Current(path string) (*Certificate, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.certs[path]
	if sc == nil {
		return nil, false
	}
	return sc.ref.load(), true
}

// Pending returns the certificate of the open transaction for path.
func (s *Store) Pending(path string) (*Certificate, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil || s.tx.Path != path {
		return nil, false
	}
	return s.tx, true
}

// Errors of the transaction commands, whose text is HAProxy's reply.
var (
	ErrNotReferenced = errors.New("Can't replace a certificate which is not referenced by the configuration!")
	ErrNoTransaction = errors.New("No ongoing transaction!")
)

// OtherTransactionError reports a command about another path than the
// open transaction's.
type OtherTransactionError struct{ Open, Asked string }

func (e *OtherTransactionError) Error() string {
	return fmt.Sprintf("The ongoing transaction is about '%s' but you are trying to set '%s'", e.Open, e.Asked)
}

// Set parses a PEM payload (certificate, chain and key) for path into
// the transaction, which it opens when none is. created says it did.
func (s *Store) Set(path string, payload []byte) (created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.certs[path] == nil {
		return false, ErrNotReferenced
	}
	if s.tx != nil && s.tx.Path != path {
		return false, &OtherTransactionError{Open: s.tx.Path, Asked: path}
	}
	if !bytes.Contains(payload, []byte("PRIVATE KEY-----")) {
		return false, fmt.Errorf("no private key in the payload for '%s'", path)
	}
	c, err := ParsePEM(path, payload)
	if err != nil {
		return false, err
	}
	created = s.tx == nil
	s.tx = c
	return created, nil
}

// Commit serves the transaction's certificate for path to the next
// handshakes of every bind naming the file, and returns how many binds
// that is. Handshakes in progress and established connections keep the
// certificate they have.
func (s *Store) Commit(path string) (int, error) {
	return s.CommitWith(path, nil)
}

// CommitWith is Commit that first hands the certificate to persist, in
// the form the durable state keeps; when persist fails, nothing changes
// and the transaction stays open. persist must not call s.
func (s *Store) CommitWith(path string, persist func(balancer.SSLCert) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return 0, ErrNoTransaction
	}
	if s.tx.Path != path {
		return 0, &OtherTransactionError{Open: s.tx.Path, Asked: path}
	}
	sc := s.certs[path]
	if persist != nil {
		if err := persist(Durable(s.tx, sc.fileDigest)); err != nil {
			return 0, err
		}
	}
	s.install(sc, s.tx)
	s.tx = nil
	return len(sc.binds), nil
}

// install serves c for sc's path; s.mu is held.
func (s *Store) install(sc *storedCert, c *Certificate) {
	sc.ref.cur.Store(c)
	for _, b := range sc.binds {
		b.reindex()
	}
}

// Durable returns c in the form the durable state keeps, committed over a
// file whose Digest was fileDigest.
func Durable(c *Certificate, fileDigest string) balancer.SSLCert {
	leaf := c.TLS.Leaf
	return balancer.SSLCert{
		Path:       c.Path,
		PEM:        balancer.Secret(c.PEM),
		FileDigest: fileDigest,
		Subject:    Oneline(leaf.RawSubject),
		SHA1:       fmt.Sprintf("%X", sha1.Sum(leaf.Raw)),
		NotAfter:   leaf.NotAfter.UTC(),
	}
}

// Restore serves the certificates committed at run time in place of the
// files just read, for the paths whose file is the one they were
// committed over: a file replaced since wins, as on an HAProxy reload.
// It returns the paths it restored; a bundle that no longer parses is
// reported and skipped.
func (s *Store) Restore(certs []balancer.SSLCert) (restored []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, dc := range certs {
		sc := s.certs[dc.Path]
		if sc == nil || dc.FileDigest != sc.fileDigest {
			continue
		}
		c, perr := ParsePEM(dc.Path, []byte(dc.PEM.Reveal()))
		if perr != nil {
			errs = append(errs, fmt.Errorf("certificate %s committed at run time: %w", dc.Path, perr))
			continue
		}
		s.install(sc, c)
		restored = append(restored, dc.Path)
	}
	return restored, errors.Join(errs...)
}

// Install serves a certificate committed at run time, on this node or
// another node of the fleet, whatever the file holds. It does nothing
// when the certificate is already served or when no bind names its path.
func (s *Store) Install(dc balancer.SSLCert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.certs[dc.Path]
	if sc == nil {
		return nil
	}
	if cur := sc.ref.load(); cur != nil && bytes.Equal(cur.PEM, []byte(dc.PEM.Reveal())) {
		return nil
	}
	c, err := ParsePEM(dc.Path, []byte(dc.PEM.Reveal()))
	if err != nil {
		return fmt.Errorf("certificate %s committed at run time: %w", dc.Path, err)
	}
	s.install(sc, c)
	return nil
}

// FileDigest returns the Digest of the file at path as the store read it.
func (s *Store) FileDigest(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc := s.certs[path]; sc != nil {
		return sc.fileDigest
	}
	return ""
}

// Abort drops the transaction for path.
func (s *Store) Abort(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return ErrNoTransaction
	}
	if s.tx.Path != path {
		return &OtherTransactionError{Open: s.tx.Path, Asked: path}
	}
	s.tx = nil
	return nil
}
