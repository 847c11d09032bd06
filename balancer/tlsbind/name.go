package tlsbind

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// shortNames are OpenSSL's short names of the usual name attributes.
var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "serialNumber", "2.5.4.9": "street", "2.5.4.17": "postalCode", "1.2.840.113549.1.9.1": "emailAddress",
	"0.9.2342.19200300.100.1.25": "DC",
}

// Oneline writes a name as OpenSSL's X509_NAME_oneline: "/C=FR/O=x/CN=y",
// attributes in certificate order.
func Oneline(raw []byte) string {
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(raw, &seq); err != nil {
		return ""
	}
	var b strings.Builder
	for _, rdn := range seq {
		for _, atv := range rdn {
			b.WriteString("/" + attrName(atv.Type) + "=" + fmt.Sprint(atv.Value))
		}
	}
	return b.String()
}

func attrName(oid asn1.ObjectIdentifier) string {
	if s, ok := shortNames[oid.String()]; ok {
		return s
	}
	return oid.String()
}
