package discovery

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// respCause classifies a DNS response the way HAProxy does
// (RSLV_RESP_* in its resolvers code); each cause feeds one counter of
// show resolvers.
type respCause int

const (
	respValid respCause = iota
	respInvalid
	respQueryCount
	respWrongName
	respNX
	respRefused
	respAncountZero
	respCNAMEError
	respTruncated
	respError
)

// dnsHeaderSize and dnsMinRecordSize bound the number of answer records a
// response may announce: (accepted_payload_size - 12) / 6, as in HAProxy.
const (
	dnsHeaderSize    = 12
	dnsMinRecordSize = 6
	dnsMaxMessage    = 65535
)

// record is one A, AAAA or SRV record of a response.
type record struct {
	typ  uint16
	addr netip.Addr // A, AAAA
	// target is the SRV target in wire label form without the root label,
	// as HAProxy keys it; host is the same name in presentation form,
	// lower case, without the trailing dot.
	target   string
	host     string
	port     uint16
	weight   uint16
	priority uint16
}

// key returns the record's position key: XXH32 of its data seeded with its
// type, which is how HAProxy orders the records it keeps.
func (r *record) key() uint32 {
	switch r.typ {
	case dns.TypeA, dns.TypeAAAA:
		return xxh32(r.addr.AsSlice(), uint32(r.typ))
	default:
		return xxh32([]byte(r.target), uint32(r.typ))
	}
}

// message is a response that passed validation.
type message struct {
	qname string // question name as received, without the trailing dot
	qtype uint16
	// answers holds the A, AAAA and SRV answer records in packet order.
	answers []record
	// extra holds the A and AAAA additional records, by owner name
	// (lower case, no trailing dot), for SRV responses only.
	extra []extraRecord
}

type extraRecord struct {
	name string
	rec  record
}

// buildQuery forges the query HAProxy sends: recursion desired, one
// question, and an EDNS0 OPT record announcing payloadSize.
func buildQuery(id uint16, name string, qtype uint16, payloadSize int) ([]byte, error) {
	m := new(dns.Msg)
	m.Id = id
	m.RecursionDesired = true
	m.Question = []dns.Question{{Name: dns.Fqdn(name), Qtype: qtype, Qclass: dns.ClassINET}}
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	opt.SetUDPSize(uint16(payloadSize))
	m.Extra = []dns.RR{opt}
	return m.Pack()
}

// parseResponse validates a response following HAProxy's rules
// (resolv_validate_dns_response): the rcode is checked before anything
// else, exactly one question, at least one and at most maxAnswers answers,
// a truncated answer is refused unless it answers an SRV query, and each
// answer must be owned by the queried name or the previous CNAME target.
// It never panics, whatever buf holds.
func parseResponse(buf []byte, maxAnswers int) (*message, respCause) {
	if len(buf) <= 4 {
		return nil, respInvalid
	}
	flags := binary.BigEndian.Uint16(buf[2:])
	switch flags & 0x000f {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, respNX
	case dns.RcodeRefused:
		return nil, respRefused
	default:
		return nil, respError
	}
	if len(buf) <= 6 {
		return nil, respInvalid
	}
	if binary.BigEndian.Uint16(buf[4:]) != 1 {
		return nil, respQueryCount
	}
	if len(buf) <= 8 {
		return nil, respInvalid
	}
	ancount := int(binary.BigEndian.Uint16(buf[6:]))
	if ancount == 0 {
		return nil, respAncountZero
	}
	if ancount > maxAnswers || len(buf) <= dnsHeaderSize {
		return nil, respInvalid
	}

	var m dns.Msg
	err := m.Unpack(buf)
	if len(m.Question) != 1 {
		return nil, respInvalid
	}
	q := m.Question[0]
	isSRV := q.Qtype == dns.TypeSRV
	if !isSRV && m.Truncated {
		return nil, respTruncated
	}
	// HAProxy reads the authority and additional sections only for SRV
	// queries, so trailing garbage after the answers is fatal only there.
	if len(m.Answer) != ancount || (isSRV && err != nil) {
		return nil, respInvalid
	}

	out := &message{qname: strings.TrimSuffix(q.Name, "."), qtype: q.Qtype}
	prev := q.Name
	for i, rr := range m.Answer {
		h := rr.Header()
		if !isSRV && h.Name != prev {
			if i == 0 {
				return nil, respInvalid
			}
			return nil, respCNAMEError
		}
		switch v := rr.(type) {
		case *dns.A:
			addr, ok := netip.AddrFromSlice(v.A.To4())
			if !ok {
				return nil, respInvalid
			}
			out.answers = append(out.answers, record{typ: dns.TypeA, addr: addr})
		case *dns.AAAA:
			addr, ok := netip.AddrFromSlice(v.AAAA.To16())
			if !ok {
				return nil, respInvalid
			}
			out.answers = append(out.answers, record{typ: dns.TypeAAAA, addr: addr})
		case *dns.CNAME:
			if i == len(m.Answer)-1 {
				return nil, respCNAMEError
			}
			prev = v.Target
		case *dns.SRV:
			label, ok := wireLabel(v.Target)
			if !ok || len(label) == 0 {
				return nil, respInvalid
			}
			out.answers = append(out.answers, record{
				typ: dns.TypeSRV, target: label, host: hostName(v.Target),
				port: v.Port, weight: v.Weight, priority: v.Priority,
			})
		}
	}
	if isSRV {
		for _, rr := range m.Extra {
			var rec record
			switch v := rr.(type) {
			case *dns.A:
				addr, ok := netip.AddrFromSlice(v.A.To4())
				if !ok {
					continue
				}
				rec = record{typ: dns.TypeA, addr: addr}
			case *dns.AAAA:
				addr, ok := netip.AddrFromSlice(v.AAAA.To16())
				if !ok {
					continue
				}
				rec = record{typ: dns.TypeAAAA, addr: addr}
			default:
				continue
			}
			out.extra = append(out.extra, extraRecord{name: hostName(rr.Header().Name), rec: rec})
		}
	}
	return out, respValid
}

// wireLabel returns name in DNS wire format without its root label
// (3www7example3com), the form HAProxy hashes and compares.
func wireLabel(name string) (string, bool) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil || n == 0 {
		return "", false
	}
	return string(buf[:n-1]), true
}

// hostName returns name in lower case without its trailing dot.
func hostName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}
