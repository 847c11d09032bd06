package balancer

import "net/http"

// A front door's ResponseWriter may accept hints that make a response
// look as HAProxy sends it; writers that do not (HTTP/2) ignore them.

// reasonSetter is a ResponseWriter that can send a status line's reason
// phrase (the front door's HTTP/1.x writer); others write their own.
type reasonSetter interface {
	SetReason(string)
}

// headerOrderSetter is a ResponseWriter that can send the response's
// header lines in a given order (the front door's HTTP/1.x writer).
type headerOrderSetter interface {
	SetHeaderOrder([]string)
}

// setHeaderOrder asks w to send the headers named in order (canonical
// names, the server's order) in that order, those added on the way after.
func setHeaderOrder(w http.ResponseWriter, order []string) {
	if hs, ok := w.(headerOrderSetter); ok {
		hs.SetHeaderOrder(order)
	}
}

// headerValuesLender is a ResponseWriter that lends the slice its
// header map's values are kept in, living as long as the map (the front
// door's HTTP/1.x writer), so that a server's response head is parsed
// without allocating one.
type headerValuesLender interface {
	HeaderValues() *[]string
}

// headerValues returns w's lent values slice, or nil.
func headerValues(w http.ResponseWriter) *[]string {
	if hl, ok := w.(headerValuesLender); ok {
		return hl.HeaderValues()
	}
	return nil
}

// writeStatus sends the status code with reason as its reason phrase
// where the writer allows it.
func writeStatus(w http.ResponseWriter, code int, reason string) {
	if rs, ok := w.(reasonSetter); ok && reason != "" {
		rs.SetReason(reason)
	}
	w.WriteHeader(code)
}
