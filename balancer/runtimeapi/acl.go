package runtimeapi

import (
	"strconv"
	"strings"

	"tether/balancer/rules"
)

// The acl commands work on the pattern references of the running
// configuration (see rules.Refs): a pattern file named by "-f", shared by
// every ACL naming it, or the values written on one ACL's line. As in
// HAProxy, a change is not written to the file and lasts until the next
// reload or restart; every session level may run them, as in HAProxy 2.6.

const errUnknownACL = "Unknown ACL identifier. Please use #<id> or <file>.\n"

// aclCommands returns the acl commands with HAProxy 2.6's help lines.
func aclCommands() []*command {
	return []*command{
		{words: []string{"show", "acl"}, usage: "show acl [@<ver>] <acl>]", desc: "report available acls or dump an acl's contents", run: cmdShowACL},
		{words: []string{"add", "acl"}, usage: "add acl [@<ver>] <acl> <pattern>", desc: "add an acl entry", run: cmdAddACL},
		{words: []string{"del", "acl"}, usage: "del acl <acl> [<key>|#<ref>]", desc: "delete acl entries matching <key>", run: cmdDelACL},
		{words: []string{"clear", "acl"}, usage: "clear acl [@<ver>] <acl>", desc: "clear the contents of this acl", run: cmdClearACL},
	}
}

func (c *call) patternRefs() *rules.Refs { return c.d.b.PatternRefs() }

// cmdShowACL lists the references, or the entries of one.
func cmdShowACL(c *call) {
	name := c.arg(2)
	if strings.HasPrefix(name, "@") {
		// Versions (prepare/commit acl) are not kept: none exists.
		c.err("Unknown map identifier. Please use #<id> or <file>.\n")
		return
	}
	refs := c.patternRefs()
	var b strings.Builder
	if name == "" {
		b.WriteString("# id (file) description\n")
		for _, ref := range refs.List() {
			b.WriteString(strconv.Itoa(ref.ID()) + " (" + ref.File() + ") " + ref.Description() +
				". curr_ver=0 next_ver=0 entry_cnt=" + strconv.Itoa(ref.EntryCount()) + "\n")
		}
		c.dump(b.String())
		return
	}
	ref := refs.Lookup(name)
	if ref == nil {
		c.err(errUnknownACL)
		return
	}
	for _, e := range ref.Entries() {
		b.WriteString(rules.EntryAddress(e.ID) + " " + e.Value + "\n")
	}
	c.dump(b.String())
}

// cmdAddACL adds a pattern, checked against every ACL using the reference.
func cmdAddACL(c *call) {
	name, value := c.arg(2), c.arg(3)
	if name == "" || value == "" {
		c.err("'add acl' expects two parameters: ACL identifier and pattern.\n")
		return
	}
	if strings.HasPrefix(name, "@") {
		c.err("Unknown ACL identifier. Please use #<id> or <file>.\n")
		return
	}
	ref := c.patternRefs().Lookup(name)
	if ref == nil {
		c.err(errUnknownACL)
		return
	}
	if err := ref.Add(value); err != nil {
		c.err(err.Error() + ".\n")
	}
}

// cmdDelACL deletes the patterns equal to a key, or one by "#<ref>".
func cmdDelACL(c *call) {
	name, key := c.arg(2), c.arg(3)
	if name == "" || key == "" {
		c.err("This command expects two parameters: ACL identifier and key.\n")
		return
	}
	ref := c.patternRefs().Lookup(name)
	if ref == nil {
		// HAProxy 2.6's wording here.
		c.err("Unknown map identifier. Please use #<id> or <file>.\n")
		return
	}
	if !ref.Delete(key) {
		c.err("Key not found.\n")
	}
}

// cmdClearACL removes every pattern of a reference.
func cmdClearACL(c *call) {
	name := c.arg(2)
	if name == "" {
		c.err("Missing ACL identifier.\n")
		return
	}
	ref := c.patternRefs().Lookup(name)
	if ref == nil {
		c.err(errUnknownACL)
		return
	}
	ref.Clear()
}
