package haproxycfg

import (
	"strings"

	"tether/balancer"
	"tether/balancer/tlsbind"
)

// tlsBindLine is a TLS bind line, checked once the whole file is read.
type tlsBindLine struct {
	line int
	tls  *balancer.BindTLS
}

// bindTLSParams are the TLS parameters of a bind line that Tether
// implements, with the number of arguments each takes.
var bindTLSParams = map[string]int{
	"ssl": 0, "strict-sni": 0, "no-tls-tickets": 0,
	"crt": 1, "crt-list": 1, "alpn": 1, "ssl-min-ver": 1, "ssl-max-ver": 1,
	"ciphers": 1, "ciphersuites": 1, "verify": 1, "ca-file": 1,
}

// parseBindTLS parses the parameters of a bind line after its addresses.
// It returns the line's TLS settings (nil without "ssl") and false when
// the line is refused.
func (p *parser) parseBindTLS(params []string) (*balancer.BindTLS, bool) {
	var t balancer.BindTLS
	ssl := false
	var rest []string
	for i := 0; i < len(params) && params[i] != ""; i++ {
		kw := params[i]
		n, ok := bindTLSParams[kw]
		if !ok {
			g, known := bindParams.lookup(kw)
			if !known {
				p.errorf("'bind' : unknown keyword '%s'.", kw)
				return nil, false
			}
			rest = append(rest, params[i:min(i+1+g.args, len(params))]...)
			i += g.args
			continue
		}
		v := arg(params, i+1)
		if n == 1 && v == "" {
			p.errorf("'bind' : '%s' : missing value.", kw)
			return nil, false
		}
		i += n
		switch kw {
		case "ssl":
			ssl = true
		case "strict-sni":
			t.StrictSNI = true
		case "no-tls-tickets":
			t.NoTLSTickets = true
		case "crt", "crt-list":
			t.Certs = append(t.Certs, balancer.CertSource{Path: v, List: kw == "crt-list"})
		case "alpn":
			t.ALPN = strings.Split(v, ",")
			for _, proto := range t.ALPN {
				if proto == "" || len(proto) > 255 {
					p.errorf("'bind' : 'alpn' : invalid protocol name in '%s'.", v)
					return nil, false
				}
			}
		case "ssl-min-ver", "ssl-max-ver":
			if balancer.TLSVersionIndex(v) < 0 {
				p.errorf("'bind' : '%s' : unknown ssl/tls version string '%s' (expects one of %s).", kw, v, strings.Join(balancer.TLSVersions, ", "))
				return nil, false
			}
			if kw == "ssl-min-ver" {
				t.MinVer = v
			} else {
				t.MaxVer = v
			}
		case "ciphers":
			t.Ciphers = v
		case "ciphersuites":
			t.CipherSuites = v
		case "verify":
			if v != "none" && v != "optional" && v != "required" {
				p.errorf("'bind' : 'verify' : unknown verify method '%s', only 'none', 'optional', and 'required' are supported.", v)
				return nil, false
			}
			t.Verify = v
		case "ca-file":
			t.CAFile = v
		}
	}
	for i := 0; i < len(rest); i++ {
		g, _ := bindParams.lookup(rest[i])
		p.unsupported(g, "bind parameter '"+rest[i]+"'")
		i += g.args
	}
	if !ssl {
		if len(t.Certs) > 0 || t.ALPN != nil || t.MinVer != "" || t.MaxVer != "" || t.Ciphers != "" || t.CipherSuites != "" ||
			t.StrictSNI || t.NoTLSTickets || t.Verify != "" || t.CAFile != "" {
			p.errorf("'bind' : TLS settings without 'ssl' are not supported by Tether (the listener would speak clear text).")
			return nil, false
		}
		return nil, true
	}
	if len(t.Certs) == 0 {
		p.errorf("'bind' : no SSL certificate specified for bind (use 'crt' or 'crt-list').")
		return nil, false
	}
	return &t, true
}

// parseSSLDefaultBind handles the global ssl-default-bind-options,
// ssl-default-bind-ciphers, ssl-default-bind-ciphersuites, crt-base and
// ca-base lines. Their values are checked only when a bind uses TLS: a
// file without one runs the same whatever they say.
func (p *parser) parseSSLDefaultBind(args []string) {
	d := &p.cfg.Global.SSLDefaultBind
	kw := args[0]
	if len(args) < 2 {
		p.errorf("global statement '%s' expects an argument.", kw)
		return
	}
	if p.sslLines == nil {
		p.sslLines = make(map[string]int)
	}
	p.sslLines[kw] = p.line
	switch kw {
	case "ssl-default-bind-options":
		d.Options = append(d.Options, args[1:]...)
	case "ssl-default-bind-ciphers":
		d.Ciphers = args[1]
	case "ssl-default-bind-ciphersuites":
		d.CipherSuites = args[1]
	case "crt-base":
		d.CrtBase = args[1]
	case "ca-base":
		d.CABase = args[1]
	}
}

// checkTLSBinds checks the global TLS lines when a bind uses TLS, then
// loads the certificates of every TLS bind line, as HAProxy does when it
// reads the file, and reports what fails on its line.
func (p *parser) checkTLSBinds() {
	if len(p.tlsBinds) == 0 {
		return
	}
	d := p.cfg.Global.SSLDefaultBind
	ok := true
	check := func(kw string, err error) {
		if err != nil {
			p.errorAt(p.sslLines[kw], "'%s' : %v.", kw, err)
			ok = false
		}
	}
	_, err := balancer.ParseSSLOptions(d.Options)
	check("ssl-default-bind-options", err)
	_, err = tlsbind.CipherSuites(d.Ciphers)
	check("ssl-default-bind-ciphers", err)
	check("ssl-default-bind-ciphersuites", tlsbind.CheckCipherSuites13(d.CipherSuites))
	if !ok {
		return
	}
	for _, b := range p.tlsBinds {
		if _, err := tlsbind.Build(*b.tls, d); err != nil {
			p.errorAt(b.line, "'bind' : %v.", err)
		}
	}
}
