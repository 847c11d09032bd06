package rules

import (
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
)

// fetchKind names a sample fetch.
type fetchKind int

const (
	fHdr     fetchKind = iota // hdr(name[,occ]), values split at commas
	fFhdr                     // req.fhdr(name[,occ]), whole lines
	fHdrCnt                   // hdr_cnt(name)
	fFhdrCnt                  // req.fhdr_cnt(name)
	fHdrVal                   // req.hdr_val(name): the value as an integer
	fPath
	fURL
	fQuery
	fBase // Host header and path
	fURLParam
	fMethod
	fSrc
	fDstPort
	fSSLFc
	fSSLFcSNI
	fCook
	fCookCnt
	fReqVer
	fAlwaysTrue
	fAlwaysFalse
)

// sampleType is what a fetch returns; it picks the default method.
type sampleType int

const (
	tString sampleType = iota
	tInt
	tBool
	tIP
)

type fetchDef struct {
	kind fetchKind
	typ  sampleType
	// arg: 0 none, 1 optional, 2 required.
	arg int
}

// fetches are the sample fetches conditions may use, by name.
var fetches = map[string]fetchDef{
	"hdr": {fHdr, tString, 2}, "req.hdr": {fHdr, tString, 2},
	"req.fhdr": {fFhdr, tString, 2}, "fhdr": {fFhdr, tString, 2},
	"hdr_cnt": {fHdrCnt, tInt, 2}, "req.hdr_cnt": {fHdrCnt, tInt, 2},
	"req.fhdr_cnt": {fFhdrCnt, tInt, 2}, "fhdr_cnt": {fFhdrCnt, tInt, 2},
	"hdr_val": {fHdrVal, tInt, 2}, "req.hdr_val": {fHdrVal, tInt, 2},
	"path": {fPath, tString, 0}, "url": {fURL, tString, 0}, "query": {fQuery, tString, 0},
	"base":      {fBase, tString, 0},
	"url_param": {fURLParam, tString, 2}, "urlp": {fURLParam, tString, 2},
	"method": {fMethod, tString, 0},
	"src":    {fSrc, tIP, 0}, "dst_port": {fDstPort, tInt, 0},
	"ssl_fc": {fSSLFc, tBool, 0}, "ssl_fc_sni": {fSSLFcSNI, tString, 0},
	"req.cook": {fCook, tString, 2}, "cook": {fCook, tString, 2},
	"req.cook_cnt": {fCookCnt, tInt, 2}, "cook_cnt": {fCookCnt, tInt, 2},
	"req.ver": {fReqVer, tString, 0}, "req_ver": {fReqVer, tString, 0},
	"always_true": {fAlwaysTrue, tBool, 0}, "always_false": {fAlwaysFalse, tBool, 0},
}

// derivedBases are the fetches with "_beg", "_end"… ACL derivatives.
var derivedBases = map[string]string{
	"hdr": "hdr", "path": "path", "url": "url", "base": "base", "urlp": "urlp", "cook": "cook",
	"req.hdr": "req.hdr", "req.cook": "req.cook",
}

// fetch is one parsed sample fetch with its argument.
type fetch struct {
	def  fetchDef
	name string // header name (canonical), parameter or cookie name
	occ  int    // header occurrence: 0 all, >0 from the first, <0 from the last
}

// parseCriterion parses "name", "name(args)" or a derivative such as
// "hdr_beg(host)", returning the fetch and its implied method.
func parseCriterion(word string) (fetch, method, error) {
	name, args, hasArgs := strings.Cut(word, "(")
	if hasArgs {
		if !strings.HasSuffix(args, ")") {
			return fetch{}, 0, fmt.Errorf("missing closing ')' after arguments to fetch keyword '%s'", name)
		}
		args = strings.TrimSuffix(args, ")")
	}
	if strings.Contains(args, ")") || strings.Contains(name, ",") {
		return fetch{}, 0, fmt.Errorf("converters are not supported: '%s'", word)
	}
	def, ok := fetches[name]
	m := defaultMethod(def.typ)
	if !ok {
		i := strings.LastIndexByte(name, '_')
		if i < 0 {
			return fetch{}, 0, fmt.Errorf("unknown fetch method '%s' in ACL expression '%s'", name, word)
		}
		base, ok := derivedBases[name[:i]]
		meth, okm := methodNames[name[i+1:]]
		if !ok || !okm || meth == mInt || meth == mIP || meth == mBool {
			return fetch{}, 0, fmt.Errorf("unknown fetch method '%s' in ACL expression '%s'", name, word)
		}
		def, m = fetches[base], meth
	}
	f := fetch{def: def}
	switch {
	case def.arg == 0 && hasArgs && args != "":
		return fetch{}, 0, fmt.Errorf("fetch method '%s' takes no argument", name)
	case def.arg == 2 && args == "":
		return fetch{}, 0, fmt.Errorf("fetch method '%s' expects an argument", name)
	}
	switch def.kind {
	case fHdr, fFhdr, fHdrCnt, fFhdrCnt, fHdrVal:
		h, occ, hasOcc := strings.Cut(args, ",")
		f.name = textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(h))
		if hasOcc {
			n, err := strconv.Atoi(strings.TrimSpace(occ))
			if err != nil {
				return fetch{}, 0, fmt.Errorf("invalid occurrence '%s' in '%s'", occ, word)
			}
			f.occ = n
		}
	case fURLParam, fCook, fCookCnt:
		if strings.Contains(args, ",") {
			return fetch{}, 0, fmt.Errorf("only one argument is supported in '%s'", word)
		}
		f.name = args
	}
	return f, m, nil
}

func defaultMethod(t sampleType) method {
	switch t {
	case tInt:
		return mInt
	case tBool:
		return mBool
	case tIP:
		return mIP
	}
	return mStr
}

// match reports whether any sample the fetch finds in r matches m.
func (f *fetch) match(r *Request, m *matcher) bool {
	switch f.def.kind {
	case fHdr, fFhdr:
		split := f.def.kind == fHdr
		if f.occ != 0 {
			v, ok := r.occurrence(f.name, split, f.occ)
			return ok && m.str(v)
		}
		return r.eachHeader(f.name, split, m.str)
	case fHdrCnt, fFhdrCnt:
		n := 0
		r.eachHeader(f.name, f.def.kind == fHdrCnt, func(string) bool { n++; return false })
		return m.integer(int64(n))
	case fHdrVal:
		v, ok := r.occurrence(f.name, true, -1)
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return err == nil && m.integer(n)
	case fPath:
		return m.str(r.path())
	case fURL:
		return m.str(r.Target)
	case fQuery:
		q, ok := r.query()
		return ok && m.str(q)
	case fBase:
		return m.str(r.base())
	case fURLParam:
		v, ok := r.urlParam(f.name, '&')
		return ok && m.str(v)
	case fMethod:
		return m.str(r.Method)
	case fSrc:
		return r.Src.IsValid() && m.ip(r.Src)
	case fDstPort:
		return m.integer(int64(r.DstPort))
	case fSSLFc:
		return m.boolean(r.TLS)
	case fSSLFcSNI:
		return r.SNI != "" && m.str(r.SNI)
	case fCook:
		return r.eachCookie(f.name, m.str)
	case fCookCnt:
		n := 0
		r.eachCookie(f.name, func(string) bool { n++; return false })
		return m.integer(int64(n))
	case fReqVer:
		return m.str(r.Version)
	case fAlwaysTrue:
		return m.boolean(true)
	case fAlwaysFalse:
		return m.boolean(false)
	}
	return false
}

// occurrence returns one value of a header: the n-th from the first when n
// is positive, from the last when negative.
func (r *Request) occurrence(key string, split bool, n int) (string, bool) {
	var vals [16]string
	all := vals[:0]
	r.eachHeader(key, split, func(v string) bool { all = append(all, v); return false })
	switch {
	case n > 0 && n <= len(all):
		return all[n-1], true
	case n < 0 && -n <= len(all):
		return all[len(all)+n], true
	}
	return "", false
}

// base returns the Host header followed by the path, as HAProxy's base.
func (r *Request) base() string {
	if r.Host == "" {
		return r.path()
	}
	return r.Host + r.path()
}
