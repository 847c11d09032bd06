package balancer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"

	"github.com/cespare/xxhash/v2"
)

// DynamicCookie returns the cookie value HAProxy generates for a server of a
// backend with dynamic cookies: XXH64 (seed 0) of the key's bytes, the
// address's bytes in network order (4 for IPv4, 16 for IPv6) and the port as
// a 4-byte big-endian integer, printed as 16 lowercase hex digits. It returns
// "" when the key is empty or the address is not an IP address, the cases
// where HAProxy generates nothing.
func DynamicCookie(key string, addr netip.Addr, port int32) string {
	if key == "" || !addr.IsValid() {
		return ""
	}
	var buf [128]byte
	b := append(buf[:0], key...)
	if addr.Is4() {
		a4 := addr.As4()
		b = append(b, a4[:]...)
	} else {
		a16 := addr.As16()
		b = append(b, a16[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(port))
	var out [16]byte
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], xxhash.Sum64(b))
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// KeyFingerprint returns a short, non-reversible identifier of a
// dynamic-cookie key, safe to show and log: the first 8 hex digits of its
// SHA-256. It returns "" for an empty key.
func KeyFingerprint(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:4])
}

// The cookie date alphabet: standard base64.
const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// appendCookieDate appends HAProxy's 5-character encoding of a Unix time in
// a persistence cookie: (seconds+3)/4, low 30 bits, 6 bits a character, most
// significant first.
func appendCookieDate(dst []byte, unixSeconds int64) []byte {
	v := uint32((unixSeconds + 3) >> 2)
	for shift := 24; shift >= 0; shift -= 6 {
		dst = append(dst, b64Alphabet[(v>>uint(shift))&0x3f])
	}
	return dst
}

// parseCookieDate decodes a 5-character cookie date into Unix seconds. It
// returns 0 for an invalid encoding or a zero value, which HAProxy ignores.
func parseCookieDate(s string) int64 {
	if len(s) != 5 {
		return 0
	}
	var v uint32
	for i := 0; i < 5; i++ {
		c := s[i]
		var d byte
		switch {
		case c >= 'A' && c <= 'Z':
			d = c - 'A'
		case c >= 'a' && c <= 'z':
			d = c - 'a' + 26
		case c >= '0' && c <= '9':
			d = c - '0' + 52
		case c == '+':
			d = 62
		case c == '/':
			d = 63
		default:
			return 0
		}
		v = v<<6 | uint32(d)
	}
	return int64(v) << 2
}

// PreviewCookie returns the dynamic cookie a server of the named backend
// would get at addr and port with the backend's current key, without
// revealing the key; "" when the backend has no key. It lets an operator
// see what a server's cookie becomes after an address change.
func (b *Balancer) PreviewCookie(backend string, addr netip.Addr, port int) (string, error) {
	be := b.tab.Load().lookupBackend(backend)
	if be == nil {
		return "", ErrNoSuchBackend
	}
	if port < 0 || port > 65535 {
		return "", ErrInvalid
	}
	return DynamicCookie(be.cfg.DynamicCookieKey.Reveal(), addr.Unmap(), int32(port)), nil
}
