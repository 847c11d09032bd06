package rules

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// method is a pattern matching method ("-m").
type method int

const (
	mStr method = iota
	mBeg
	mEnd
	mSub
	mReg
	mDom
	mDir
	mLen
	mFound
	mBool
	mInt
	mIP
)

var methodNames = map[string]method{
	"str": mStr, "beg": mBeg, "end": mEnd, "sub": mSub, "reg": mReg, "dom": mDom, "dir": mDir,
	"len": mLen, "found": mFound, "bool": mBool, "int": mInt, "ip": mIP,
}

// intRange is one integer pattern: lo..hi inclusive.
type intRange struct{ lo, hi int64 }

// matcher holds an ACL expression's method and its pattern references:
// the values written on its line and its pattern files, each published
// for the request path by the reference (see PatternRef).
type matcher struct {
	method method
	fold   bool // -i
	uses   []*refUse
}

// parseIntPattern parses "N", "LO:HI", "LO:", ":HI", or N after an
// operator (eq, ge, gt, le, lt).
func parseIntPattern(p, op string) (intRange, error) {
	num := func(s string) (int64, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("'%s' is not a number", s)
		}
		return n, nil
	}
	if op != "" {
		n, err := num(p)
		if err != nil {
			return intRange{}, err
		}
		switch op {
		case "eq":
			return intRange{n, n}, nil
		case "ge":
			return intRange{n, maxInt}, nil
		case "gt":
			return intRange{n + 1, maxInt}, nil
		case "le":
			return intRange{minInt, n}, nil
		case "lt":
			return intRange{minInt, n - 1}, nil
		}
	}
	lo, hi, isRange := strings.Cut(p, ":")
	if !isRange {
		n, err := num(p)
		return intRange{n, n}, err
	}
	r := intRange{minInt, maxInt}
	var err error
	if lo != "" {
		if r.lo, err = num(lo); err != nil {
			return r, err
		}
	}
	if hi != "" {
		if r.hi, err = num(hi); err != nil {
			return r, err
		}
	}
	return r, nil
}

const (
	maxInt = int64(^uint64(0) >> 1)
	minInt = -maxInt - 1
)

// parseIPPattern parses an address or a CIDR block; an IPv4 mask may be
// given in dotted form.
func parseIPPattern(p string) (netip.Prefix, error) {
	if addr, mask, ok := strings.Cut(p, "/"); ok {
		if m, err := netip.ParseAddr(mask); err == nil && m.Is4() {
			a, err := netip.ParseAddr(addr)
			if err != nil {
				return netip.Prefix{}, fmt.Errorf("'%s' is not a valid IPv4 or IPv6 address", p)
			}
			b := m.As4()
			bits := 0
			for _, x := range b {
				for x&0x80 != 0 {
					bits++
					x <<= 1
				}
			}
			return netip.PrefixFrom(a, bits).Masked(), nil
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("'%s' is not a valid IPv4 or IPv6 address", p)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(p)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("'%s' is not a valid IPv4 or IPv6 address", p)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// str matches a string sample.
func (m *matcher) str(s string) bool {
	switch m.method {
	case mFound:
		return true
	case mBool:
		return s != ""
	case mLen:
		return m.inRange(int64(len(s)))
	case mInt:
		n, err := strconv.ParseInt(s, 10, 64)
		return err == nil && m.inRange(n)
	case mIP:
		a, err := netip.ParseAddr(s)
		return err == nil && m.ip(a)
	case mReg:
		for _, u := range m.uses {
			for _, re := range u.cur.Load().regs {
				if re.MatchString(s) {
					return true
				}
			}
		}
		return false
	}
	for _, u := range m.uses {
		for _, p := range u.cur.Load().strs {
			if m.strMatch(s, p) {
				return true
			}
		}
	}
	return false
}

func (m *matcher) strMatch(s, p string) bool {
	eq := func(a, b string) bool {
		if m.fold {
			return strings.EqualFold(a, b)
		}
		return a == b
	}
	switch m.method {
	case mStr:
		return eq(s, p)
	case mBeg:
		return len(s) >= len(p) && eq(s[:len(p)], p)
	case mEnd:
		return len(s) >= len(p) && eq(s[len(s)-len(p):], p)
	case mSub:
		return index(s, p, m.fold, "") >= 0
	case mDom:
		return index(s, p, m.fold, "./:?") >= 0
	case mDir:
		return index(s, p, m.fold, "/") >= 0
	}
	return false
}

// index returns the first position of p in s, comparing case-insensitively
// when fold is set; with delims, only an occurrence bounded by a delimiter
// or an end of s on both sides counts.
func index(s, p string, fold bool, delims string) int {
	for i := 0; i+len(p) <= len(s); i++ {
		w := s[i : i+len(p)]
		if fold && !strings.EqualFold(w, p) || !fold && w != p {
			continue
		}
		if delims == "" {
			return i
		}
		if (i == 0 || strings.IndexByte(delims, s[i-1]) >= 0) &&
			(i+len(p) == len(s) || strings.IndexByte(delims, s[i+len(p)]) >= 0) {
			return i
		}
	}
	return -1
}

// integer matches an integer sample.
func (m *matcher) integer(n int64) bool {
	switch m.method {
	case mFound:
		return true
	case mBool:
		return n != 0
	case mInt:
		return m.inRange(n)
	case mIP:
		return false
	}
	return m.str(strconv.FormatInt(n, 10))
}

// inRange reports whether n is in one of the integer patterns.
func (m *matcher) inRange(n int64) bool {
	for _, u := range m.uses {
		for _, r := range u.cur.Load().ints {
			if n >= r.lo && n <= r.hi {
				return true
			}
		}
	}
	return false
}

// boolean matches a boolean sample.
func (m *matcher) boolean(b bool) bool {
	switch m.method {
	case mFound:
		return true
	case mBool:
		return b
	}
	n := int64(0)
	if b {
		n = 1
	}
	return m.integer(n)
}

// ip matches an address sample. An IPv4-mapped IPv6 address matches IPv4
// patterns.
func (m *matcher) ip(a netip.Addr) bool {
	switch m.method {
	case mFound:
		return true
	case mIP:
		a = a.Unmap()
		for _, u := range m.uses {
			for _, p := range u.cur.Load().nets {
				if p.Contains(a) {
					return true
				}
			}
		}
		return false
	}
	return m.str(a.String())
}
