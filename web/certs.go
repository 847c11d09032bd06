package web

import (
	"crypto/sha1"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"tether/balancer"
	"tether/balancer/runtimeapi"
	"tether/balancer/tlsbind"
	"tether/templates"
)

// certWarning is how close to its expiry a certificate is flagged, as
// most monitoring does.
const certWarning = 14 * 24 * time.Hour

// maxPEM caps the PEM bundle the certificate form accepts; a leaf, a
// chain of a few certificates and a key fit many times over.
const maxPEM = 48 << 10

// tlsBindRows returns the TLS binds of the frontends in HAProxy words.
func tlsBindRows(snap *balancer.Snapshot) []templates.TLSBindRow {
	var rows []templates.TLSBindRow
	orDefault := func(s string) string {
		if s == "" {
			return "default"
		}
		return s
	}
	for _, f := range snap.Frontends {
		for _, b := range f.Config.Binds {
			t := b.TLS
			if t == nil {
				continue
			}
			var crt []string
			for _, c := range t.Certs {
				if c.List {
					crt = append(crt, "crt-list "+c.Path)
				} else {
					crt = append(crt, "crt "+c.Path)
				}
			}
			verify := orDefault(t.Verify)
			if t.CAFile != "" {
				verify += " ca-file " + t.CAFile
			}
			rows = append(rows, templates.TLSBindRow{
				Frontend: f.Config.Name, Addr: b.Addr, Crt: strings.Join(crt, " "),
				ALPN:      orDefault(strings.Join(t.ALPN, ",")),
				Versions:  versions(t.MinVer, t.MaxVer),
				StrictSNI: yesNo(t.StrictSNI), Verify: verify,
			})
		}
	}
	return rows
}

// certRows returns the certificates the TLS binds serve now.
func (s *Server) certRows(now time.Time) []templates.CertRow {
	if s.deps.Certificates == nil {
		return nil
	}
	st := s.deps.Certificates()
	if st == nil {
		return nil
	}
	paths, _ := st.Paths()
	rows := make([]templates.CertRow, 0, len(paths))
	for _, p := range paths {
		c, ok := st.Current(p)
		if !ok || c.TLS.Leaf == nil {
			continue
		}
		rows = append(rows, certRow(p, c, now))
	}
	return rows
}

func certRow(path string, c *tlsbind.Certificate, now time.Time) templates.CertRow {
	leaf := c.TLS.Leaf
	sans := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	row := templates.CertRow{
		Key: "c:" + path, Path: path,
		Subject: tlsbind.Oneline(leaf.RawSubject), SANs: strings.Join(sans, ", "),
		Issuer:   tlsbind.Oneline(leaf.RawIssuer),
		NotAfter: leaf.NotAfter.UTC().Format("2006-01-02 15:04 UTC"),
		SHA1:     fmt.Sprintf("%X", sha1.Sum(leaf.Raw)),
		Expiry:   "ok",
	}
	left := leaf.NotAfter.Sub(now)
	switch {
	case left <= 0:
		row.Expiry = "expired"
		row.Left = fmt.Sprintf("✖ expired %s ago", spanText(-left))
	case left < certWarning:
		row.Expiry = "warn"
		row.Left = fmt.Sprintf("⚠ in %s", spanText(left))
	default:
		row.Left = "in " + spanText(left)
	}
	return row
}

// spanText says a time span in whole days, or hours under two days.
func spanText(d time.Duration) string {
	if d < time.Hour {
		return "under an hour"
	}
	if d < 48*time.Hour {
		if h := int(d.Hours()); h != 1 {
			return fmt.Sprintf("%d hours", h)
		}
		return "1 hour"
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// versions says the TLS versions a bind accepts as its line sets them.
func versions(min, max string) string {
	switch {
	case min == "" && max == "":
		return "default"
	case max == "":
		return min + " and later"
	case min == "":
		return "up to " + max
	case min == max:
		return min
	}
	return min + " – " + max
}

func certCells(c templates.CertRow) map[string]string {
	return map[string]string{
		"exp": c.Expiry, "subj": c.Subject, "sans": c.SANs, "iss": c.Issuer,
		"na": c.NotAfter, "left": c.Left, "sha1": c.SHA1,
	}
}

// handleSSLCert replaces a certificate as an operator would over the
// socket: "set ssl cert F <<" with the pasted bundle, then "commit ssl
// cert F". When the commit fails the transaction is aborted, so a refused
// bundle changes nothing. The bundle is never echoed back.
func (s *Server) handleSSLCert() http.HandlerFunc {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		path := r.PostFormValue("path")
		pem := strings.ReplaceAll(r.PostFormValue("pem"), "\r\n", "\n")
		if !s.servesCert(path) {
			return badRequest("No TLS bind serves this certificate file.")
		}
		if strings.TrimSpace(pem) == "" || len(pem) > maxPEM {
			return badRequest("Paste a PEM bundle: the certificate, its chain and the private key.")
		}
		pem = withoutBlankLines(pem)
		set := runtimeapi.Command{Words: []string{"set", "ssl", "cert", path}, Payload: pem}
		f := s.execute(r, set, cmd("commit", "ssl", "cert", path))
		if !f.OK && len(f.Commands) == 2 {
			s.execute(r, cmd("abort", "ssl", "cert", path))
		}
		s.respond(w, r, f, "/")
		return nil
	})
}

// withoutBlankLines returns a pasted bundle without its blank lines: on
// the socket an empty line ends a payload, so the bundle sent is one a
// socket client could send too.
func withoutBlankLines(pem string) string {
	var b strings.Builder
	for line := range strings.Lines(pem) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		b.WriteString(strings.TrimRight(line, " \t\n") + "\n")
	}
	return b.String()
}

// servesCert reports whether a TLS bind serves the certificate file path,
// so that only such paths reach a Runtime API command.
func (s *Server) servesCert(path string) bool {
	if path == "" || s.deps.Certificates == nil {
		return false
	}
	st := s.deps.Certificates()
	if st == nil {
		return false
	}
	_, ok := st.Current(path)
	return ok
}
