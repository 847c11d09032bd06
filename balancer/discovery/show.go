package discovery

import (
	"fmt"
	"io"
	"strings"
)

// WriteShowResolvers writes the counters of every resolvers section, or
// only of the one named id when id is not empty, in the format of
// HAProxy 2.6's "show resolvers [id]". It returns ErrNoSuchResolvers when
// id names no section. It is safe for concurrent use with Run.
func (r *Resolver) WriteShowResolvers(w io.Writer, id string) error {
	var b strings.Builder
	found := false
	for _, sec := range r.sections {
		if id != "" && sec.name != id {
			continue
		}
		found = true
		fmt.Fprintf(&b, "Resolvers section %s\n", sec.name)
		for _, ns := range sec.nameservers {
			c := &ns.c
			fmt.Fprintf(&b, " nameserver %s:\n", ns.name)
			fmt.Fprintf(&b, "  sent:        %d\n", c.sent.Load())
			fmt.Fprintf(&b, "  snd_error:   %d\n", c.sndError.Load())
			fmt.Fprintf(&b, "  valid:       %d\n", c.valid.Load())
			fmt.Fprintf(&b, "  update:      %d\n", c.update.Load())
			fmt.Fprintf(&b, "  cname:       %d\n", c.cname.Load())
			fmt.Fprintf(&b, "  cname_error: %d\n", c.cnameError.Load())
			fmt.Fprintf(&b, "  any_err:     %d\n", c.anyErr.Load())
			fmt.Fprintf(&b, "  nx:          %d\n", c.nx.Load())
			fmt.Fprintf(&b, "  timeout:     %d\n", c.timeout.Load())
			fmt.Fprintf(&b, "  refused:     %d\n", c.refused.Load())
			fmt.Fprintf(&b, "  other:       %d\n", c.other.Load())
			fmt.Fprintf(&b, "  invalid:     %d\n", c.invalid.Load())
			fmt.Fprintf(&b, "  too_big:     %d\n", c.tooBig.Load())
			fmt.Fprintf(&b, "  truncated:   %d\n", c.truncated.Load())
			fmt.Fprintf(&b, "  outdated:    %d\n", c.outdated.Load())
		}
	}
	if id != "" && !found {
		return ErrNoSuchResolvers
	}
	if len(r.sections) == 0 {
		b.WriteString("No resolvers found\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write show resolvers: %w", err)
	}
	return nil
}
