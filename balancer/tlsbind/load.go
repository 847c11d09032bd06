// Package tlsbind builds the crypto/tls configuration of a TLS bind line as
// HAProxy 2.6 reads it: PEM bundles (certificate, chain and key in one
// file), directories of them, crt-list files with per-certificate options
// and SNI filters, and the certificate chosen by SNI the way HAProxy
// chooses it.
package tlsbind

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Certificate is one certificate loaded from a PEM file.
type Certificate struct {
	// Path is the file it was read from, as the configuration names it
	// (for a directory, the directory joined with the file name).
	Path string
	// TLS is the leaf, its chain and its private key.
	TLS tls.Certificate
	// Names are the leaf's subject CN and SAN DNS names, lower-cased.
	Names []string
	// PEM is the bundle the certificate was read from, private key
	// included: it is never shown.
	PEM []byte
	// FileDigest is Digest of the file at Path when the certificate was
	// read from it, "" when it came from elsewhere (a Runtime API payload).
	FileDigest string
}

// Digest returns the hex SHA-256 of a certificate file's bytes.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// LoadPEM reads a PEM bundle as HAProxy does: the first certificate is the
// leaf, the following ones its chain, and the private key may be anywhere
// in the file; a file without a key takes it from PATH.key.
func LoadPEM(path string) (*Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("unable to load SSL certificate from PEM file '%s': %w", path, err)
	}
	c, err := ParsePEM(path, data)
	if err != nil {
		return nil, err
	}
	c.FileDigest = Digest(data)
	return c, nil
}

// ParsePEM is LoadPEM of data already read from path.
func ParsePEM(path string, data []byte) (*Certificate, error) {
	keyData := data
	if !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		k, err := os.ReadFile(path + ".key")
		if err != nil {
			return nil, fmt.Errorf("no private key found in '%s' nor in '%s.key'", path, path)
		}
		keyData = k
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("unable to load SSL certificate from PEM file '%s': no certificate", path)
	}
	pair, err := tls.X509KeyPair(data, keyData)
	if err != nil {
		return nil, fmt.Errorf("unable to load SSL certificate from PEM file '%s': %w", path, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("unable to load SSL certificate from PEM file '%s': %w", path, err)
	}
	pair.Leaf = leaf
	return &Certificate{Path: path, TLS: pair, Names: certNames(leaf), PEM: data}, nil
}

// certNames returns the subject CN and the SAN DNS names of leaf,
// lower-cased, each once.
func certNames(leaf *x509.Certificate) []string {
	var names []string
	add := func(n string) {
		n = strings.ToLower(n)
		if n != "" && !contains(names, n) {
			names = append(names, n)
		}
	}
	add(leaf.Subject.CommonName)
	for _, n := range leaf.DNSNames {
		add(n)
	}
	return names
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// skippedSuffixes are the file names a crt directory does not load as
// certificates: they are the extra files of a certificate.
var skippedSuffixes = []string{".key", ".issuer", ".ocsp", ".sctl"}

// LoadDir loads every certificate file of dir in alphabetical order,
// skipping hidden files and the .key, .issuer, .ocsp and .sctl files, as
// HAProxy does for "crt DIR".
func LoadDir(dir string) ([]*Certificate, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("unable to scan directory '%s': %w", dir, err)
	}
	var certs []*Certificate
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || hasAnySuffix(name, skippedSuffixes) {
			continue
		}
		if !e.Type().IsRegular() {
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
			if st, err := os.Stat(filepath.Join(dir, name)); err != nil || !st.Mode().IsRegular() {
				continue
			}
		}
		c, err := LoadPEM(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate found in directory '%s'", dir)
	}
	return certs, nil
}

func hasAnySuffix(name string, suffixes []string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// ListEntry is one line of a crt-list file.
type ListEntry struct {
	// Line is its line number in the file.
	Line int
	// Path is the certificate file.
	Path string
	// Options are the words between the square brackets.
	Options []string
	// Filters are the SNI filters, "!"-prefixed for negative ones.
	Filters []string
}

// listOptions are the bracketed options of a crt-list line Tether applies,
// with the number of arguments each takes.
var listOptions = map[string]int{
	"alpn": 1, "ciphers": 1, "ciphersuites": 1, "ssl-min-ver": 1, "ssl-max-ver": 1, "verify": 1, "ca-file": 1,
}

// knownListOptions are the other options HAProxy takes in a crt-list line,
// which Tether refuses.
var knownListOptions = []string{"allow-0rtt", "ca-verify-file", "crl-file", "curves", "ecdhe", "no-ca-names", "npn"}

// ParseList reads a crt-list file.
func ParseList(path string, data []byte) ([]ListEntry, error) {
	var entries []ListEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		e := ListEntry{Line: n}
		words := strings.Fields(line)
		e.Path, words = words[0], words[1:]
		if len(words) > 0 && strings.HasPrefix(words[0], "[") {
			rest := strings.Join(words, " ")
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("'%s:%d': missing ']' after the options", path, n)
			}
			e.Options = strings.Fields(rest[1:end])
			words = strings.Fields(rest[end+1:])
			for i := 0; i < len(e.Options); i++ {
				args, ok := listOptions[e.Options[i]]
				if !ok {
					if contains(knownListOptions, e.Options[i]) {
						return nil, fmt.Errorf("'%s:%d': crt-list option '%s' is not supported by Tether", path, n, e.Options[i])
					}
					return nil, fmt.Errorf("'%s:%d': unknown crt-list option '%s'", path, n, e.Options[i])
				}
				if i+args >= len(e.Options) {
					return nil, fmt.Errorf("'%s:%d': crt-list option '%s' expects an argument", path, n, e.Options[i])
				}
				i += args
			}
		}
		for _, f := range words {
			e.Filters = append(e.Filters, strings.ToLower(f))
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read crt-list '%s': %w", path, err)
	}
	return entries, nil
}
