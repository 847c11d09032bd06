package frontdoor

import (
	"net/http"
	"strings"
)

// StripCookies returns a handler that removes the named cookies from a
// request's Cookie headers before next sees it, so that cookies belonging
// to Tether itself, such as the console's session, never reach an origin:
// a browser sends a host's cookies to every port of it. Cookies are found
// between ';' or ',' separators (HAProxy accepts both), by exact name; the
// other cookies are kept byte for byte. A request without any of the names
// costs one substring search per Cookie header. The handler is safe for
// concurrent use.
func StripCookies(names []string, next http.Handler) http.Handler {
	if len(names) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if vv, ok := r.Header["Cookie"]; ok {
			if kept, changed := stripCookies(vv, names); changed {
				if len(kept) == 0 {
					delete(r.Header, "Cookie")
				} else {
					r.Header["Cookie"] = kept
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// stripCookies returns the Cookie header values without the named cookies
// (values left empty are dropped), and whether anything was removed.
func stripCookies(values, names []string) ([]string, bool) {
	var out []string
	changed := false
	for i, v := range values {
		nv, removed := stripCookieValue(v, names)
		if !removed {
			if changed {
				out = append(out, v)
			}
			continue
		}
		if !changed {
			changed = true
			out = append(out, values[:i]...)
		}
		if strings.TrimSpace(nv) != "" {
			out = append(out, nv)
		}
	}
	if !changed {
		return values, false
	}
	return out, true
}

// stripCookieValue removes the named cookies from one Cookie header value.
func stripCookieValue(v string, names []string) (string, bool) {
	mentioned := false
	for _, n := range names {
		if strings.Contains(v, n) {
			mentioned = true
			break
		}
	}
	if !mentioned {
		return v, false
	}
	var b strings.Builder
	removed := false
	for rest := v; rest != ""; {
		end := strings.IndexAny(rest, ";,")
		seg, sep := rest, ""
		if end >= 0 {
			seg, sep, rest = rest[:end], rest[end:end+1], rest[end+1:]
		} else {
			rest = ""
		}
		name, _, _ := strings.Cut(seg, "=")
		if isOneOf(strings.TrimSpace(name), names) {
			removed = true
			continue
		}
		if b.Len() == 0 {
			seg = strings.TrimLeft(seg, " \t")
			if seg == "" {
				continue
			}
		}
		b.WriteString(seg)
		if sep != "" && rest != "" {
			b.WriteString(sep)
		}
	}
	if !removed {
		return v, false
	}
	return strings.TrimRight(b.String(), "; ,\t"), true
}

func isOneOf(s string, names []string) bool {
	for _, n := range names {
		if s == n {
			return true
		}
	}
	return false
}
