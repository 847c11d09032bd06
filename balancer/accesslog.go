package balancer

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tether/balancer/accesslog"
)

// syslogFacilities are the syslog facility names, in the order of their
// numbers.
var syslogFacilities = strings.Fields("kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 local0 local1 local2 local3 local4 local5 local6 local7")

// frontendLog is how a frontend writes its access log, compiled from its
// configuration when the routing table is built.
type frontendLog struct {
	// targets are the log lines that take access-log lines.
	targets []*accesslog.Target
	// layout is the log-format, nil for option httplog.
	layout *accesslog.Layout
	// captures tells whether the request's or the response's headers or
	// cookies are captured.
	captures bool
}

// buildFrontendLog compiles fc's log settings; nil when it logs nothing.
func buildFrontendLog(fc *Frontend, g *Global) (*frontendLog, error) {
	if !fc.Logged() {
		return nil, nil
	}
	fl := &frontendLog{}
	if fc.LogFormat != "" {
		l, err := accesslog.ParseLayout(fc.LogFormat)
		if err != nil {
			return nil, err
		}
		fl.layout = l
		fl.captures = l.UsesCaptures() && (len(fc.CaptureRequest)+len(fc.CaptureResponse) > 0 || fc.CaptureCookie != nil)
	} else {
		fl.captures = len(fc.CaptureRequest)+len(fc.CaptureResponse) > 0 || fc.CaptureCookie != nil
	}
	tag := fc.LogTag
	if tag == "" {
		tag = g.LogTag
	}
	if tag == "" {
		tag = filepath.Base(os.Args[0])
	}
	host := ""
	if g.LogSendHostname {
		host = g.LogHostname
		if host == "" {
			host, _ = os.Hostname()
		}
	}
	for _, lt := range fc.Logs {
		if !lt.TakesInfo() {
			continue
		}
		t := &accesslog.Target{Output: lt.Address, MaxLen: lt.Len, Tag: tag, Hostname: host, Severity: lt.InfoSeverity()}
		for i, f := range syslogFacilities {
			if f == lt.Facility {
				t.Facility = i
			}
		}
		switch {
		case lt.Format != "":
			f, ok := accesslog.ParseSyslogFormat(lt.Format)
			if !ok {
				return nil, fmt.Errorf("log %s: unknown format %q", lt.Address, lt.Format)
			}
			t.Format = f
		case g.LogSendHostname:
			t.Format = accesslog.FormatRFC3164
		default:
			t.Format = accesslog.FormatLocal
		}
		if lt.Address != accesslog.Stdout && lt.Address != accesslog.Stderr {
			ap, err := netip.ParseAddrPort(lt.Address)
			if err != nil {
				return nil, fmt.Errorf("log %s: not a UDP ip:port: %w", lt.Address, err)
			}
			t.Output, t.Addr = accesslog.Syslog, ap
		}
		fl.targets = append(fl.targets, t)
	}
	return fl, nil
}

// requestTrace is what serving a request leaves for the access log. The
// proxy fills it on every request: plain assignments, and clock readings
// only when timed is set because the frontend logs.
type requestTrace struct {
	timed bool
	// start is when the handler began: the request's headers were read.
	start time.Time
	// waited is when the request left the queue or got its server;
	// connected when a new connection to the server was established
	// (its TLS handshake included); answered when the response head
	// arrived. A zero time means the phase did not happen.
	waited, connected, answered time.Time
	// upstream is how the request got its connection to the server.
	upstream upstreamConn

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
	// queue is where the request left the queue it waited in.
	queue queuePos

	// reqCaptures and resCaptures are the captured header values,
	// cookieReq and cookieRes the captured cookies, filled only when the
	// frontend captures.
	reqCaptures, resCaptures   []string
	capCookieReq, capCookieRes string
}

// captureRequest records what fe captures from r's headers: the last
// occurrence of each captured header and the first cookie whose name
// starts with the captured cookie's.
func (tr *requestTrace) captureRequest(fe *frontendRT, r *http.Request) {
	if fe.log == nil || !fe.log.captures {
		return
	}
	fc := &fe.cfg
	if len(fc.CaptureRequest) > 0 {
		tr.reqCaptures = captureHeaders(fc.CaptureRequest, r.Header)
		for i, c := range fc.CaptureRequest {
			// net/http keeps the Host header out of r.Header.
			if strings.EqualFold(c.Name, "Host") && r.Host != "" {
				tr.reqCaptures[i] = truncate(r.Host, c.Len)
			}
		}
	}
	if len(fc.CaptureResponse) > 0 {
		// Filled with the response; absent headers stay "".
		tr.resCaptures = make([]string, len(fc.CaptureResponse))
	}
	if c := fc.CaptureCookie; c != nil {
		tr.capCookieReq = captureCookie(c, r.Header["Cookie"], false)
	}
}

// captureResponse records what fe captures from a server's response head.
func (tr *requestTrace) captureResponse(fe *frontendRT, h http.Header) {
	if fe.log == nil || !fe.log.captures {
		return
	}
	fc := &fe.cfg
	if len(fc.CaptureResponse) > 0 {
		tr.resCaptures = captureHeaders(fc.CaptureResponse, h)
	}
	if c := fc.CaptureCookie; c != nil {
		tr.capCookieRes = captureCookie(c, h["Set-Cookie"], true)
	}
}

// captureHeaders returns the last value of each captured header, cut to
// its length.
func captureHeaders(caps []Capture, h http.Header) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		if vs := h.Values(c.Name); len(vs) > 0 {
			out[i] = truncate(vs[len(vs)-1], c.Len)
		}
	}
	return out
}

// maxCookieCapture is HAProxy's tune.http.cookielen: the most a cookie
// capture keeps.
const maxCookieCapture = 63

// captureCookie returns "NAME=value" of the first cookie in lines whose
// name starts with c.Name (c.Name ending in "=" asks for that exact name),
// cut to c.Len; setCookie reads Set-Cookie lines, whose first pair is the
// cookie.
func captureCookie(c *Capture, lines []string, setCookie bool) string {
	for _, line := range lines {
		for pair := range strings.SplitSeq(line, ";") {
			pair = strings.TrimLeft(pair, " \t")
			if strings.HasPrefix(pair, c.Name) && (strings.HasSuffix(c.Name, "=") || strings.Contains(pair, "=")) {
				return truncate(pair, min(c.Len, maxCookieCapture))
			}
			if setCookie {
				break
			}
		}
	}
	return ""
}

// truncate cuts s to n bytes.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// upstreamConn is how a request got its connection to a server.
type upstreamConn uint8

const (
	// upstreamNone: no connection was established.
	upstreamNone upstreamConn = iota
	// upstreamNew: a new connection, at requestTrace.connected.
	upstreamNew
	// upstreamReused: an idle pooled connection, which takes no
	// connect time (Tc 0).
	upstreamReused
)

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
	return fe.log != nil && len(fe.log.targets) > 0 && len(b.accessLogs) > 0
}

// logRequest writes the access-log line of a request to each of the
// frontend's log targets that Tether writes to.
func (b *Balancer) logRequest(t *table, fe *frontendRT, w http.ResponseWriter, r *http.Request, tr *requestTrace) {
	end := time.Now()
	e := accesslog.Entry{
		Client:   r.RemoteAddr,
		Start:    tr.start,
		Accept:   tr.start,
		TLS:      r.TLS != nil,
		Frontend: fe.cfg.Name,
		Backend:  fe.cfg.Name,
		Status:   tr.status,
		Bytes:    tr.bytes,
		Tw:       -1,
		Tc:       -1,
		Tr:       -1,
		FeConn:   fe.live.cur.Load(),
		Retries:  tr.retries,
		Method:   r.Method,
		URI:      logURI(r),
		Proto:    r.Proto,

		Redispatched: tr.redispatched,
		SrvQueue:     tr.queue.server,
		BackendQueue: tr.queue.backend,

		Layout:           fe.log.layout,
		RequestCaptures:  tr.reqCaptures,
		ResponseCaptures: tr.resCaptures,
		CookieRequest:    tr.capCookieReq,
		CookieResponse:   tr.capCookieRes,
	}
	if c, ok := ClientConnOf(r.Context()).(TimedConn); ok {
		requestTimers(&e, c.RequestTimes(), tr.start)
		c.Answered(end)
	}
	e.Ta = millis(e.Start, end)
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
		// Tr runs from the connection's establishment, or from the end
		// of the queue on a reused one.
		from := tr.waited
		switch tr.upstream {
		case upstreamNew:
			e.Tc = millis(tr.waited, tr.connected)
			from = tr.connected
		case upstreamReused:
			e.Tc = 0
		}
		if !tr.answered.IsZero() && tr.upstream != upstreamNone {
			e.Tr = millis(from, tr.answered)
		}
	}
	for _, f := range t.frontends {
		e.ActConn += f.live.cur.Load()
	}
	for _, target := range fe.log.targets {
		if l := b.accessLogs[target.Output]; l != nil {
			e.Target = target
			l.Log(&e)
		}
	}
}

// requestTimers sets e's accept and request dates and its Th, Ti and TR
// timers from the client connection's times and the moment the request's
// headers were read (headers). A first byte not seen on its own read
// counts as arriving with the headers.
func requestTimers(e *accesslog.Entry, rt RequestTimes, headers time.Time) {
	first := rt.FirstByte
	switch {
	case first.IsZero() || first.After(headers):
		first = headers
	case first.Before(rt.Ready):
		first = rt.Ready
	}
	if rt.Ready.After(first) || rt.Accepted.After(rt.Ready) {
		// Times from another clock than headers': keep what is sure.
		return
	}
	e.Accept, e.Start = rt.Accepted, first
	e.Th = millis(rt.Accepted, rt.Ready)
	e.Ti = millis(rt.Ready, first)
	e.TR = millis(first, headers)
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

// DroppedLogs returns how many access-log lines were dropped because an
// output was too slow or failed (HAProxy's DroppedLogs).
func (b *Balancer) DroppedLogs() uint64 {
	var n uint64
	for _, l := range b.accessLogs {
		n += l.Dropped()
	}
	return n
}

// Refusal is a request a frontend's HTTP server answered itself, before
// the proxy handler: HAProxy's 400 and 408, logged as "<BADREQ>".
type Refusal struct {
	Status int
	// Client is the client's "ip:port"; Accepted is when its connection
	// was accepted.
	Client   string
	Accepted time.Time
	// TimedOut is timeout http-request expiring (termination cR);
	// ClientClosed is the client closing its side before a complete
	// request (CR); otherwise the request was refused (PR).
	TimedOut, ClientClosed bool
	// Empty tells that the connection carried no byte at all, which
	// option dontlognull keeps out of the log.
	Empty bool
}

// LogRefusal writes the access-log line of a request the frontend's
// server refused, as HAProxy writes it: no backend or server, no timers
// but the total, 0 bytes, no captures, "<BADREQ>" for the request line.
func (e *FrontendEvents) LogRefusal(r Refusal) {
	t := e.b.tab.Load()
	fe := t.frontends[e.name]
	if fe == nil || !e.b.frontendLogs(fe) || r.Empty && fe.cfg.DontLogNull {
		return
	}
	cause := byte('P')
	switch {
	case r.TimedOut:
		cause = 'c'
	case r.ClientClosed:
		cause = 'C'
	}
	en := accesslog.Entry{
		Client:      r.Client,
		Start:       r.Accepted,
		Frontend:    fe.cfg.Name,
		Backend:     fe.cfg.Name,
		TR:          -1,
		Tw:          -1,
		Tc:          -1,
		Tr:          -1,
		Ta:          millis(r.Accepted, time.Now()),
		Status:      r.Status,
		Termination: [4]byte{cause, 'R', '-', '-'},
		FeConn:      fe.live.cur.Load(),
		BadRequest:  true,
		Layout:      fe.log.layout,
	}
	for _, f := range t.frontends {
		en.ActConn += f.live.cur.Load()
	}
	for _, target := range fe.log.targets {
		if l := e.b.accessLogs[target.Output]; l != nil {
			en.Target = target
			l.Log(&en)
		}
	}
}
