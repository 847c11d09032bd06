package tlsbind

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// openSSLCiphers maps the OpenSSL names of the TLS 1.2 and older cipher
// suites crypto/tls implements to its identifiers.
var openSSLCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA256":     tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-SHA256":       tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-DES-CBC3-SHA":        tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA256":                 tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	"DES-CBC3-SHA":                  tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
}

// CipherSuites returns the crypto/tls suites of an OpenSSL cipher list
// ("ciphers"), nil for "" (crypto/tls's defaults). Only explicit suite
// names are accepted: keywords such as HIGH or !aNULL, and suites
// crypto/tls does not implement (DHE, CCM, PSK…), are refused, since
// dropping them would change which clients can connect.
func CipherSuites(list string) ([]uint16, error) {
	if list == "" {
		return nil, nil
	}
	var ids []uint16
	for _, name := range strings.Split(list, ":") {
		id, ok := openSSLCiphers[name]
		if !ok {
			return nil, fmt.Errorf("cipher '%s' of 'ciphers %s' is not supported by Tether (only explicit suite names that crypto/tls implements: %s)", name, list, strings.Join(cipherNames(), ":"))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func cipherNames() []string {
	names := make([]string, 0, len(openSSLCiphers))
	for n := range openSSLCiphers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// tls13Suites are the TLS 1.3 suites crypto/tls always enables, which it
// does not let a server choose.
var tls13Suites = []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}

// CheckCipherSuites13 accepts a "ciphersuites" list that names exactly
// the TLS 1.3 suites crypto/tls enables (in any order), and refuses any
// other: crypto/tls cannot restrict or extend them.
func CheckCipherSuites13(list string) error {
	if list == "" {
		return nil
	}
	names := strings.Split(list, ":")
	for _, n := range names {
		if !slices.Contains(tls13Suites, n) {
			return fmt.Errorf("'ciphersuites %s' is not supported by Tether: crypto/tls always offers exactly %s", list, strings.Join(tls13Suites, ":"))
		}
	}
	for _, n := range tls13Suites {
		if !slices.Contains(names, n) {
			return fmt.Errorf("'ciphersuites %s' is not supported by Tether: crypto/tls always offers exactly %s", list, strings.Join(tls13Suites, ":"))
		}
	}
	return nil
}
