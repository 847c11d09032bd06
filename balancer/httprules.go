package balancer

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"

	"tether/balancer/rules"
)

// HTTPRule is one "http-request", "http-response" or "redirect" line.
type HTTPRule struct {
	// Words are the action and its arguments, as written after the
	// keyword ("deny deny_status 429", "set-header X-A b"); for a
	// "redirect" line they start with "redirect".
	Words []string
	// Cond is "if" or "unless" and the condition's words, or nil.
	Cond []string
	// Files holds the pattern files its anonymous ACLs read, by name.
	Files map[string]string
	// At is where the line was written.
	At Position
}

// line writes the rule as its configuration line.
func (r HTTPRule) line(phase RulePhase) string {
	if len(r.Words) > 0 && r.Words[0] == "redirect" {
		return ruleLine(r.Words, r.Cond)
	}
	return ruleLine([]string{string(phase)}, r.Words, r.Cond)
}

// RulePhase says where an HTTPRule runs.
type RulePhase string

// Rule phases.
const (
	// RequestPhase rules run on requests ("http-request", "redirect").
	RequestPhase RulePhase = "http-request"
	// ResponsePhase rules run on the server's responses ("http-response").
	ResponsePhase RulePhase = "http-response"
)

type actionKind int

const (
	actAllow actionKind = iota
	actDeny
	actReturn
	actRedirect
	actSetHeader
	actAddHeader
	actDelHeader
	actReplaceHeader
	actSetPath
	actSetQuery
)

// httpAction is a compiled rule action.
type httpAction struct {
	kind        actionKind
	status      int
	contentType string
	body        string
	header      string // canonical name
	value       string
	redirect    redirectAction
	// match is replace-header's regular expression; value is then its
	// replacement, with \N for the Nth group.
	match *regexp.Regexp
}

type redirectAction struct {
	mode        string // "location", "prefix" or "scheme"
	target      string
	code        int
	dropQuery   bool
	appendSlash bool
}

// httpRule is a compiled HTTPRule.
type httpRule struct {
	action httpAction
	cond   *rules.Cond
	line   string        // as configured
	hits   *atomic.Int64 // requests or responses it acted on
}

// CheckHTTPAction reports whether Tether can run the action words of a
// rule of the given phase, with HAProxy's message when it cannot.
func CheckHTTPAction(phase RulePhase, words []string) error {
	_, err := parseHTTPAction(phase, words)
	return err
}

// parseHTTPAction compiles the action words of a rule.
func parseHTTPAction(phase RulePhase, words []string) (httpAction, error) {
	if len(words) == 0 {
		return httpAction{}, fmt.Errorf("'%s' expects an action", phase)
	}
	for _, w := range words[1:] {
		if strings.Contains(w, "%") {
			return httpAction{}, fmt.Errorf("'%s %s': log-format expressions ('%%') are not supported by Tether; use literal values", phase, words[0])
		}
	}
	args := words[1:]
	needArgs := func(n int, usage string) error {
		if len(args) != n {
			return fmt.Errorf("'%s %s' expects %s", phase, words[0], usage)
		}
		return nil
	}
	a := httpAction{}
	switch name := words[0]; {
	case name == "allow":
		return a, needArgs(0, "no argument")
	case name == "set-header" || name == "add-header":
		a.kind = actSetHeader
		if name == "add-header" {
			a.kind = actAddHeader
		}
		if err := needArgs(2, "exactly 2 arguments (a header name and a value)"); err != nil {
			return a, err
		}
		a.header, a.value = textproto.CanonicalMIMEHeaderKey(args[0]), args[1]
		return a, nil
	case name == "replace-header":
		a.kind = actReplaceHeader
		if err := needArgs(3, "exactly 3 arguments (a header name, a regular expression and a replacement)"); err != nil {
			return a, err
		}
		re, err := regexp.Compile(args[1])
		if err != nil {
			return a, fmt.Errorf("'%s replace-header': regular expression '%s' is not supported by Tether: %v", phase, args[1], err)
		}
		if strings.Contains(args[2], `\x`) {
			return a, fmt.Errorf("'%s replace-header': hexadecimal escapes in the replacement are not supported by Tether", phase)
		}
		a.header, a.match, a.value = textproto.CanonicalMIMEHeaderKey(args[0]), re, args[2]
		return a, nil
	case name == "del-header":
		a.kind = actDelHeader
		if err := needArgs(1, "exactly 1 argument (a header name)"); err != nil {
			return a, err
		}
		a.header = textproto.CanonicalMIMEHeaderKey(args[0])
		return a, nil
	case phase == ResponsePhase:
		return a, fmt.Errorf("'%s %s' is not supported by Tether; only set-header, add-header, del-header, replace-header and allow are", phase, name)
	case name == "deny":
		a.kind, a.status = actDeny, http.StatusForbidden
		for i := 0; i < len(args); i++ {
			if args[i] != "deny_status" || i+1 >= len(args) {
				return a, fmt.Errorf("'%s deny': '%s' is not supported by Tether; only 'deny_status N' is", phase, args[i])
			}
			n, err := strconv.Atoi(args[i+1])
			if _, ok := errorPages[n]; err != nil || !ok {
				return a, fmt.Errorf("'%s deny': status code %s has no built-in error page", phase, args[i+1])
			}
			a.status = n
			i++
		}
		return a, nil
	case name == "return":
		a.kind, a.status = actReturn, http.StatusOK
		for i := 0; i < len(args); i += 2 {
			if i+1 >= len(args) {
				return a, fmt.Errorf("'%s return': '%s' expects a value", phase, args[i])
			}
			switch v := args[i+1]; args[i] {
			case "status":
				n, err := strconv.Atoi(v)
				if err != nil || n < 200 || n > 599 {
					return a, fmt.Errorf("'%s return': invalid status code '%s'", phase, v)
				}
				a.status = n
			case "content-type":
				a.contentType = v
			case "string":
				a.body = v
			default:
				return a, fmt.Errorf("'%s return': '%s' is not supported by Tether; only status, content-type and string are", phase, args[i])
			}
		}
		if a.body != "" && a.contentType == "" {
			return a, fmt.Errorf("'%s return': a 'string' needs a 'content-type'", phase)
		}
		return a, nil
	case name == "redirect":
		r, err := parseRedirect(args)
		if err != nil {
			return a, fmt.Errorf("'%s redirect': %w", phase, err)
		}
		a.kind, a.redirect = actRedirect, r
		return a, nil
	case name == "set-path" || name == "set-query":
		a.kind = actSetPath
		if name == "set-query" {
			a.kind = actSetQuery
		}
		if err := needArgs(1, "exactly 1 argument"); err != nil {
			return a, err
		}
		a.value = args[0]
		return a, nil
	}
	return a, fmt.Errorf("'%s %s' is not supported by Tether", phase, words[0])
}

// parseRedirect parses "location|prefix|scheme TARGET [code N]
// [drop-query] [append-slash]".
func parseRedirect(args []string) (redirectAction, error) {
	r := redirectAction{code: http.StatusFound}
	if len(args) < 2 {
		return r, fmt.Errorf("expects 'location', 'prefix' or 'scheme' followed by a value")
	}
	switch args[0] {
	case "location", "prefix", "scheme":
		r.mode, r.target = args[0], args[1]
	default:
		return r, fmt.Errorf("expects 'location', 'prefix' or 'scheme', found '%s'", args[0])
	}
	for i := 2; i < len(args); i++ {
		switch args[i] {
		case "code":
			if i+1 >= len(args) {
				return r, fmt.Errorf("'code' expects a status")
			}
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n != 301 && n != 302 && n != 303 && n != 307 && n != 308 {
				return r, fmt.Errorf("unsupported HTTP code '%s'", args[i+1])
			}
			r.code = n
			i++
		case "drop-query":
			r.dropQuery = true
		case "append-slash":
			r.appendSlash = true
		default:
			return r, fmt.Errorf("'%s' is not supported by Tether", args[i])
		}
	}
	return r, nil
}

// compileHTTPRules compiles rules of one phase with the frontend's ACLs;
// live keeps their hit counters.
func compileHTTPRules(phase RulePhase, rs []HTTPRule, set *rules.Set, live *frontendLive) ([]httpRule, error) {
	out := make([]httpRule, 0, len(rs))
	for _, r := range rs {
		a, err := parseHTTPAction(phase, r.Words)
		if err != nil {
			return nil, err
		}
		line := r.line(phase)
		hr := httpRule{action: a, line: line, hits: live.ruleCounter(line)}
		if len(r.Cond) > 0 {
			if hr.cond, err = set.CondAt(r.Cond, rules.Source(r.At)); err != nil {
				return nil, fmt.Errorf("%s %s: %w", phase, r.Words[0], err)
			}
		}
		out = append(out, hr)
	}
	return out, nil
}

// runRequestRules applies request rules in order to r, whose condition
// view is rq. It returns the status it answered with, or 0 when the
// request goes on to a backend.
func runRequestRules(rs []httpRule, w http.ResponseWriter, r *http.Request, rq *rules.Request) int {
	for i := range rs {
		hr := &rs[i]
		if hr.cond != nil && !hr.cond.Match(rq) {
			continue
		}
		hr.hits.Add(1)
		a := &hr.action
		switch a.kind {
		case actAllow:
			return 0
		case actDeny:
			writePage(w, a.status)
			return a.status
		case actReturn:
			h := w.Header()
			h["Date"] = nil
			h["Content-Length"] = []string{strconv.Itoa(len(a.body))}
			if a.contentType != "" {
				h["Content-Type"] = []string{a.contentType}
			}
			writeStatus(w, a.status, returnReason(a.status))
			io.WriteString(w, a.body)
			return a.status
		case actRedirect:
			writeRedirect(w, r, &a.redirect)
			return a.redirect.code
		case actSetHeader, actAddHeader, actDelHeader, actReplaceHeader:
			editHeader(r.Header, &r.Host, a)
			rq.Host = r.Host
		case actSetPath, actSetQuery:
			setTarget(r, a)
			rq.Target = r.RequestURI
		}
	}
	return 0
}

// runResponseRules applies response rules to the response headers h.
func runResponseRules(rs []httpRule, h http.Header) {
	for i := range rs {
		rs[i].hits.Add(1)
		a := &rs[i].action
		if a.kind == actAllow {
			return
		}
		editHeader(h, nil, a)
	}
}

// editHeader applies a header action. host, when not nil, is where the
// request keeps its Host header.
func editHeader(h http.Header, host *string, a *httpAction) {
	if host != nil && a.header == "Host" {
		switch {
		case a.kind == actDelHeader:
			*host = ""
		case a.kind == actReplaceHeader:
			if *host != "" {
				*host = a.replace(*host)
			}
		case a.kind == actSetHeader || *host == "":
			*host = a.value
		}
		return
	}
	switch a.kind {
	case actSetHeader:
		h[a.header] = []string{a.value}
	case actAddHeader:
		h[a.header] = append(h[a.header], a.value)
	case actDelHeader:
		delete(h, a.header)
	case actReplaceHeader:
		for i, v := range h[a.header] {
			h[a.header][i] = a.replace(v)
		}
	}
}

// replace is replace-header on one header line, as HAProxy does it: when
// the expression matches anywhere in v, the whole value becomes the
// replacement, its \N taken from the match's groups (empty for a group
// that did not take part) and any other escaped character kept as itself.
func (a *httpAction) replace(v string) string {
	m := a.match.FindStringSubmatchIndex(v)
	if m == nil {
		return v
	}
	var b strings.Builder
	f := a.value
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			b.WriteByte(c)
			continue
		}
		i++
		if d := f[i]; d >= '0' && d <= '9' {
			if g := int(d-'0') * 2; g+1 < len(m) && m[g] >= 0 {
				b.WriteString(v[m[g]:m[g+1]])
			}
			continue
		}
		b.WriteByte(f[i])
	}
	return b.String()
}

// setTarget replaces the path or the query of the request target.
func setTarget(r *http.Request, a *httpAction) {
	path, query, hasQuery := strings.Cut(r.RequestURI, "?")
	if a.kind == actSetPath {
		path = a.value
	} else {
		query, hasQuery = a.value, true
	}
	r.RequestURI = path
	if hasQuery {
		r.RequestURI += "?" + query
	}
	if u, err := r.URL.Parse(r.RequestURI); err == nil {
		r.URL = u
	}
}

// writeRedirect answers with a redirect built as HAProxy builds it.
func writeRedirect(w http.ResponseWriter, r *http.Request, rd *redirectAction) {
	uri := r.RequestURI
	if strings.Contains(uri, "://") && !strings.HasPrefix(uri, "/") {
		// Absolute form: the path and query only.
		rest := uri[strings.Index(uri, "://")+3:]
		uri = "/"
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			uri = rest[i:]
		}
	}
	if rd.dropQuery {
		uri, _, _ = strings.Cut(uri, "?")
		if rd.appendSlash && !strings.HasSuffix(uri, "/") {
			uri += "/"
		}
	}
	var loc string
	switch rd.mode {
	case "location":
		loc = rd.target
	case "prefix":
		loc = uri
		if rd.target != "/" {
			loc = rd.target + uri
		}
	case "scheme":
		loc = uri
		if r.Host != "" {
			loc = rd.target + "://" + r.Host + uri
		}
	}
	h := w.Header()
	h["Content-Length"] = []string{"0"}
	h["Date"] = nil
	h["Location"] = []string{loc}
	if rd.code != http.StatusMovedPermanently && rd.code != http.StatusPermanentRedirect {
		h["Cache-Control"] = []string{"no-cache"}
	}
	w.WriteHeader(rd.code)
}
