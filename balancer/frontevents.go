package balancer

import "errors"

// FrontendEvents counts what a frontend's HTTP server sees outside the
// proxy handler: open and accepted connections, bytes, and requests it answers itself
// (HAProxy's 400 and 408 pages), which count in the frontend's stot,
// conn_tot, req_tot, ereq and hrsp_4xx as HAProxy counts them. It is safe
// for concurrent use.
type FrontendEvents struct {
	live *frontendLive
	// b and name find the frontend's access log, for LogRefusal.
	b    *Balancer
	name string
}

// FrontendEvents returns the event counters of the named frontend. Once a
// server reports connections through them, the frontend counts sessions
// (stot, scur) and bytes per connection, as HAProxy does, instead of per
// request.
func (b *Balancer) FrontendEvents(frontend string) (*FrontendEvents, error) {
	fe, ok := b.tab.Load().frontends[frontend]
	if !ok {
		return nil, errors.New("no such frontend: " + frontend)
	}
	fe.live.connCounted.Store(true)
	return &FrontendEvents{live: fe.live, b: b, name: frontend}, nil
}

// ConnAccepted counts a client connection accepted (stot, conn_tot, scur).
func (e *FrontendEvents) ConnAccepted() {
	e.live.sessions.Add(1)
	storeMax(&e.live.max, e.live.cur.Add(1))
}

// ConnClosed counts a client connection closed.
func (e *FrontendEvents) ConnClosed() {
	e.live.cur.Add(-1)
}

// Transferred counts bytes read from and written to a client (bin, bout).
func (e *FrontendEvents) Transferred(in, out int) {
	if in > 0 {
		e.live.bytesIn.Add(int64(in))
	}
	if out > 0 {
		e.live.bytesOut.Add(int64(out))
	}
}

// Refused counts a request the server answered itself with status,
// because it was malformed (400) or not received in time (408).
func (e *FrontendEvents) Refused(status int) {
	e.live.requests.Add(1)
	e.live.reqErrors.Add(1)
	e.live.responses[classIndex(status)].Add(1)
}

// TimesRequests reports whether the frontend writes an access log, whose
// timers need the client connection's RequestTimes: a server asks once
// per accepted connection.
func (e *FrontendEvents) TimesRequests() bool {
	fe := e.b.tab.Load().frontends[e.name]
	return fe != nil && e.b.frontendLogs(fe)
}
