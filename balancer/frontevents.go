package balancer

import "errors"

// FrontendEvents counts what a frontend's HTTP server sees outside the
// proxy handler: accepted connections, and requests it answers itself
// (HAProxy's 400 and 408 pages), which count in the frontend's stot,
// conn_tot, req_tot, ereq and hrsp_4xx as HAProxy counts them. It is safe
// for concurrent use.
type FrontendEvents struct {
	live *frontendLive
}

// FrontendEvents returns the event counters of the named frontend. Once a
// server reports connections through them, the frontend counts sessions
// per connection, as HAProxy does, instead of per request.
func (b *Balancer) FrontendEvents(frontend string) (*FrontendEvents, error) {
	fe, ok := b.tab.Load().frontends[frontend]
	if !ok {
		return nil, errors.New("no such frontend: " + frontend)
	}
	fe.live.connCounted.Store(true)
	return &FrontendEvents{live: fe.live}, nil
}

// ConnAccepted counts a client connection accepted.
func (e *FrontendEvents) ConnAccepted() {
	e.live.sessions.Add(1)
}

// Refused counts a request the server answered itself with status,
// because it was malformed (400) or not received in time (408).
func (e *FrontendEvents) Refused(status int) {
	e.live.requests.Add(1)
	e.live.reqErrors.Add(1)
	e.live.responses[classIndex(status)].Add(1)
}
