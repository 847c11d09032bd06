package compat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawOrigin is a loopback origin that speaks HTTP/1.1 by hand, so that it
// can answer with any bytes at all. Canary requests (/canary/TOKEN) get a
// well-formed keep-alive response echoing their token; every other request
// is answered by the script. It records every request it reads.
type rawOrigin struct {
	ln     net.Listener
	script originScript

	mu      sync.Mutex
	reqs    []originRequest
	notes   []string
	conns   map[*originConn]bool
	nextID  int
	running int         // scripts answering right now
	held    *originConn // the connection a script asked to keep for later

	wg sync.WaitGroup
}

// originScript answers one non-canary request; it returns false to stop
// serving the connection (the origin then closes it unless the script
// already did).
type originScript func(c *originConn, r *originRequest) bool

// originRequest is one request as the origin read it off the wire.
type originRequest struct {
	Conn     int // connection number, from 1
	Seq      int // requests read on the connection before this one
	Method   string
	Target   string
	Header   map[string][]string // names in lower case
	Head     []byte              // request line and headers, as received
	RawBody  []byte              // body bytes as received (chunked framing included)
	Body     []byte              // body with any chunked framing removed
	Declared int                 // Content-Length, or -1
	Complete bool                // the body was read to its end
}

// String is the request's class: method, target, body length and whether
// the body was cut.
func (r originRequest) String() string {
	s := r.Method + " " + r.Target
	switch {
	case !r.Complete && r.Declared >= 0:
		s += fmt.Sprintf(" body %d/%d cut", len(r.Body), r.Declared)
	case !r.Complete:
		s += fmt.Sprintf(" body %d cut", len(r.Body))
	case len(r.Body) > 0:
		s += fmt.Sprintf(" body %q", r.Body)
	}
	return s
}

// originConn is one upstream connection as the origin sees it.
type originConn struct {
	net.Conn
	o      *rawOrigin
	id     int
	br     *bufio.Reader
	served int           // requests answered on this connection so far
	gone   chan struct{} // closed when the connection is finished
}

// originIdleLimit bounds how long the origin waits for a next request.
const originIdleLimit = 15 * time.Second

func startRawOrigin(t *testing.T, script originScript) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for an origin: %v", err)
	}
	o := &rawOrigin{ln: ln, script: script, conns: map[*originConn]bool{}}
	o.wg.Add(1)
	go o.accept()
	t.Cleanup(o.close)
	return o
}

func (o *rawOrigin) addr() string { return o.ln.Addr().String() }

func (o *rawOrigin) accept() {
	defer o.wg.Done()
	for {
		nc, err := o.ln.Accept()
		if err != nil {
			return
		}
		o.mu.Lock()
		o.nextID++
		c := &originConn{Conn: nc, o: o, id: o.nextID, br: bufio.NewReader(nc), gone: make(chan struct{})}
		o.conns[c] = true
		o.mu.Unlock()
		o.wg.Add(1)
		go o.serve(c)
	}
}

// close stops the listener and every connection and waits for them.
func (o *rawOrigin) close() {
	o.ln.Close()
	o.mu.Lock()
	for c := range o.conns {
		c.Close()
	}
	o.mu.Unlock()
	o.wg.Wait()
}

func (o *rawOrigin) serve(c *originConn) {
	defer o.wg.Done()
	defer func() {
		c.Close()
		close(c.gone)
		o.mu.Lock()
		delete(o.conns, c)
		o.mu.Unlock()
	}()
	for {
		c.SetReadDeadline(time.Now().Add(originIdleLimit))
		r, err := readOriginRequest(c.br)
		if r != nil {
			r.Conn, r.Seq = c.id, c.served
			o.mu.Lock()
			o.reqs = append(o.reqs, *r)
			o.mu.Unlock()
		}
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Time{})
		var keep bool
		if tok, ok := strings.CutPrefix(r.Target, "/canary/"); ok {
			_, err := io.WriteString(c, canaryResponse(tok))
			keep = err == nil
		} else {
			o.mu.Lock()
			o.running++
			o.mu.Unlock()
			keep = o.script(c, r)
			o.mu.Lock()
			o.running--
			o.mu.Unlock()
		}
		c.served++
		if !keep {
			return
		}
	}
}

// requests returns the requests read so far, canaries excluded.
func (o *rawOrigin) requests() []originRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []originRequest
	for _, r := range o.reqs {
		if !strings.HasPrefix(r.Target, "/canary/") {
			out = append(out, r)
		}
	}
	return out
}

// note records something the origin observed, for the case's class.
func (o *rawOrigin) note(s string) {
	o.mu.Lock()
	o.notes = append(o.notes, s)
	o.mu.Unlock()
}

func (o *rawOrigin) notesSoFar() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.notes...)
}

// class summarises what the origin saw: its non-canary requests and notes.
func (o *rawOrigin) class() string {
	var parts []string
	for _, r := range o.requests() {
		parts = append(parts, r.String())
	}
	s := "[" + strings.Join(parts, ", ") + "]"
	if n := o.notesSoFar(); len(n) > 0 {
		s += " " + strings.Join(n, ", ")
	}
	return s
}

// waitScripts waits up to limit until no script is answering.
func (o *rawOrigin) waitScripts(limit time.Duration) {
	pollUntil(limit, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.running == 0
	})
}

// hold keeps c for a later step of the case (see heldConn).
func (c *originConn) hold() {
	c.o.mu.Lock()
	c.o.held = c
	c.o.mu.Unlock()
}

// heldConn returns the connection a script kept with hold, or nil.
func (o *rawOrigin) heldConn() *originConn {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held
}

// reset closes the connection with a TCP reset.
func (c *originConn) reset() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// waitPeerClose waits up to limit for the proxy to close the connection
// and reports whether it did. Bytes the proxy sends meanwhile count as
// not closed. The caller must own the connection's reads (a script).
func (c *originConn) waitPeerClose(limit time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(limit))
	defer c.SetReadDeadline(time.Time{})
	var buf [512]byte
	_, err := c.br.Read(buf[:])
	if err == nil {
		return false
	}
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// canaryResponse is the well-formed response to a canary: its token in a
// header, in a cookie and in the body.
func canaryResponse(tok string) string {
	body := "token=" + tok
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Token: %s\r\nSet-Cookie: tok=%s\r\nContent-Length: %d\r\n\r\n%s", tok, tok, len(body), body)
}

// poisonResponse is a complete response that must never reach a canary:
// any client receiving it got bytes meant for another request.
var poisonResponse = canaryResponse("poison")

// readOriginRequest reads one request. It returns the request read so far
// together with the error when the body is cut, and nil when not even a
// request head arrived.
func readOriginRequest(br *bufio.Reader) (*originRequest, error) {
	var head bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		head.Write(line)
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) && head.Len() < 1<<20 {
				continue
			}
			return nil, fmt.Errorf("read request head: %w", err)
		}
		if head.Len() > 1<<20 {
			return nil, errors.New("request head over 1 MB")
		}
		if (len(line) == 2 && line[0] == '\r') || len(line) == 1 {
			if head.Len() == len(line) {
				head.Reset() // tolerate empty lines before a request
				continue
			}
			break
		}
	}
	r := &originRequest{Head: bytes.Clone(head.Bytes()), Header: map[string][]string{}, Declared: -1}
	lines := strings.Split(strings.TrimRight(head.String(), "\r\n"), "\n")
	f := strings.Fields(lines[0])
	if len(f) >= 2 {
		r.Method, r.Target = f[0], f[1]
	}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(strings.TrimRight(l, "\r"), ":")
		if ok {
			name = strings.ToLower(strings.TrimSpace(name))
			r.Header[name] = append(r.Header[name], strings.TrimSpace(value))
		}
	}
	tr := &recordingReader{br: br}
	defer func() { r.RawBody = bytes.Clone(tr.raw.Bytes()) }()
	if te := strings.ToLower(strings.Join(r.Header["transfer-encoding"], ",")); strings.Contains(te, "chunked") {
		body, err := readChunked(tr)
		r.Body = body
		if err != nil {
			return r, err
		}
		r.Complete = true
		return r, nil
	}
	if cl := r.Header["content-length"]; len(cl) > 0 {
		n, err := strconv.Atoi(cl[0])
		if err == nil && n >= 0 {
			r.Declared = n
		}
	}
	if r.Declared > 0 {
		body := make([]byte, r.Declared)
		n, err := io.ReadFull(tr, body)
		r.Body = body[:n]
		if err != nil {
			return r, fmt.Errorf("read request body: %w", err)
		}
	}
	r.Complete = true
	return r, nil
}

// recordingReader reads from br and keeps a copy of every byte read.
type recordingReader struct {
	br  *bufio.Reader
	raw bytes.Buffer
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.br.Read(p)
	r.raw.Write(p[:n])
	return n, err
}

func (r *recordingReader) ReadByte() (byte, error) {
	c, err := r.br.ReadByte()
	if err == nil {
		r.raw.WriteByte(c)
	}
	return c, err
}

// readChunked decodes a chunked body, trailers included, consuming nothing
// past its end.
func readChunked(br *recordingReader) ([]byte, error) {
	var body []byte
	for range 1 << 16 {
		line, err := readLine(br)
		if err != nil {
			return body, err
		}
		size, err := strconv.ParseUint(strings.TrimSpace(strings.SplitN(line, ";", 2)[0]), 16, 31)
		if err != nil {
			return body, fmt.Errorf("chunk size %q: %w", line, err)
		}
		if size == 0 {
			for range 100 {
				l, err := readLine(br)
				if err != nil || l == "" {
					return body, err
				}
			}
			return body, errors.New("too many trailers")
		}
		chunk := make([]byte, size)
		n, err := io.ReadFull(br, chunk)
		body = append(body, chunk[:n]...)
		if err != nil {
			return body, err
		}
		if l, err := readLine(br); err != nil || l != "" {
			return body, fmt.Errorf("chunk not followed by CRLF: %q %v", l, err)
		}
	}
	return body, errors.New("too many chunks")
}

func readLine(br io.ByteReader) (string, error) {
	var b []byte
	for len(b) < 4096 {
		c, err := br.ReadByte()
		if err != nil {
			return string(b), err
		}
		if c == '\n' {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		b = append(b, c)
	}
	return string(b), errors.New("line too long")
}
