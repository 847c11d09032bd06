package balancer

import (
	"net/http"
	"net/netip"
	"net/textproto"
)

// defaultForwardForHeader is the header option forwardfor adds.
const defaultForwardForHeader = "X-Forwarded-For"

// forwardForRule is a proxy's "option forwardfor", compiled.
type forwardForRule struct {
	on     bool
	ifNone bool
	except netip.Prefix // invalid when none
	// header is the name as configured ("" for the default) and key its
	// canonical form, for looking it up in a request.
	header, key string
}

func newForwardForRule(on bool, o ForwardForOptions) (forwardForRule, error) {
	r := forwardForRule{on: on, ifNone: o.IfNone, header: o.Header}
	if !on {
		return forwardForRule{}, nil
	}
	if o.Except != "" {
		p, err := ParseForwardForExcept(o.Except)
		if err != nil {
			return r, err
		}
		r.except = p
	}
	if r.header != "" {
		r.key = textproto.CanonicalMIMEHeaderKey(r.header)
	}
	return r, nil
}

// excepts reports whether client is in the rule's except network.
func (r forwardForRule) excepts(client netip.Addr) bool {
	return r.except.IsValid() && r.except.Contains(client.Unmap())
}

// forwardedHeader is the header option forwardfor adds to one request;
// name "" when none.
type forwardedHeader struct {
	name, value string
}

// forwardedFor returns the header the frontend's and the backend's option
// forwardfor add to a request from client with headers h, as HAProxy 2.6
// does: the backend's header name over the frontend's, nothing when
// either's except network holds the client, and with if-none on every
// proxy that has the option, nothing when the request carries the header.
func forwardedFor(fe, be forwardForRule, client netip.Addr, h http.Header) forwardedHeader {
	if !fe.on && !be.on {
		return forwardedHeader{}
	}
	name, key := be.header, be.key
	if name == "" {
		name, key = fe.header, fe.key
	}
	if name == "" {
		name, key = defaultForwardForHeader, defaultForwardForHeader
	}
	always := fe.on && !fe.ifNone || be.on && !be.ifNone
	if !always && len(h[key]) > 0 {
		return forwardedHeader{}
	}
	if !client.IsValid() || fe.excepts(client) || be.excepts(client) {
		return forwardedHeader{}
	}
	return forwardedHeader{name: name, value: client.String()}
}
