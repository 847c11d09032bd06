package balancer

import (
	"net/http"
	"time"

	"tether/balancer/accesslog"
)

// requestTrace is what serving a request leaves for the access log. The
// proxy fills it on every request: plain assignments, and clock readings
// only when timed is set because the frontend logs.
type requestTrace struct {
	timed bool
	start time.Time
	// waited is when the request left the queue or got its server; sent
	// when it was sent to the server; answered when the response head
	// arrived. A zero time means the phase did not happen.
	waited, sent, answered time.Time

	backend *backendRT
	server  *serverRT
	status  int
	bytes   int64
	// term is the termination cause and session state, as HAProxy's log
	// writes them; zero bytes mean "-".
	term         [2]byte
	cookieReq    byte // N I D V E O, 0 when the backend has no cookie
	cookieRes    byte // N I D P R U, 0 when the backend has no cookie
	retries      int32
	redispatched bool
}

// mark sets *at to the current time when the request is timed.
func (tr *requestTrace) mark(at *time.Time) {
	if tr.timed {
		*at = time.Now()
	}
}

// end records how the request ended.
func (tr *requestTrace) end(cause, state byte, status int) {
	tr.term = [2]byte{cause, state}
	tr.status = status
}

// frontendLogs reports whether a frontend writes access-log lines.
func (b *Balancer) frontendLogs(fe *frontendRT) bool {
	return fe.cfg.HTTPLog && len(fe.cfg.Logs) > 0 && len(b.accessLogs) > 0
}

// logRequest writes the access-log line of a request to each of the
// frontend's log targets that Tether writes to.
func (b *Balancer) logRequest(t *table, fe *frontendRT, w http.ResponseWriter, r *http.Request, tr *requestTrace) {
	e := accesslog.Entry{
		Client:   r.RemoteAddr,
		Start:    tr.start,
		TLS:      r.TLS != nil,
		Frontend: fe.cfg.Name,
		Backend:  fe.cfg.Name,
		Status:   tr.status,
		Bytes:    tr.bytes,
		Tw:       -1,
		Tc:       -1,
		Tr:       -1,
		Ta:       millis(tr.start, time.Now()),
		FeConn:   fe.live.cur.Load(),
		Retries:  tr.retries,
		Method:   r.Method,
		URI:      logURI(r),
		Proto:    r.Proto,

		Redispatched: tr.redispatched,
	}
	e.Termination = [4]byte{orDash(tr.term[0]), orDash(tr.term[1]), orDash(tr.cookieReq), orDash(tr.cookieRes)}
	if e.Bytes == 0 && tr.status != 0 {
		// An answer of the proxy's own.
		e.Bytes = responseHeadBytes(tr.status, w.Header())
		if page, ok := errorPages[tr.status]; ok {
			e.Bytes += int64(len(page))
		}
	}
	if tr.backend != nil {
		e.Backend = tr.backend.cfg.Name
		e.BeConn = tr.backend.live.cur.Load()
	}
	if tr.server != nil {
		e.Server = tr.server.cfg.Name
		e.SrvConn = tr.server.live.cur.Load()
	}
	if !tr.waited.IsZero() {
		e.Tw = millis(tr.start, tr.waited)
		if !tr.sent.IsZero() {
			// The connection is set up as part of sending: Tc is
			// included in Tr.
			e.Tc = 0
		}
		if !tr.answered.IsZero() {
			e.Tr = millis(tr.sent, tr.answered)
		}
	}
	for _, f := range t.frontends {
		e.ActConn += f.live.cur.Load()
	}
	for _, target := range fe.cfg.Logs {
		if l := b.accessLogs[target.Address]; l != nil && target.TakesInfo() {
			l.Log(&e)
		}
	}
}

// millis returns the milliseconds from a to b.
func millis(a, b time.Time) int32 {
	return int32(b.Sub(a) / time.Millisecond)
}

func orDash(c byte) byte {
	if c == 0 {
		return '-'
	}
	return c
}
