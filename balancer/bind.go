package balancer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Bind is one listening address of a frontend: an address of a "bind"
// line, with the line's TLS settings when it has "ssl".
type Bind struct {
	// Addr is "ADDR:PORT", as on the bind line.
	Addr string
	// TLS, when not nil, makes the address terminate TLS (bind … ssl).
	TLS *BindTLS
}

// BindAddrs returns plain binds on the given addresses.
func BindAddrs(addrs ...string) []Bind {
	binds := make([]Bind, len(addrs))
	for i, a := range addrs {
		binds[i] = Bind{Addr: a}
	}
	return binds
}

// String returns the bind's address.
func (b Bind) String() string { return b.Addr }

// bindObject is Bind's JSON object form, written when it has TLS settings.
type bindObject struct {
	Addr string
	TLS  *BindTLS `json:",omitempty"`
}

// MarshalJSON writes a plain bind as its address string, the form state
// documents have always had, and a TLS bind as an object.
func (b Bind) MarshalJSON() ([]byte, error) {
	if b.TLS == nil {
		return json.Marshal(b.Addr)
	}
	return json.Marshal(bindObject(b))
}

// UnmarshalJSON reads either form MarshalJSON writes.
func (b *Bind) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		*b = Bind{}
		return json.Unmarshal(data, &b.Addr)
	}
	var o bindObject
	if err := json.Unmarshal(data, &o); err != nil {
		return fmt.Errorf("decode bind: %w", err)
	}
	*b = Bind(o)
	return nil
}

// CertSource is one "crt" or "crt-list" argument of a bind line.
type CertSource struct {
	// Path is a PEM file or a directory of them (crt), or a crt-list file.
	Path string
	// List says Path is a crt-list file.
	List bool `json:",omitempty"`
}

// BindTLS is the TLS side of a bind line. Empty strings mean "not set on
// the line": the global ssl-default-bind-* value, then HAProxy's default,
// applies (see Effective).
type BindTLS struct {
	// Certs are the line's crt and crt-list arguments in order; the first
	// certificate they load is the default one.
	Certs []CertSource
	// ALPN is the alpn list in preference order; nil negotiates none.
	ALPN []string `json:",omitempty"`
	// MinVer and MaxVer are ssl-min-ver and ssl-max-ver ("TLSv1.2", …).
	MinVer string `json:",omitempty"`
	MaxVer string `json:",omitempty"`
	// Ciphers is the OpenSSL cipher list for TLS 1.2 and lower,
	// CipherSuites the TLS 1.3 list.
	Ciphers      string `json:",omitempty"`
	CipherSuites string `json:",omitempty"`
	// StrictSNI refuses a handshake whose SNI matches no certificate.
	StrictSNI bool `json:",omitempty"`
	// NoTLSTickets disables TLS session tickets (no-tls-tickets).
	NoTLSTickets bool `json:",omitempty"`
	// Verify is "none", "optional" or "required" ("" is none): whether a
	// client certificate is asked for and checked against CAFile.
	Verify string `json:",omitempty"`
	CAFile string `json:",omitempty"`
}

// Clone returns a deep copy of t (nil for nil).
func (t *BindTLS) Clone() *BindTLS {
	if t == nil {
		return nil
	}
	c := *t
	c.Certs = append([]CertSource(nil), t.Certs...)
	c.ALPN = append([]string(nil), t.ALPN...)
	return &c
}

// SSLDefaults holds the global lines that TLS binds depend on.
type SSLDefaults struct {
	// Options are the words of ssl-default-bind-options, as written.
	Options      []string `json:",omitempty"`
	Ciphers      string   `json:",omitempty"`
	CipherSuites string   `json:",omitempty"`
	// CrtBase and CABase are crt-base and ca-base: the directories that
	// relative crt, crt-list (and its lines) and ca-file paths start from.
	CrtBase string `json:",omitempty"`
	CABase  string `json:",omitempty"`
}

// IsZero reports whether no global line sets anything.
func (d SSLDefaults) IsZero() bool {
	return len(d.Options) == 0 && d.Ciphers == "" && d.CipherSuites == "" && d.CrtBase == "" && d.CABase == ""
}

// TLS protocol versions as HAProxy names them, oldest first.
var TLSVersions = []string{"SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}

// DefaultTLSMinVer is HAProxy 2.6's ssl-min-ver when nothing sets one.
const DefaultTLSMinVer = "TLSv1.2"

// noVersionFlags maps the no-* options to the version they disable.
var noVersionFlags = map[string]string{
	"no-sslv3": "SSLv3", "no-tlsv10": "TLSv1.0", "no-tlsv11": "TLSv1.1", "no-tlsv12": "TLSv1.2", "no-tlsv13": "TLSv1.3",
}

// TLSVersionIndex returns the position of version in TLSVersions, or -1.
func TLSVersionIndex(version string) int {
	for i, v := range TLSVersions {
		if v == version {
			return i
		}
	}
	return -1
}

// SSLOptions is what the words of ssl-default-bind-options set.
type SSLOptions struct {
	// MinVer and MaxVer are ssl-min-ver and ssl-max-ver ("" when unset);
	// force-tlsvXX sets both.
	MinVer, MaxVer string
	// Disabled are the versions the no-* flags disable.
	Disabled []string
	// NoTLSTickets is no-tls-tickets.
	NoTLSTickets bool
}

// forceVersionFlags maps the force-* options to their version.
var forceVersionFlags = map[string]string{
	"force-tlsv10": "TLSv1.0", "force-tlsv11": "TLSv1.1", "force-tlsv12": "TLSv1.2", "force-tlsv13": "TLSv1.3",
}

// ParseSSLOptions checks the words of ssl-default-bind-options and
// returns what they set. prefer-client-ciphers is accepted and changes
// nothing: crypto/tls chooses among the suites both sides allow.
func ParseSSLOptions(words []string) (SSLOptions, error) {
	var o SSLOptions
	for i := 0; i < len(words); i++ {
		switch w := words[i]; w {
		case "ssl-min-ver", "ssl-max-ver":
			if i+1 >= len(words) || TLSVersionIndex(words[i+1]) < 0 {
				return o, fmt.Errorf("'%s' : expects one of %s", w, strings.Join(TLSVersions, ", "))
			}
			if w == "ssl-min-ver" {
				o.MinVer = words[i+1]
			} else {
				o.MaxVer = words[i+1]
			}
			i++
		case "no-tls-tickets":
			o.NoTLSTickets = true
		case "prefer-client-ciphers":
		default:
			if v, ok := forceVersionFlags[w]; ok {
				o.MinVer, o.MaxVer = v, v
				continue
			}
			v, ok := noVersionFlags[w]
			if !ok {
				return o, fmt.Errorf("option '%s' is not supported by Tether (supported: ssl-min-ver, ssl-max-ver, no-sslv3, no-tlsv10, no-tlsv11, no-tlsv12, no-tlsv13, force-tlsv1x, no-tls-tickets, prefer-client-ciphers)", w)
			}
			o.Disabled = append(o.Disabled, v)
		}
	}
	return o, nil
}

// Effective returns t with the global ssl-default-bind-* values and
// HAProxy's defaults filled in: MinVer and MaxVer are always set. It fails
// when the versions left enabled are not one contiguous range.
func (t BindTLS) Effective(g SSLDefaults) (BindTLS, error) {
	out := *t.Clone()
	opts, err := ParseSSLOptions(g.Options)
	if err != nil {
		return out, fmt.Errorf("ssl-default-bind-options: %w", err)
	}
	gMin, gMax, disabled := opts.MinVer, opts.MaxVer, opts.Disabled
	out.NoTLSTickets = out.NoTLSTickets || opts.NoTLSTickets
	for i, src := range out.Certs {
		out.Certs[i].Path = withBase(g.CrtBase, src.Path)
	}
	if out.CAFile != "" {
		out.CAFile = withBase(g.CABase, out.CAFile)
	}
	if out.Ciphers == "" {
		out.Ciphers = g.Ciphers
	}
	if out.CipherSuites == "" {
		out.CipherSuites = g.CipherSuites
	}
	// As in HAProxy, a bind without its own ssl-min-ver or ssl-max-ver
	// takes the global one, and the no-* flags further disable versions.
	lo, hi := TLSVersionIndex(DefaultTLSMinVer), len(TLSVersions)-1
	for _, v := range []string{out.MinVer, gMin} {
		if v != "" {
			lo = TLSVersionIndex(v)
			break
		}
	}
	for _, v := range []string{out.MaxVer, gMax} {
		if v != "" {
			hi = TLSVersionIndex(v)
			break
		}
	}
	if lo > hi {
		return out, fmt.Errorf("ssl-min-ver %s is above ssl-max-ver %s", TLSVersions[lo], TLSVersions[hi])
	}
	first, last := -1, -1
	for i := lo; i <= hi; i++ {
		if slices.Contains(disabled, TLSVersions[i]) {
			continue
		}
		if first < 0 {
			first = i
		} else if last != i-1 {
			return out, fmt.Errorf("the enabled TLS versions have a hole (%s and %s without %s), which Tether does not support", TLSVersions[last], TLSVersions[i], TLSVersions[i-1])
		}
		last = i
	}
	if first < 0 {
		return out, fmt.Errorf("every TLS version from %s to %s is disabled", TLSVersions[lo], TLSVersions[hi])
	}
	out.MinVer, out.MaxVer = TLSVersions[first], TLSVersions[last]
	return out, nil
}

// withBase returns path relative to base (crt-base, ca-base) unless it is
// absolute or base is "".
func withBase(base, path string) string {
	if base == "" || strings.HasPrefix(path, "/") {
		return path
	}
	return strings.TrimSuffix(base, "/") + "/" + path
}

// WithCrtBase returns a crt-list line's certificate path as HAProxy
// resolves it: relative to crt-base when it is relative.
func (d SSLDefaults) WithCrtBase(path string) string { return withBase(d.CrtBase, path) }

// WithCABase returns a CA file path relative to ca-base when it is
// relative.
func (d SSLDefaults) WithCABase(path string) string { return withBase(d.CABase, path) }
