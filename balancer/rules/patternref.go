package rules

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Source is where an ACL was written: a configuration file and a line.
type Source struct {
	File string
	Line int
}

// Refs are the pattern references of one routing table, as HAProxy's
// "show acl" lists them: one per pattern file named by "-f" (shared by
// every ACL that names it) and one per ACL expression for the values
// written on its line. The Runtime API changes their entries; a change
// reaches every expression using the reference on its next request.
// Refs is built by one goroutine; its references are then safe for
// concurrent use.
type Refs struct {
	files map[string]*PatternRef
	list  []*PatternRef
	// seq orders references created while one statement is compiled.
	seq int
	// entries numbers the entries, for "#<ref>" in del acl.
	entries atomic.Uint64
}

// NewRefs returns an empty set of references.
func NewRefs() *Refs {
	return &Refs{files: make(map[string]*PatternRef)}
}

// PatternRef is one list of patterns the Runtime API can change. Its
// methods are safe for concurrent use.
type PatternRef struct {
	refs *Refs
	id   int
	// file is the pattern file, "" for an expression's own values;
	// keyword is that expression's criterion.
	file, keyword string
	// users are where the reference is used, in order; key orders it
	// among the table's references.
	users []Source
	key   [2]int

	mu      sync.Mutex
	entries []refEntry
	exprs   []*refUse
	// entryCnt is HAProxy 2.6's entry_cnt, kept with its bookkeeping:
	// the entries once per counted expression when loaded, counted
	// more on each add, one less per entry deleted or cleared. An
	// expression that also has values of its own does not count.
	entryCnt, counted int
}

// refEntry is one pattern of a reference.
type refEntry struct {
	id    uint64
	value string
	line  int // in the pattern file, 0 for others
}

// refUse is a reference as one expression uses it: the entries compiled
// for its matching method, published for the request path.
type refUse struct {
	m     *matcher
	items []item
	cur   atomic.Pointer[patterns]
}

// patterns are compiled patterns, immutable once published.
type patterns struct {
	strs []string
	regs []*regexp.Regexp
	ints []intRange
	nets []netip.Prefix
}

// item is one entry compiled for a method; skip marks an entry that
// compiles to nothing (a "dom" pattern of delimiters only).
type item struct {
	str  string
	re   *regexp.Regexp
	rng  intRange
	net  netip.Prefix
	skip bool
}

// fileRef returns the reference of a pattern file, creating it from data
// the first time; at is where it is used.
func (r *Refs) fileRef(name string, data []byte, at Source) (*PatternRef, error) {
	if r != nil {
		if ref, ok := r.files[name]; ok {
			ref.use(at)
			return ref, nil
		}
	}
	ref := r.newRef(name, "", at)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		// HAProxy skips leading blanks, empty lines and comments, and
		// keeps trailing blanks.
		line := strings.TrimRight(strings.TrimLeft(sc.Text(), " \t"), "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		ref.entries = append(ref.entries, refEntry{id: r.nextEntry(), value: line, line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read pattern file <%s> : %w", name, err)
	}
	if r != nil {
		r.files[name] = ref
	}
	return ref, nil
}

// newRef creates a reference and lists it.
func (r *Refs) newRef(file, keyword string, at Source) *PatternRef {
	ref := &PatternRef{refs: r, file: file, keyword: keyword}
	if r != nil {
		r.seq++
		ref.key = [2]int{at.Line, r.seq}
		r.list = append(r.list, ref)
	}
	ref.users = []Source{at}
	return ref
}

// use records another ACL using the reference.
func (ref *PatternRef) use(at Source) {
	ref.refs.seq++
	if k := [2]int{at.Line, ref.refs.seq}; cmp.Compare(k[0], ref.key[0]) < 0 {
		ref.key = k
	}
	ref.users = append(ref.users, at)
}

func (r *Refs) nextEntry() uint64 {
	if r == nil {
		return 0
	}
	return r.entries.Add(1)
}

// Number gives the references their "show acl" ids, in the order HAProxy
// creates them: by the configuration line that first uses them.
func (r *Refs) Number() {
	slices.SortStableFunc(r.list, func(a, b *PatternRef) int {
		if c := cmp.Compare(a.key[0], b.key[0]); c != 0 {
			return c
		}
		return cmp.Compare(a.key[1], b.key[1])
	})
	for i, ref := range r.list {
		ref.id = i
		slices.SortStableFunc(ref.users, func(a, b Source) int { return cmp.Compare(a.Line, b.Line) })
	}
}

// List returns the references in id order.
func (r *Refs) List() []*PatternRef {
	if r == nil {
		return nil
	}
	return r.list
}

// Lookup finds a reference by "#ID" or by pattern file name.
func (r *Refs) Lookup(name string) *PatternRef {
	if r == nil {
		return nil
	}
	if id, ok := strings.CutPrefix(name, "#"); ok {
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || n >= len(r.list) {
			return nil
		}
		return r.list[n]
	}
	return r.files[name]
}

// ID returns the reference's "show acl" id.
func (ref *PatternRef) ID() int { return ref.id }

// File returns the pattern file, "" for an expression's own values.
func (ref *PatternRef) File() string { return ref.file }

// Description returns HAProxy's description of the reference in "show
// acl".
func (ref *PatternRef) Description() string {
	if ref.file == "" {
		at := ref.users[0]
		return fmt.Sprintf("acl '%s' file '%s' line %d", ref.keyword, at.File, at.Line)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "pattern loaded from file '%s' used by", ref.file)
	for i, at := range ref.users {
		if i > 0 {
			b.WriteString(", by")
		}
		fmt.Fprintf(&b, " acl at file '%s' line %d", at.File, at.Line)
	}
	return b.String()
}

// EntryCount returns HAProxy 2.6's entry_cnt for the reference.
func (ref *PatternRef) EntryCount() int {
	ref.mu.Lock()
	defer ref.mu.Unlock()
	return ref.entryCnt
}

// Entry is one pattern of a reference, with the id "del acl #<ref>"
// names it by.
type Entry struct {
	ID    uint64
	Value string
}

// Entries returns the reference's patterns in order.
func (ref *PatternRef) Entries() []Entry {
	ref.mu.Lock()
	defer ref.mu.Unlock()
	out := make([]Entry, len(ref.entries))
	for i, e := range ref.entries {
		out[i] = Entry{ID: e.id, Value: e.value}
	}
	return out
}

// attach compiles the reference's entries for m and publishes them; op is
// the integer operator of values written on the ACL line; counted tells
// whether the expression counts in entry_cnt.
func (ref *PatternRef) attach(m *matcher, op func(i int) string, counted bool) (*refUse, error) {
	ref.mu.Lock()
	defer ref.mu.Unlock()
	u := &refUse{m: m, items: make([]item, len(ref.entries))}
	for i, e := range ref.entries {
		it, err := m.compile(e.value, op(i))
		if err != nil {
			if ref.file != "" {
				return nil, fmt.Errorf("%s:%d: %w", ref.file, e.line, err)
			}
			return nil, err
		}
		u.items[i] = it
	}
	u.publish()
	ref.exprs = append(ref.exprs, u)
	if counted {
		ref.counted++
		ref.entryCnt += len(ref.entries)
	}
	return u, nil
}

// publish builds u's patterns from its items and makes them visible.
func (u *refUse) publish() {
	p := &patterns{}
	for _, it := range u.items {
		switch {
		case it.skip:
		case it.re != nil:
			p.regs = append(p.regs, it.re)
		case it.net.IsValid():
			p.nets = append(p.nets, it.net)
		case u.m.method == mLen || u.m.method == mInt:
			p.ints = append(p.ints, it.rng)
		default:
			p.strs = append(p.strs, it.str)
		}
	}
	u.cur.Store(p)
}

// Add appends a pattern, checked against the matching method of every
// expression using the reference; the error of the first that refuses it
// is returned and nothing changes.
func (ref *PatternRef) Add(value string) error {
	ref.mu.Lock()
	defer ref.mu.Unlock()
	items := make([]item, len(ref.exprs))
	for i, u := range ref.exprs {
		it, err := u.m.compile(value, "")
		if err != nil {
			return err
		}
		items[i] = it
	}
	ref.entries = append(ref.entries, refEntry{id: ref.refs.nextEntry(), value: value})
	ref.entryCnt += ref.counted
	for i, u := range ref.exprs {
		u.items = append(u.items, items[i])
		u.publish()
	}
	return nil
}

// Delete removes every pattern equal to value, or with "#ID" the one
// entry of that id (as "show acl" writes it, "0x…"), and reports whether
// one was.
func (ref *PatternRef) Delete(value string) bool {
	ref.mu.Lock()
	defer ref.mu.Unlock()
	match := func(e refEntry) bool { return e.value == value }
	if id, ok := strings.CutPrefix(value, "#"); ok {
		n, err := strconv.ParseUint(strings.TrimPrefix(id, "0x"), 16, 64)
		if err != nil {
			return false
		}
		match = func(e refEntry) bool { return entryAddress(e.id) == n }
	}
	found := false
	for i := len(ref.entries) - 1; i >= 0; i-- {
		if !match(ref.entries[i]) {
			continue
		}
		found = true
		ref.entries = slices.Delete(ref.entries, i, i+1)
		ref.entryCnt--
		for _, u := range ref.exprs {
			u.items = slices.Delete(u.items, i, i+1)
		}
	}
	if found {
		for _, u := range ref.exprs {
			u.publish()
		}
	}
	return found
}

// Clear removes every pattern.
func (ref *PatternRef) Clear() {
	ref.mu.Lock()
	defer ref.mu.Unlock()
	ref.entryCnt -= len(ref.entries)
	ref.entries = nil
	for _, u := range ref.exprs {
		u.items = nil
		u.publish()
	}
}

// entryAddress is the number "show acl" writes for an entry, in the
// shape of the addresses HAProxy writes there.
func entryAddress(id uint64) uint64 { return 0x55d0_0000_0000 + id*0x50 }

// EntryAddress returns the "0x…" form "show acl" writes for an entry id.
func EntryAddress(id uint64) string { return "0x" + strconv.FormatUint(entryAddress(id), 16) }

// compile parses one pattern for the matcher's method; op is the current
// integer operator ("" for equality or a range).
func (m *matcher) compile(p, op string) (item, error) {
	switch m.method {
	case mStr, mBeg, mEnd, mSub:
		return item{str: p}, nil
	case mDom, mDir:
		delims := "/"
		if m.method == mDom {
			delims = "./:?"
		}
		t := strings.Trim(p, delims)
		return item{str: t, skip: t == ""}, nil
	case mReg:
		expr := p
		if m.fold {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return item{}, fmt.Errorf("regex '%s' is invalid or not supported: %v", p, err)
		}
		return item{re: re}, nil
	case mLen, mInt:
		r, err := parseIntPattern(p, op)
		return item{rng: r}, err
	case mIP:
		pfx, err := parseIPPattern(p)
		return item{net: pfx}, err
	}
	return item{skip: true}, nil
}
