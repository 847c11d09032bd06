package rules

import (
	"fmt"
	"strings"
)

// expr is one ACL expression: a fetch and the patterns its samples are
// matched against.
type expr struct {
	fetch   fetch
	matcher matcher
}

func (e *expr) match(r *Request) bool { return e.fetch.match(r, &e.matcher) }

// acl is a named ACL: every "acl" line with its name adds an expression,
// and it matches when any of them does. Conditions refer to it by pointer,
// so a line that comes after a rule still counts for it, as in HAProxy.
type acl struct {
	name  string
	exprs []*expr
}

func (a *acl) match(r *Request) bool {
	for _, e := range a.exprs {
		if e.match(r) {
			return true
		}
	}
	return false
}

// ReadFile returns the contents of a pattern file named by "-f".
type ReadFile func(name string) ([]byte, error)

// Set holds the ACLs of one section (frontend or backend).
type Set struct {
	acls     map[string]*acl
	readFile ReadFile
	// refs lists the pattern references the set's expressions create;
	// at is where the statement being parsed was written.
	refs *Refs
	at   Source
}

// UseRefs makes the set's expressions list their pattern references in
// refs, which pattern files shared with other sets then share too.
func (s *Set) UseRefs(refs *Refs) { s.refs = refs }

// DefineAt is Define for an "acl" line written at at.
func (s *Set) DefineAt(words []string, at Source) error {
	s.at = at
	defer func() { s.at = Source{} }()
	return s.Define(words)
}

// CondAt is Cond for a condition written at at.
func (s *Set) CondAt(words []string, at Source) (*Cond, error) {
	s.at = at
	defer func() { s.at = Source{} }()
	return s.Cond(words)
}

// NewSet returns an empty set; readFile reads "-f" pattern files (nil
// refuses them).
func NewSet(readFile ReadFile) *Set {
	return &Set{acls: make(map[string]*acl), readFile: readFile}
}

// Define adds the ACL of an "acl" line: words are what follows "acl"
// (NAME CRITERION [flags] [VALUES…]).
func (s *Set) Define(words []string) error {
	if len(words) < 2 {
		return fmt.Errorf("'acl' requires an ACL name and a criterion")
	}
	name := words[0]
	if err := validACLName(name); err != nil {
		return err
	}
	if _, ok := predefined[name]; ok {
		return fmt.Errorf("ACL name '%s' is reserved for a predefined ACL", name)
	}
	e, err := s.parseExpr(words[1:], s.refs)
	if err != nil {
		return fmt.Errorf("error detected while parsing ACL '%s' : %w", name, err)
	}
	a := s.acls[name]
	if a == nil {
		a = &acl{name: name}
		s.acls[name] = a
	}
	a.exprs = append(a.exprs, e)
	return nil
}

func validACLName(name string) error {
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)) {
			return fmt.Errorf("character '%c' is not permitted in ACL name '%s'", c, name)
		}
	}
	return nil
}

// parseExpr parses CRITERION [flags] [VALUES…], listing its pattern
// references in refs (nil lists them nowhere).
func (s *Set) parseExpr(words []string, refs *Refs) (*expr, error) {
	f, m, err := parseCriterion(words[0])
	if err != nil {
		return nil, err
	}
	e := &expr{fetch: f, matcher: matcher{method: m}}
	var files []string
	i := 1
flags:
	for ; i < len(words); i++ {
		switch w := words[i]; w {
		case "-i":
			e.matcher.fold = true
		case "-n":
			// No DNS resolution of patterns: Tether never resolves them.
		case "-m":
			if i+1 >= len(words) {
				return nil, fmt.Errorf("'-m' expects a matching method")
			}
			meth, ok := methodNames[words[i+1]]
			if !ok {
				return nil, fmt.Errorf("unknown matching method '%s' for '-m'", words[i+1])
			}
			e.matcher.method = meth
			i++
		case "-f":
			if i+1 >= len(words) {
				return nil, fmt.Errorf("'-f' expects a file name")
			}
			files = append(files, words[i+1])
			i++
		case "--":
			i++
			break flags
		default:
			if strings.HasPrefix(w, "-") && len(w) == 2 && w[1] >= 'a' && w[1] <= 'z' || w == "-M" || w == "-u" {
				return nil, fmt.Errorf("flag '%s' is not supported", w)
			}
			break flags
		}
	}
	// The pattern files come first, then the values of the line, in
	// the order HAProxy creates their references.
	for _, name := range files {
		if s.readFile == nil {
			return nil, fmt.Errorf("pattern file '%s' cannot be read here", name)
		}
		data, err := s.readFile(name)
		if err != nil {
			return nil, fmt.Errorf("failed to open pattern file <%s> : %w", name, err)
		}
		ref, err := refs.fileRef(name, data, s.at)
		if err != nil {
			return nil, err
		}
		u, err := ref.attach(&e.matcher, func(int) string { return "" }, i == len(words))
		if err != nil {
			return nil, err
		}
		e.matcher.uses = append(e.matcher.uses, u)
	}
	inline := refs.newRef("", criterionKeyword(words[0]), s.at)
	var ops []string
	op := ""
	for _, p := range words[i:] {
		if (e.matcher.method == mInt || e.matcher.method == mLen) && isIntOperator(p) {
			op = p
			continue
		}
		inline.entries = append(inline.entries, refEntry{id: refs.nextEntry(), value: p})
		ops = append(ops, op)
	}
	u, err := inline.attach(&e.matcher, func(i int) string { return ops[i] }, true)
	if err != nil {
		return nil, err
	}
	e.matcher.uses = append([]*refUse{u}, e.matcher.uses...)
	needsPattern := e.matcher.method != mFound && e.matcher.method != mBool
	if needsPattern && len(inline.entries) == 0 && len(files) == 0 {
		return nil, fmt.Errorf("no pattern to match against were provided, so this ACL will never match. If this is what you intended, please add '--' to get rid of this warning. If you intended to match only for existence, please use '-m found'. If you wanted to force an int to match as a bool, please use '-m bool'")
	}
	return e, nil
}

func isIntOperator(w string) bool {
	switch w {
	case "eq", "ge", "gt", "le", "lt":
		return true
	}
	return false
}

// predefined are HAProxy's predefined ACLs, as the words of their lines.
var predefined = map[string][]string{
	"FALSE":          {"always_false"},
	"TRUE":           {"always_true"},
	"HTTP":           {"always_true"},
	"HTTP_1.0":       {"req.ver", "1.0"},
	"HTTP_1.1":       {"req.ver", "1.1"},
	"HTTP_2.0":       {"req.ver", "2.0"},
	"HTTP_CONTENT":   {"req.hdr_val(content-length)", "gt", "0"},
	"HTTP_URL_ABS":   {"url_reg", "^[^/:]*://"},
	"HTTP_URL_SLASH": {"url_beg", "/"},
	"HTTP_URL_STAR":  {"url", "*"},
	"LOCALHOST":      {"src", "127.0.0.1/8", "::1"},
	"METH_CONNECT":   {"method", "CONNECT"},
	"METH_DELETE":    {"method", "DELETE"},
	"METH_GET":       {"method", "GET", "HEAD"},
	"METH_HEAD":      {"method", "HEAD"},
	"METH_OPTIONS":   {"method", "OPTIONS"},
	"METH_POST":      {"method", "POST"},
	"METH_PUT":       {"method", "PUT"},
	"METH_TRACE":     {"method", "TRACE"},
}

// lookup finds a named or predefined ACL.
func (s *Set) lookup(name string) (*acl, error) {
	if a, ok := s.acls[name]; ok {
		return a, nil
	}
	words, ok := predefined[name]
	if !ok {
		return nil, fmt.Errorf("no such ACL : '%s'", name)
	}
	// Like HAProxy, the first use of a predefined ACL in a section
	// defines it there, with its pattern reference.
	e, err := s.parseExpr(words, s.refs)
	if err != nil {
		return nil, err
	}
	a := &acl{name: name, exprs: []*expr{e}}
	s.acls[name] = a
	return a, nil
}

// term is one possibly negated ACL of a condition.
type term struct {
	acl *acl
	neg bool
}

// Cond is a parsed "if"/"unless" condition: ORed groups of ANDed terms.
type Cond struct {
	unless bool
	groups [][]term
	text   string
}

// String returns the condition as written.
func (c *Cond) String() string { return c.text }

// Match reports whether the condition holds for r ("unless" inverts it).
func (c *Cond) Match(r *Request) bool {
	ok := false
	for _, g := range c.groups {
		all := true
		for _, t := range g {
			if t.acl.match(r) == t.neg {
				all = false
				break
			}
		}
		if all {
			ok = true
			break
		}
	}
	return ok != c.unless
}

// Cond parses a condition: words start with "if" or "unless".
func (s *Set) Cond(words []string) (*Cond, error) {
	if len(words) == 0 || words[0] != "if" && words[0] != "unless" {
		return nil, fmt.Errorf("expects 'if' or 'unless' followed by a condition")
	}
	c := &Cond{unless: words[0] == "unless", text: strings.Join(words, " ")}
	group := []term{}
	neg := false
	for i := 1; i < len(words); i++ {
		w := words[i]
		if w == "||" || w == "or" {
			if neg || len(group) == 0 {
				return nil, fmt.Errorf("missing ACL before '%s' in condition", w)
			}
			c.groups = append(c.groups, group)
			group = []term{}
			continue
		}
		for strings.HasPrefix(w, "!") {
			neg = !neg
			w = w[1:]
		}
		switch w {
		case "":
			continue // a lone "!"
		case "{":
			end := i + 1
			for end < len(words) && words[end] != "}" {
				end++
			}
			if end == len(words) {
				return nil, fmt.Errorf("missing closing '}' in condition")
			}
			if end == i+1 {
				return nil, fmt.Errorf("empty anonymous ACL in condition")
			}
			e, err := s.parseExpr(words[i+1:end], s.refs)
			if err != nil {
				return nil, fmt.Errorf("error in anonymous ACL : %w", err)
			}
			group = append(group, term{acl: &acl{name: "anonymous", exprs: []*expr{e}}, neg: neg})
			neg = false
			i = end
			continue
		case "}":
			return nil, fmt.Errorf("unexpected '}' in condition")
		}
		a, err := s.lookup(w)
		if err != nil {
			return nil, err
		}
		group = append(group, term{acl: a, neg: neg})
		neg = false
	}
	if neg || len(group) == 0 {
		return nil, fmt.Errorf("missing ACL at the end of condition '%s'", c.text)
	}
	c.groups = append(c.groups, group)
	return c, nil
}

// criterionKeyword returns the fetch keyword of a criterion, as HAProxy
// names an ACL's own pattern reference: "hdr" for "hdr(host),lower".
func criterionKeyword(c string) string {
	if i := strings.IndexAny(c, "(,"); i >= 0 {
		return c[:i]
	}
	return c
}
