package frontdoor

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// outBufferSize is the size of a response's output buffer: a response
// head and a small body leave in one write.
const outBufferSize = 8 << 10

// h1response is the http.ResponseWriter of one HTTP/1.x request. The head
// is written lazily: a response whose body the handler wrote whole before
// returning gets a Content-Length and leaves with its head in one write;
// one that streams is chunked (HTTP/1.1) or delimited by the close of the
// connection (HTTP/1.0).
type h1response struct {
	c      *h1conn
	req    *http.Request
	head   *parsedHead
	header http.Header

	status      int
	reason      string // the reason phrase, when not net/http's
	wroteHeader bool   // the status is set
	headSent    bool   // the head is in out or on the wire
	noBody      bool   // HEAD, 1xx, 204 or 304: no body bytes are sent
	chunked     bool
	closeAfter  bool
	failed      bool // a write to the client failed
	declared    int64
	written     int64
	// out holds output not yet written: the head, then body bytes.
	out    []byte
	outPtr *[]byte // out's pool entry
	// headBuf is where heads are composed, kept along the connection.
	headBuf []byte
	// order is the header names in the order to send them (the server's),
	// kept along the connection.
	order []string
	// values holds the header map's values when the balancer fills it
	// (HeaderValues), kept along the connection.
	values []string
	// endedAt is when the response ended, as the handler reported it.
	endedAt time.Time
}

// reset prepares the writer for request r.
func (w *h1response) reset(r *http.Request, h *parsedHead) {
	if w.header == nil {
		w.header = make(http.Header)
	}
	clear(w.header)
	clear(w.values)
	*w = h1response{c: w.c, req: r, head: h, header: w.header, out: w.out[:0], outPtr: w.outPtr, headBuf: w.headBuf, order: w.order[:0], values: w.values[:0], declared: -1}
}

// HeaderValues lends the slice the header map's values may be kept in
// (balancer's headerValuesLender); it lives as long as the map.
func (w *h1response) HeaderValues() *[]string { return &w.values }

// Header returns the response headers.
func (w *h1response) Header() http.Header { return w.header }

// WriteHeader sets the response status. An informational status other
// than 101 is sent at once, with the headers set so far.
func (w *h1response) WriteHeader(code int) {
	if w.wroteHeader || w.c.hijacked {
		return
	}
	if code < 100 || code > 999 {
		code = http.StatusInternalServerError
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		var stack [512]byte
		b := appendStatusLine(stack[:0], code, w.reason)
		b = appendHeaders(b, w.header, nil)
		b = append(b, "\r\n"...)
		w.flushOut()
		w.send(b)
		return
	}
	w.status, w.wroteHeader = code, true
	w.noBody = w.head.method == http.MethodHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
	if cl := w.header["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
}

// SetHeaderOrder makes the response send the headers named in order
// first, in that order, then the others sorted by name (balancer's
// headerOrderSetter): a server's header order, as HAProxy keeps it.
func (w *h1response) SetHeaderOrder(order []string) {
	w.order = append(w.order[:0], order...)
}

// SetReason makes the next status line carry reason as its reason phrase
// (balancer's reasonSetter): HAProxy's own pages and an origin's phrase.
func (w *h1response) SetReason(reason string) { w.reason = reason }

// Write sends body bytes.
func (w *h1response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		if w.head.method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.failed {
		return 0, errClientGone
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	w.ensureOut()
	if !w.headSent {
		// Keep the body with the head while both fit.
		if len(w.out)+len(p) <= cap(w.out) {
			w.out = append(w.out, p...)
			return len(p), nil
		}
		w.sendHead(false)
	}
	if w.chunked {
		w.out = strconv.AppendInt(w.out, int64(len(p)), 16)
		w.out = append(w.out, "\r\n"...)
	}
	if len(w.out)+len(p) <= cap(w.out) {
		w.out = append(w.out, p...)
	} else {
		w.flushOut()
		w.send(p)
	}
	if w.chunked {
		w.out = append(w.out, "\r\n"...)
	}
	if w.failed {
		return 0, errClientGone
	}
	return len(p), nil
}

// WriteString sends body bytes; a string that fits the buffer is not
// converted.
func (w *h1response) WriteString(s string) (int, error) {
	if w.wroteHeader && !w.headSent && !w.noBody && !w.failed && w.out != nil &&
		len(w.out)+len(s) <= cap(w.out) && (w.declared < 0 || w.written+int64(len(s)) <= w.declared) {
		w.out = append(w.out, s...)
		w.written += int64(len(s))
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// Flush sends what is buffered.
func (w *h1response) Flush() {
	w.FlushError()
}

// FlushError sends what is buffered and reports a failed write.
func (w *h1response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(false)
	}
	w.flushOut()
	if w.failed {
		return errClientGone
	}
	return nil
}

// SetReadDeadline sets the deadline of the request body's reads.
func (w *h1response) SetReadDeadline(t time.Time) error { return w.c.sock.SetReadDeadline(t) }

// WriteIdleLimit returns the limit each write to the client has from the
// start of its wait, timeout client, unless a deadline is set (balancer's
// writeBounder).
func (w *h1response) WriteIdleLimit() time.Duration { return w.c.srv.timeouts.Client }

// SetWriteDeadline sets the deadline of the response's writes.
func (w *h1response) SetWriteDeadline(t time.Time) error { return w.c.sock.SetWriteDeadline(t) }

// Hijack hands the connection over to the handler, after sending what is
// buffered.
func (w *h1response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.headSent {
		w.flushOut()
	}
	conn, brw := w.c.hijack()
	w.release()
	return conn, brw, nil
}

// finish ends the response after the handler returned; it reports
// whether the connection may serve another request.
func (w *h1response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendHead(true)
	}
	if w.chunked {
		w.out = append(w.out, "0\r\n\r\n"...)
	}
	w.flushOut()
	if w.declared >= 0 && !w.noBody && w.written < w.declared {
		// The body is shorter than announced: only the close shows it.
		w.closeAfter = true
	}
	return !w.closeAfter && !w.failed
}

// abort ends a response the handler gave up: what it sent is sent, but
// never made to look complete (no Content-Length is computed, a chunked
// body gets no last chunk); the connection is closed after.
func (w *h1response) abort() {
	if w.wroteHeader && !w.headSent && len(w.out) > 0 {
		w.sendHead(false)
	}
	if w.headSent {
		w.flushOut()
	}
}

// sendHead puts the response head in front of the buffered body. When the
// handler is done (final), a body wholly buffered gets its length.
func (w *h1response) sendHead(final bool) {
	w.ensureOut()
	body := w.out
	w.headSent = true
	h, hdr := w.head, w.header
	if w.c.srv.inShutdown.Load() || h.close {
		w.closeAfter = true
	}
	if hasToken(hdr["Connection"], "close") {
		w.closeAfter = true
	}
	if w.c.continueNeeded && !w.c.bodyDone {
		// The client waits for "100 Continue" and may never send the
		// body: the connection cannot serve another request.
		w.closeAfter = true
	}
	delete(hdr, "Transfer-Encoding")
	if w.status < 200 || w.status == http.StatusNoContent || w.status == http.StatusNotModified {
		// No framing for a response that has no body (RFC 9110 8.6), as
		// net/http writes it.
		delete(hdr, "Content-Length")
		delete(hdr, "Content-Type")
	}
	var length int64 = -1
	switch {
	case w.noBody || w.declared >= 0:
	case final && !(h.method == http.MethodHead && len(body) == 0):
		length = int64(len(body))
	case h.minor == 1:
		w.chunked = true
	default:
		w.closeAfter = true
	}
	b := appendStatusLine(w.headBuf[:0], w.status, w.reason)
	if hdr["Connection"] == nil {
		switch {
		case w.closeAfter:
			b = append(b, "Connection: close\r\n"...)
		case h.minor == 0:
			b = append(b, "Connection: keep-alive\r\n"...)
		}
	}
	b = appendHeaders(b, hdr, w.order)
	if length >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, length, 10)
		b = append(b, "\r\n"...)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	b = append(b, "\r\n"...)
	if w.chunked && len(body) > 0 {
		b = strconv.AppendInt(b, int64(len(body)), 16)
		b = append(b, "\r\n"...)
		w.out = append(body, "\r\n"...)
	}
	// The head goes in front of the body in out, or alone before it.
	n := len(w.out)
	if len(b)+n > cap(w.out) {
		w.send(b)
		return
	}
	w.out = w.out[:len(b)+n]
	copy(w.out[len(b):], w.out[:n])
	copy(w.out, b)
	w.headBuf = b[:0]
}

// ensureOut gives the response its output buffer.
func (w *h1response) ensureOut() {
	if w.out == nil {
		w.outPtr = w.c.srv.getOut()
		w.out = (*w.outPtr)[:0]
	}
}

// flushOut writes the buffered output.
func (w *h1response) flushOut() {
	if len(w.out) > 0 {
		w.send(w.out)
		w.out = w.out[:0]
	}
}

func (w *h1response) send(b []byte) {
	if w.failed {
		return
	}
	if err := w.c.write(b); err != nil {
		w.failed = true
	}
}

// release gives the output buffer back.
func (w *h1response) release() {
	if w.outPtr != nil {
		w.c.srv.putOut(w.outPtr)
		w.out, w.outPtr = nil, nil
	}
}

// errClientGone is what writes return once a write to the client failed.
var errClientGone = &net.OpError{Op: "write", Net: "tcp", Err: net.ErrClosed}

// appendStatusLine appends an HTTP/1.1 status line with reason, or
// net/http's reason phrase for code when reason is empty.
func appendStatusLine(b []byte, code int, reason string) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if reason != "" {
		b = append(b, reason...)
	} else if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// appendHeaders appends the header lines of h: those named in order
// first, in that order, then the others sorted by name as net/http writes
// them. A CR or LF in a value becomes a space.
func appendHeaders(b []byte, h http.Header, order []string) []byte {
	listed := 0 // the names in order that h has, each listed once
	for _, k := range order {
		vv, ok := h[k]
		if ok {
			listed++
		}
		b = appendHeader(b, k, vv)
	}
	if listed == len(h) {
		// Nothing was added on the way: no need to look through h.
		return b
	}
	var stack [32]string
	keys := stack[:0]
	for k, vv := range h {
		if len(vv) > 0 && !slices.Contains(order, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendHeader(b, k, h[k])
	}
	return b
}

// appendHeader appends a header line for each value.
func appendHeader(b []byte, k string, values []string) []byte {
	for _, v := range values {
		b = append(b, k...)
		b = append(b, ": "...)
		if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 {
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
		}
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return b
}

// hasToken reports whether a comma-separated header has the token.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
