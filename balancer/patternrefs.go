package balancer

import "tether/balancer/rules"

// PatternRefs returns the ACL pattern references of the running
// configuration, as HAProxy's "show acl" lists them. Changing their
// entries changes what the ACLs match from the next request on; a reload
// (Replace) starts again from the configuration's files and values.
func (b *Balancer) PatternRefs() *rules.Refs { return b.tab.Load().refs }
