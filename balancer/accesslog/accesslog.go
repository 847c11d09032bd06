// Package accesslog writes HAProxy's access-log lines: one line per HTTP
// request, in the layout of HAProxy 2.6's "option httplog" or of a
// "log-format", behind the syslog header of the "log" line's format, to
// standard output, standard error or a syslog server over UDP.
//
// The proxy fills an Entry at the end of each request and hands it to a
// Logger, which queues it in a bounded buffer without blocking; a writer
// goroutine (Logger.Run) formats and writes the queued entries. When the
// buffer is full the entry is dropped and counted.
package accesslog

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Entry is what one HTTP request leaves in the access log. Its strings may
// refer to the request's own data: an Entry is copied when queued.
type Entry struct {
	// Client is the client's "ip:port" as net/http reports it.
	Client string
	// Start is when the request began (HAProxy's %tr).
	Start time.Time
	// TLS is whether the client connection uses TLS (a "~" after the
	// frontend name).
	TLS bool
	// Frontend, Backend and Server name the proxies and the server that
	// handled the request; Server is "" when none was chosen (<NOSRV>).
	Frontend, Backend, Server string
	// TR, Tw, Tc, Tr and Ta are HAProxy's timers in milliseconds: request
	// headers, queue wait, connect, server response headers and the
	// whole request. A phase that did not happen is -1.
	TR, Tw, Tc, Tr, Ta int32
	// Status is the status sent to the client, 0 when none was (written
	// -1).
	Status int
	// Bytes counts the bytes sent to the client, headers included.
	Bytes int64
	// Termination is HAProxy's termination state: the cause, the session
	// state, then the persistence cookie's request and response flags.
	Termination [4]byte
	// ActConn, FeConn, BeConn and SrvConn are the process's, the
	// frontend's, the backend's and the server's concurrent connections
	// when the request ended.
	ActConn, FeConn, BeConn, SrvConn int64
	// Retries counts connection retries; Redispatched records that the
	// request moved to another server (a "+" before the count).
	Retries      int32
	Redispatched bool
	// SrvQueue and BackendQueue are the requests that were ahead of this
	// one in the server's and the backend's queues.
	SrvQueue, BackendQueue int64
	// Method, URI and Proto make the request line.
	Method, URI, Proto string
	// BadRequest marks a request that could not be read, whose request
	// line is written "<BADREQ>".
	BadRequest bool

	// Target is where and how the line is written; nil writes the
	// message alone (format raw) to the Logger's output.
	Target *Target
	// Layout is the frontend's log-format; nil is "option httplog".
	Layout *Layout
	// Accept is when the client connection was accepted (%t); zero
	// means Start.
	Accept time.Time
	// Th and Ti are the handshake time and the idle time before the
	// request, in milliseconds (%Th, %Ti).
	Th, Ti int32
	// RequestCaptures and ResponseCaptures are the values of the
	// frontend's "capture request|response header" lines, in order, ""
	// for an absent header; nil when it has none.
	RequestCaptures, ResponseCaptures []string
	// CookieRequest and CookieResponse are what "capture cookie" took
	// from the request's Cookie and the server's Set-Cookie headers, as
	// "NAME=value"; "" when nothing was.
	CookieRequest, CookieResponse string
}

// appendMessage appends the line's text, without a syslog header.
func (e *Entry) appendMessage(dst []byte) []byte {
	if e.Layout != nil {
		return e.appendLayout(dst, e.Layout)
	}
	return AppendHTTPLog(dst, e)
}

// maxRequestLine is how much of a request line HAProxy keeps for its log
// (tune.http.logurilen minus its terminating zero).
const maxRequestLine = 1023

// AppendHTTPLog appends e to dst as an "option httplog" line, without a
// syslog header and without the line feed:
//
//	%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r
//
// The captured headers' fields (%hr %hs) are left out, as HAProxy leaves
// them out, when the frontend captures no headers.
func AppendHTTPLog(dst []byte, e *Entry) []byte {
	dst = appendClient(dst, e.Client)
	dst = append(dst, " ["...)
	dst = e.Start.AppendFormat(dst, "02/Jan/2006:15:04:05.000")
	dst = append(dst, "] "...)
	dst = append(dst, e.Frontend...)
	if e.TLS {
		dst = append(dst, '~')
	}
	dst = append(dst, ' ')
	dst = append(dst, e.Backend...)
	dst = append(dst, '/')
	if e.Server == "" {
		dst = append(dst, "<NOSRV>"...)
	} else {
		dst = append(dst, e.Server...)
	}
	dst = append(dst, ' ')
	for i, t := range [...]int32{e.TR, e.Tw, e.Tc, e.Tr, e.Ta} {
		if i > 0 {
			dst = append(dst, '/')
		}
		dst = strconv.AppendInt(dst, int64(t), 10)
	}
	dst = append(dst, ' ')
	if e.Status == 0 {
		dst = append(dst, "-1"...)
	} else {
		dst = strconv.AppendInt(dst, int64(e.Status), 10)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.Bytes, 10)
	dst = append(dst, ' ')
	dst = appendEncoded(dst, orDash(e.CookieRequest), urlEncoded)
	dst = append(dst, ' ')
	dst = appendEncoded(dst, orDash(e.CookieResponse), urlEncoded)
	dst = append(dst, ' ')
	dst = append(dst, e.Termination[:]...)
	dst = append(dst, ' ')
	for i, n := range [...]int64{e.ActConn, e.FeConn, e.BeConn, e.SrvConn} {
		if i > 0 {
			dst = append(dst, '/')
		}
		dst = strconv.AppendInt(dst, n, 10)
	}
	dst = append(dst, '/')
	if e.Redispatched {
		dst = append(dst, '+')
	}
	dst = strconv.AppendInt(dst, int64(e.Retries), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.SrvQueue, 10)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, e.BackendQueue, 10)
	if e.RequestCaptures != nil {
		dst = appendCaptures(append(dst, ' '), e.RequestCaptures, false)
	}
	if e.ResponseCaptures != nil {
		dst = appendCaptures(append(dst, ' '), e.ResponseCaptures, false)
	}
	dst = append(dst, " \""...)
	dst = appendRequestLine(dst, e)
	return append(dst, '"')
}

// appendClient appends "ip:port" the way HAProxy writes it: an IPv6
// address without brackets.
func appendClient(dst []byte, client string) []byte {
	if len(client) > 0 && client[0] == '[' {
		if end := strings.IndexByte(client, ']'); end > 0 {
			dst = append(dst, client[1:end]...)
			return append(dst, client[end+1:]...)
		}
	}
	return append(dst, client...)
}

// appendRequestLine appends "METHOD URI PROTO", truncated as HAProxy
// truncates it, with '"', '#' and non-printable bytes written as "#XX";
// "<BADREQ>" for a request that could not be read.
func appendRequestLine(dst []byte, e *Entry) []byte {
	if e.BadRequest {
		return append(dst, "<BADREQ>"...)
	}
	budget := maxRequestLine
	for i, part := range [...]string{e.Method, e.URI, e.Proto} {
		if i > 0 {
			if budget == 0 {
				break
			}
			dst = append(dst, ' ')
			budget--
		}
		if len(part) > budget {
			part = part[:budget]
		}
		budget -= len(part)
		dst = appendEncoded(dst, part, urlEncoded)
	}
	return dst
}

const hexDigits = "0123456789ABCDEF"

// Which bytes a field writes as "#XX": those of a URI, or those of a
// captured header, where braces and bars also delimit fields.
const (
	urlEncoded    = `"#`
	headerEncoded = `"#{|}`
)

// appendEncoded appends s with non-printable bytes and those of special
// written as "#XX", as HAProxy encodes logged text.
func appendEncoded(dst []byte, s string, special string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || strings.IndexByte(special, c) >= 0 {
			dst = append(dst, '#', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// DefaultCapacity is how many entries a Logger queues before dropping.
const DefaultCapacity = 4096

// rawTarget is how an entry without a Target is written.
var rawTarget = Target{Output: Stdout, Format: FormatRaw}

// Logger queues entries for a writer goroutine. Log is safe for concurrent
// use and never blocks; Run must be running for entries to be written.
type Logger struct {
	entries chan Entry
	// out is the stream lines are written to; nil for a syslog Logger,
	// which sends each line to its target's address.
	out     io.Writer
	pid     int
	dropped atomic.Uint64
	written atomic.Uint64
}

// New returns a Logger that writes to out and queues at most capacity
// entries (DefaultCapacity when capacity is not positive).
func New(out io.Writer, capacity int) *Logger {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Logger{entries: make(chan Entry, capacity), out: out, pid: os.Getpid()}
}

// NewSyslog returns a Logger that sends each entry, in one UDP datagram, to
// the address of its Target, queueing at most capacity entries.
func NewSyslog(capacity int) *Logger {
	return New(nil, capacity)
}

// Log queues e, or drops and counts it when the queue is full.
func (l *Logger) Log(e *Entry) {
	select {
	case l.entries <- *e:
	default:
		l.dropped.Add(1)
	}
}

// Dropped returns how many entries were dropped: the queue was full, or
// they could not be written.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Written returns how many lines were written.
func (l *Logger) Written() uint64 { return l.written.Load() }

// Run writes queued entries until ctx is done, then writes those still
// queued and returns. Lines queued together are written in one call. A
// write error on a stream ends Run and is returned; entries logged after
// it are dropped and counted once the queue is full. A datagram that
// cannot be sent is dropped and counted, and Run goes on.
func (l *Logger) Run(ctx context.Context) error {
	if l.out == nil {
		return l.runSyslog(ctx)
	}
	buf := make([]byte, 0, 64<<10)
	for {
		select {
		case e := <-l.entries:
			var err error
			if buf, err = l.writeBatch(buf[:0], &e); err != nil {
				return err
			}
		case <-ctx.Done():
			for {
				select {
				case e := <-l.entries:
					var err error
					if buf, err = l.writeBatch(buf[:0], &e); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		}
	}
}

// appendLine appends e's line, header included.
func (l *Logger) appendLine(buf []byte, e *Entry) []byte {
	t := e.Target
	if t == nil {
		t = &rawTarget
	}
	return t.appendLine(buf, e, time.Now(), l.pid)
}

// writeBatch writes first and whatever else is queued, up to a buffer's
// worth, in one write.
func (l *Logger) writeBatch(buf []byte, first *Entry) ([]byte, error) {
	buf = l.appendLine(buf, first)
	n := uint64(1)
	for len(buf) < cap(buf)-2048 {
		select {
		case e := <-l.entries:
			buf = l.appendLine(buf, &e)
			n++
			continue
		default:
		}
		break
	}
	if _, err := l.out.Write(buf); err != nil {
		l.dropped.Add(n)
		return buf, err
	}
	l.written.Add(n)
	return buf, nil
}

// runSyslog sends queued entries over UDP until ctx is done, then sends
// those still queued.
func (l *Logger) runSyslog(ctx context.Context) error {
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 0, 64<<10)
	send := func(e *Entry) {
		if e.Target == nil || !e.Target.Addr.IsValid() {
			l.dropped.Add(1)
			return
		}
		buf = l.appendLine(buf[:0], e)
		if _, err := conn.WriteToUDPAddrPort(buf, e.Target.Addr); err != nil {
			l.dropped.Add(1)
			return
		}
		l.written.Add(1)
	}
	for {
		select {
		case e := <-l.entries:
			send(&e)
		case <-ctx.Done():
			for {
				select {
				case e := <-l.entries:
					send(&e)
				default:
					return nil
				}
			}
		}
	}
}
