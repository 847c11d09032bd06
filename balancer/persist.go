package balancer

import (
	"net/http"
	"strings"
	"time"
)

// cookieRT is a backend's cookie settings prepared for the request path.
type cookieRT struct {
	cfg CookieConfig
	// suffix is what follows "; path=/" in an inserted cookie: domains,
	// HttpOnly, Secure and attributes, in HAProxy's order.
	suffix  string
	maxIdle int64 // seconds
	maxLife int64 // seconds
}

func newCookieRT(c *CookieConfig) *cookieRT {
	if c == nil || c.Name == "" {
		return nil
	}
	var sb strings.Builder
	for _, d := range c.Domains {
		sb.WriteString("; domain=")
		sb.WriteString(d)
	}
	if c.HTTPOnly {
		sb.WriteString("; HttpOnly")
	}
	if c.Secure {
		sb.WriteString("; Secure")
	}
	for _, a := range c.Attrs {
		sb.WriteString("; ")
		sb.WriteString(a)
	}
	return &cookieRT{cfg: *c, suffix: sb.String(), maxIdle: int64(c.MaxIdle / time.Second), maxLife: int64(c.MaxLife / time.Second)}
}

// cookieState says what the request's persistence cookie meant.
type cookieState uint8

const (
	ckNone    cookieState = iota // no cookie
	ckValid                      // named a running server
	ckDown                       // named a server that is down or in maintenance
	ckInvalid                    // named no server
	ckExpired                    // maxidle exceeded
	ckOld                        // maxlife exceeded
)

// persistence is the outcome of reading a request's cookies.
type persistence struct {
	server *serverRT // assigned by cookie (direct), or nil
	state  cookieState
	// downServer is the server a ckDown cookie named, for counters.
	downServer *serverRT
	firstDate  int64 // seconds, 0 when absent
	lastDate   int64
	// value is the persistence cookie's value as the request carried it:
	// the occurrence that assigned the server, else the last one read.
	value string
	// grace says what made the cookie old when it was computed with a
	// retired key or from a previous address (0 for a current cookie);
	// reissued records that the response gave the client the current one.
	grace    graceKind
	reissued bool
}

// readRequestCookies applies HAProxy's request-side cookie processing to r:
// it finds the server the persistence cookie names and, depending on the
// mode, removes the cookie (insert+indirect) or strips the server prefix
// (prefix) from what is forwarded. persist is option persist.
func (ck *cookieRT) readRequestCookies(r *http.Request, be *backendRT, now int64) persistence {
	var p persistence
	values := r.Header["Cookie"]
	if len(values) == 0 {
		return p
	}
	name := ck.cfg.Name
	for i, line := range values {
		if !strings.Contains(line, name) && !spacedEquals(line) {
			continue
		}
		rewritten, changed := ck.scanCookieLine(line, name, be, now, &p)
		if changed {
			values[i] = rewritten
		}
	}
	// Drop emptied Cookie lines.
	n := 0
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			values[n] = v
			n++
		}
	}
	if n == 0 {
		delete(r.Header, "Cookie")
	} else if n != len(values) {
		r.Header["Cookie"] = values[:n]
	}
	return p
}

// scanCookieLine processes one Cookie header line as HAProxy 2.6 does
// (http_manage_client_side_cookies): cookies are separated by ';' or ',',
// a value may be a quoted string holding either, attributes starting with
// '$' (RFC 2109) belong to the cookie before them and go with it, spaces
// around '=' are removed, and a removed cookie takes the delimiter and
// spaces after it (or before it, but for the first cookie). It returns the
// line to forward, empty to drop it, and whether it differs from the
// original.
func (ck *cookieRT) scanCookieLine(line, name string, be *backendRT, now int64, p *persistence) (string, bool) {
	var stack [256]byte
	buf := append(stack[:0], line...)
	changed, preserve := false, false
	delFrom := -1 // start of the block to delete, or -1
	// shrink removes n bytes of buf at i.
	shrink := func(i, n int) {
		copy(buf[i:], buf[i+n:])
		buf = buf[:len(buf)-n]
		changed = true
	}
	// deletePending removes the block from delFrom to next and returns
	// how far what followed it moved.
	deletePending := func(next int) int {
		from, end := delFrom, len(buf)
		to := next
		if from == 0 {
			// The first cookie: take the delimiter after it and spaces.
			if to < end {
				to++
			}
			for to < end && isSpHt(buf[to]) {
				to++
			}
		} else {
			// Keep the delimiter after the block, and a space after it
			// when there was room for one.
			for from > 0 && isSpHt(buf[from-1]) {
				from--
			}
			if to < end {
				buf[from] = buf[to]
				from++
				to++
				if from+1 < to {
					buf[from] = ' '
					from++
				}
				for to < end && isSpHt(buf[to]) {
					to++
				}
			}
		}
		shrink(from, to-from)
		delFrom = -1
		return from - to
	}
	first := true
	for prev, next := 0, 0; prev < len(buf); prev = next {
		attBeg := prev
		if !first {
			attBeg++
		}
		first = false
		for attBeg < len(buf) && isSpHt(buf[attBeg]) {
			attBeg++
		}
		// attEnd follows the last non-space before '=' or a delimiter.
		equal, attEnd := attBeg, attBeg
		for equal < len(buf) {
			c := buf[equal]
			if c == '=' || c == ',' || c == ';' {
				break
			}
			equal++
			if !isSpHt(c) {
				attEnd = equal
			}
		}
		valBeg, valEnd := equal, equal
		next = equal
		if equal < len(buf) && buf[equal] == '=' {
			valBeg = equal + 1
			for valBeg < len(buf) && isSpHt(buf[valBeg]) {
				valBeg++
			}
			next = cookieValueEnd(buf, valBeg)
			valEnd = next
			for valEnd > valBeg && isSpHt(buf[valEnd-1]) {
				valEnd--
			}
		}
		if attBeg < len(buf) && buf[attBeg] == '$' {
			continue
		}
		if equal == next {
			// No value: another application's, kept.
			preserve = true
			if delFrom >= 0 {
				next += deletePending(prev)
			}
			continue
		}
		if attEnd != equal {
			n := equal - attEnd
			shrink(attEnd, n)
			equal, valBeg, valEnd, next = equal-n, valBeg-n, valEnd-n, next-n
		}
		if valBeg > equal+1 {
			n := valBeg - (equal + 1)
			shrink(equal+1, n)
			valBeg, valEnd, next = valBeg-n, valEnd-n, next-n
		}
		if string(buf[attBeg:attEnd]) != name {
			preserve = true
			if delFrom >= 0 {
				next += deletePending(prev)
			}
			continue
		}
		// buf and line agree from here on, offset by what was removed.
		off := len(line) - len(buf)
		keep, replacement, replaced := ck.processCookie(line[valBeg+off:valEnd+off], be, now, p)
		switch {
		case replaced:
			// The replacement is the end of the value.
			n := valEnd - valBeg - len(replacement)
			shrink(valBeg, n)
			next -= n
			delFrom, preserve = -1, true
		case !keep && delFrom < 0:
			delFrom = prev
		}
	}
	if delFrom >= 0 {
		if preserve {
			buf = buf[:delFrom]
		} else {
			buf = buf[:0]
		}
		changed = true
	}
	if !changed {
		return line, false
	}
	return string(buf), true
}

// cookieValueEnd returns where the cookie value starting at b[i] ends: at
// the first ';' or ',' outside a quoted string, or at the end.
func cookieValueEnd(b []byte, i int) int {
	quoted, escaped := false, false
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case quoted:
			quoted = c != '"'
		case c == '"':
			quoted = true
		case c == ',' || c == ';':
			return i
		}
	}
	return i
}

func isSpHt(c byte) bool { return c == ' ' || c == '\t' }

// spacedEquals reports whether line has a space or tab next to an '=',
// which HAProxy removes from every Cookie line it parses.
func spacedEquals(line string) bool {
	return strings.Contains(line, " =") || strings.Contains(line, "= ") || strings.Contains(line, "\t=") || strings.Contains(line, "=\t")
}

// splitCookie splits " name=value " into name and value.
func splitCookie(item string) (string, string, bool) {
	eq := strings.IndexByte(item, '=')
	if eq < 0 {
		return "", "", false
	}
	return strings.TrimSpace(item[:eq]), strings.TrimSpace(item[eq+1:]), true
}

// processCookie handles one occurrence of the persistence cookie. It returns
// whether to keep it in the forwarded request and, for prefix mode, the
// value to forward instead.
func (ck *cookieRT) processCookie(val string, be *backendRT, now int64, p *persistence) (keep bool, replacement string, replaced bool) {
	if p.server == nil {
		p.value = val
	}
	srvVal, rest, delimited := ck.splitValue(val)
	prefixed := delimited && ck.cfg.Mode == CookiePrefix
	if delimited && !prefixed {
		last, first := cookieDates(rest)
		if last > 0 {
			p.lastDate = last
		}
		if first > 0 {
			p.firstDate = first
		}
		switch {
		case p.firstDate != 0 && ck.maxLife > 0 && (now-p.firstDate > ck.maxLife || p.firstDate-now > 86400):
			p.state, srvVal = ckOld, ""
			p.firstDate, p.lastDate = 0, 0
		case p.lastDate != 0 && ck.maxIdle > 0 && (now-p.lastDate > ck.maxIdle || p.lastDate-now > 86400):
			p.state, srvVal = ckExpired, ""
			p.firstDate, p.lastDate = 0, 0
		}
	}
	if srvVal != "" && p.server == nil {
		idx := be.byCookie[srvVal]
		if len(idx) == 0 && be.grace != nil {
			be.graceLookup(srvVal, now, p)
		}
		for _, i := range idx {
			s := be.servers.At(i)
			if s.running() || be.cfg.Persist {
				p.server = s
				if s.running() {
					p.state = ckValid
				} else {
					p.state = ckDown
				}
				break
			}
			p.state, p.downServer = ckDown, s
		}
	}
	if p.server == nil && p.state != ckDown && p.state != ckExpired && p.state != ckOld {
		p.state = ckInvalid
	}
	if prefixed {
		return true, rest, true
	}
	if ck.cfg.Mode == CookieInsert && ck.cfg.Indirect {
		return false, "", false
	}
	return true, "", false
}

// splitValue splits a persistence cookie's value at its first delimiter:
// '~' in prefix mode, before the application's value, else '|', before the
// dates. srvVal is the part naming a server; delimited is false without a
// delimiter, rest is then empty.
func (ck *cookieRT) splitValue(val string) (srvVal, rest string, delimited bool) {
	sep := byte('|')
	if ck.cfg.Mode == CookiePrefix {
		sep = '~'
	}
	if i := strings.IndexByte(val, sep); i >= 0 {
		return val[:i], val[i+1:], true
	}
	return val, "", false
}

// cookieDates decodes the dates following a cookie value's '|': the last
// seen date (maxidle), then after another '|' the first seen date
// (maxlife), in Unix seconds, 0 when absent or invalid.
func cookieDates(rest string) (last, first int64) {
	if len(rest) >= 5 {
		last = parseCookieDate(rest[:5])
	}
	if j := strings.IndexByte(rest, '|'); j >= 0 && len(rest)-j > 5 {
		first = parseCookieDate(rest[j+1 : j+6])
	}
	return last, first
}

// deletionCookie is the Set-Cookie value HAProxy sends when the chosen
// server has no cookie.
const deletionSuffix = "=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"

// processResponseCookies applies HAProxy's response-side processing to the
// server's Set-Cookie headers and inserts the persistence cookie when
// needed. It returns whether a cookie was inserted for a new session, and
// what happened to the persistence cookie in HAProxy's log letters: N
// (nothing), P (the server's kept), D (the server's deleted), R (the
// server's rewritten), I (inserted) or U (inserted to update its date).
//
// vals, when not nil, is the store of h's values (see keepValue), which
// an inserted cookie's value goes in when h has no Set-Cookie yet.
func (ck *cookieRT) processResponseCookies(h http.Header, r *http.Request, srv *serverRT, p *persistence, now int64, cacheable bool, vals *[]string) (inserted bool, flag byte) {
	direct := p.server != nil && p.server == srv
	// reissue: the client came with an old cookie of srv (a retired key,
	// a previous address) and gets srv's current one.
	reissue := direct && p.grace != 0 && srv.cookie != "" && !(ck.cfg.PostOnly && r.Method != http.MethodPost)
	found := false
	flag = 'N'
	if sc := h["Set-Cookie"]; len(sc) > 0 {
		n := 0
		for _, line := range sc {
			name, val, ok := splitCookie(firstAttr(line))
			if !ok || name != ck.cfg.Name {
				sc[n] = line
				n++
				continue
			}
			found = true
			switch {
			case ck.cfg.Preserve:
				sc[n] = line
				n++
				flag = 'P'
			case ck.cfg.Mode == CookieInsert || (direct && ck.cfg.Indirect):
				// Deleted: HAProxy inserts its own, or the client already has it.
				flag = 'D'
			case ck.cfg.Mode == CookieRewrite && srv.cookie != "":
				sc[n] = replaceCookieValue(line, val, srv.cookie)
				n++
				flag = 'R'
				p.reissued = reissue
			case ck.cfg.Mode == CookiePrefix && srv.cookie != "":
				sc[n] = replaceCookieValue(line, val, srv.cookie+"~"+val)
				n++
				flag = 'R'
				p.reissued = reissue
			default:
				sc[n] = line
				n++
				flag = 'P'
			}
		}
		if n == 0 {
			delete(h, "Set-Cookie")
		} else {
			h["Set-Cookie"] = sc[:n]
		}
	}
	if found && ck.cfg.Preserve {
		return false, flag
	}
	if ck.cfg.Mode != CookieInsert {
		if reissue && !p.reissued && ck.cfg.Mode != CookiePassive {
			// The old cookie is replaced as insert mode would set it;
			// in prefix mode the application's value follows the '~'.
			value := srv.cookie
			if _, app, ok := ck.splitValue(p.value); ok && ck.cfg.Mode == CookiePrefix {
				value += "~" + app
			}
			ck.appendSetCookie(h, ck.setCookieLine(value, p, now, nil), vals, cacheable)
			p.reissued = true
			flag = 'I'
		}
		return false, flag
	}
	if ck.cfg.PostOnly && r.Method != http.MethodPost {
		return false, flag
	}
	needDate := (ck.maxIdle > 0 || p.lastDate != 0) && (p.lastDate == 0 || p.lastDate-now < 0)
	if direct && !reissue && !needDate && !(ck.maxLife > 0 && p.firstDate == 0) && !(ck.maxLife == 0 && p.firstDate != 0) {
		return false, flag
	}
	flag = 'I'
	if srv.cookie != "" && direct && !reissue {
		// The server did not change: only the dates were updated.
		flag = 'U'
	}
	p.reissued = reissue
	ck.appendSetCookie(h, ck.setCookieLine(srv.cookie, p, now, srv), vals, cacheable)
	return srv.cookie != "" && !direct, flag
}

// appendSetCookie adds the persistence Set-Cookie line to h, its value
// kept in vals when h has none yet and vals is not nil, and nocache's
// "Cache-control: private" for a cacheable response.
func (ck *cookieRT) appendSetCookie(h http.Header, line string, vals *[]string, cacheable bool) {
	if vv := h["Set-Cookie"]; len(vv) > 0 || vals == nil {
		h["Set-Cookie"] = append(vv, line)
	} else {
		h["Set-Cookie"] = keepValue(vals, line, nil)
	}
	if ck.cfg.NoCache && cacheable {
		// HAProxy appends this line after the cookie. net/http writes
		// header keys in sorted order; a lowercase key sorts after every
		// canonical one, so it goes out after Set-Cookie, and in the
		// case HAProxy writes it.
		h["cache-control"] = append(h["cache-control"], "private")
	}
}

// insertLine is the Set-Cookie line that inserts a server's cookie,
// kept with the server's live state once made, with what it was made
// from: a first visit then costs neither formatting nor allocation.
type insertLine struct {
	ck     *cookieRT
	cookie string
	line   string
}

// setCookieLine returns the persistence Set-Cookie line giving value
// (deleting the cookie when value is ""), with the dates of maxidle and
// maxlife. srv, when not nil, is the server whose cookie value is: its
// line, which has no dates, is made once for these cookie settings.
func (ck *cookieRT) setCookieLine(value string, p *persistence, now int64, srv *serverRT) string {
	keep := srv != nil && value != "" && value == srv.cookie && ck.maxIdle == 0 && ck.maxLife == 0
	if keep {
		if l := srv.live.insert.Load(); l != nil && l.ck == ck && l.cookie == value {
			return l.line
		}
	}
	// Composed on the stack: the line is the only copy.
	var buf [256]byte
	b := append(buf[:0], ck.cfg.Name...)
	if value == "" {
		b = append(b, deletionSuffix...)
	} else {
		b = append(b, '=')
		b = append(b, value...)
		if ck.maxIdle > 0 || ck.maxLife > 0 {
			b = append(b, '|')
			b = appendCookieDate(b, now)
			if ck.maxLife > 0 {
				b = append(b, '|')
				if p.firstDate != 0 {
					b = appendCookieDate(b, p.firstDate)
				} else {
					b = appendCookieDate(b, now)
				}
			}
		}
		b = append(b, "; path=/"...)
	}
	b = append(b, ck.suffix...)
	line := string(b)
	if keep {
		srv.live.insert.Store(&insertLine{ck: ck, cookie: value, line: line})
	}
	return line
}

// firstAttr returns the "name=value" part of a Set-Cookie line.
func firstAttr(line string) string {
	if i := strings.IndexByte(line, ';'); i >= 0 {
		return line[:i]
	}
	return line
}

// replaceCookieValue replaces the value of the first attribute of a
// Set-Cookie line, keeping the other attributes.
func replaceCookieValue(line, old, repl string) string {
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		return line
	}
	rest := line[eq+1:]
	i := strings.Index(rest, old)
	if i < 0 {
		return line
	}
	return line[:eq+1] + rest[:i] + repl + rest[i+len(old):]
}

// cacheableStatus lists the statuses HAProxy considers cacheable.
func cacheableStatus(code int) bool {
	switch code {
	case 200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// responseCacheable reports whether HAProxy would consider the response
// cacheable, the condition for nocache's "Cache-control: private". h's
// keys are canonical (a server's head as readResponseHead keeps it).
func responseCacheable(r *http.Request, status int, h http.Header) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
	default:
		return false
	}
	if !cacheableStatus(status) {
		return false
	}
	fresh := false
	for _, v := range h["Cache-Control"] {
		lv := strings.ToLower(v)
		if strings.Contains(lv, "private") || strings.Contains(lv, "no-cache") || strings.Contains(lv, "no-store") {
			return false
		}
		if strings.Contains(lv, "public") || strings.Contains(lv, "max-age") || strings.Contains(lv, "s-maxage") {
			fresh = true
		}
	}
	for _, v := range h["Pragma"] {
		if strings.Contains(strings.ToLower(v), "no-cache") {
			return false
		}
	}
	if firstValue(h, "Expires") != "" || firstValue(h, "Etag") != "" || firstValue(h, "Last-Modified") != "" {
		fresh = true
	}
	return fresh
}

// firstValue is h.Get for a key known to be canonical: it skips
// canonicalizing it.
func firstValue(h http.Header, key string) string {
	if vv := h[key]; len(vv) > 0 {
		return vv[0]
	}
	return ""
}
