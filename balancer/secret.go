package balancer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Secret is a value that must never be shown: a dynamic-cookie key, a
// certificate bundle with its private key. Its String and log forms are
// its fingerprint; its JSON and text forms are a reference, "sha256:" and the hex SHA-256 of the value, that only a store
// holding the value can resolve (see Resolve). Reveal returns the value;
// only what hashes cookies or writes a configuration file calls it.
type Secret string

// secretRefPrefix starts the reference a Secret marshals to.
const secretRefPrefix = "sha256:"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String returns the fingerprint, "" for an empty secret.
func (s Secret) String() string { return KeyFingerprint(string(s)) }

// Ref returns the reference the secret marshals to, "" for an empty one.
func (s Secret) Ref() string {
	if s == "" {
		return ""
	}
	if s.IsRef() {
		return string(s)
	}
	sum := sha256.Sum256([]byte(s))
	return secretRefPrefix + hex.EncodeToString(sum[:])
}

// IsRef reports whether s holds a reference read back from JSON rather
// than a value.
func (s Secret) IsRef() bool {
	return len(s) == len(secretRefPrefix)+64 && strings.HasPrefix(string(s), secretRefPrefix)
}

// MarshalText returns the reference.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Ref()), nil }

// UnmarshalText reads a reference, which Resolve turns back into the
// value; anything else is taken as the value itself, as JSON written
// before secrets were references holds it.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}

// Format writes the fingerprint for every verb, so that no formatting
// directive prints the value.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// Resolve replaces a reference by its value, looked up with find; a value
// is left as it is. It fails when find does not know the reference.
func (s *Secret) Resolve(find func(ref string) (string, bool)) error {
	if !s.IsRef() {
		return nil
	}
	v, ok := find(string(*s))
	if !ok {
		return fmt.Errorf("secret %s is not in the store", string(*s))
	}
	*s = Secret(v)
	return nil
}

// Secrets returns the secrets a state holds, by reference.
func (st State) Secrets() map[string]string {
	out := make(map[string]string)
	for _, c := range st.Config.SSLCerts {
		if c.PEM != "" && !c.PEM.IsRef() {
			out[c.PEM.Ref()] = c.PEM.Reveal()
		}
	}
	for _, b := range st.Config.Backends {
		if b.DynamicCookieKey != "" && !b.DynamicCookieKey.IsRef() {
			out[b.DynamicCookieKey.Ref()] = b.DynamicCookieKey.Reveal()
		}
		for _, rk := range b.RetiredKeys {
			if rk.Key != "" && !rk.Key.IsRef() {
				out[rk.Key.Ref()] = rk.Key.Reveal()
			}
		}
	}
	return out
}

// ResolveSecrets resolves every reference a state holds (see Resolve).
func (st *State) ResolveSecrets(find func(ref string) (string, bool)) error {
	if len(st.Config.SSLCerts) > 0 {
		certs := slices.Clone(st.Config.SSLCerts)
		for i := range certs {
			if err := certs[i].PEM.Resolve(find); err != nil {
				return fmt.Errorf("certificate %s: %w", certs[i].Path, err)
			}
		}
		st.Config.SSLCerts = certs
	}
	for i := range st.Config.Backends {
		be := &st.Config.Backends[i]
		if err := be.DynamicCookieKey.Resolve(find); err != nil {
			return fmt.Errorf("backend %s: %w", be.Name, err)
		}
		if len(be.RetiredKeys) > 0 {
			// Never resolve in place: the slice may be shared.
			retired := slices.Clone(be.RetiredKeys)
			for j := range retired {
				if err := retired[j].Key.Resolve(find); err != nil {
					return fmt.Errorf("backend %s: retired key: %w", be.Name, err)
				}
			}
			be.RetiredKeys = retired
		}
	}
	return nil
}
