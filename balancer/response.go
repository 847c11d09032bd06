package balancer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
)

// upstreamResponse is a server's response: its status, and a body reader
// over the server connection. Its headers were parsed straight into the
// client's header map, which saves copying them.
type upstreamResponse struct {
	status int
	// reason is the status line's reason phrase when it is not the
	// usual one for status (HAProxy forwards it as it came).
	reason        string
	contentLength int64 // -1 when unknown
	// close reports that the connection cannot serve another request.
	close bool
	body  io.Reader
	// upgrade is the server's Upgrade header, kept for a 101 answer.
	upgrade string
}

var errBadResponse = errors.New("invalid response from server")

// errHeadTooLarge marks a response header block larger than the limit.
var errHeadTooLarge = fmt.Errorf("%w: header block too large", errBadResponse)

// commonHeaders maps frequent response header names, in any case, to their
// canonical form without allocating.
var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept-Ranges", "Age", "Cache-Control", "Connection", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type",
		"Date", "Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Pragma",
		"Proxy-Authenticate", "Referrer-Policy", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Trailer", "Transfer-Encoding", "Upgrade", "Vary", "Via",
		"Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "X-Powered-By", "X-Request-Id",
	} {
		m[k] = k
		m[string(bytes.ToLower([]byte(k)))] = k
	}
	return m
}()

// readUpstreamResponse reads the final response to a request with the
// given method from c, skipping interim 1xx responses. A 101 is final when
// the request asked for an upgrade (upgrade set) and invalid otherwise.
// Each header block must fit in limit bytes. Headers other than hop-by-hop
// ones go into dst, which must be empty; on error dst is left empty again.
// vals, when not nil, is a slice that lives as long as dst, to keep the
// values in.
func readUpstreamResponse(c *upConn, method string, upgrade bool, limit int, dst http.Header, vals *[]string) (upstreamResponse, error) {
	for {
		c.order = c.order[:0]
		resp, err := readResponseHead(c.br, limit, dst, &c.order, vals)
		if err != nil {
			clear(dst)
			return resp, err
		}
		if resp.status == http.StatusSwitchingProtocols {
			if !upgrade {
				clear(dst)
				return resp, fmt.Errorf("%w: 101 to a request without Upgrade", errBadResponse)
			}
			// The connection now carries another protocol.
			resp.body, resp.contentLength, resp.close = http.NoBody, -1, true
			return resp, nil
		}
		if resp.status >= 100 && resp.status < 200 {
			clear(dst)
			continue
		}
		if err := resp.prepareBody(c, method, dst); err != nil {
			clear(dst)
			return resp, err
		}
		return resp, nil
	}
}

// readHeadLine reads one line of a header block, without its end of line,
// charging it to budget; the line is valid until the next read. A line with
// a CR or NUL inside is invalid, as HAProxy has it.
func readHeadLine(br *bufio.Reader, budget *int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	*budget -= len(line)
	if *budget < 0 {
		return nil, errHeadTooLarge
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		// Longer than the read buffer but within the limit.
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			if *budget -= len(line); *budget < 0 {
				return nil, errHeadTooLarge
			}
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		return nil, err
	}
	line = trimEOL(line)
	if bytes.IndexByte(line, '\r') >= 0 || bytes.IndexByte(line, 0) >= 0 {
		return nil, fmt.Errorf("%w: CR or NUL inside line %q", errBadResponse, line)
	}
	return line, nil
}

// readResponseHead parses the status line and a header block of at most
// limit bytes, appending the names of the headers put in dst to order in
// the order they came. The values are appended to *vals (a slice of this
// call's own when vals is nil), which must live as long as dst.
func readResponseHead(br *bufio.Reader, limit int, dst http.Header, order *[]string, vals *[]string) (upstreamResponse, error) {
	resp := upstreamResponse{contentLength: -1}
	budget := limit
	line, err := readHeadLine(br, &budget)
	if err != nil {
		return resp, err
	}
	// "HTTP/1.x NNN reason"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, fmt.Errorf("%w: status line %q", errBadResponse, line)
	}
	http10 := line[7] == '0'
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code > 999 || (len(line) > 12 && line[12] != ' ') {
		return resp, fmt.Errorf("%w: status line %q", errBadResponse, line)
	}
	resp.status = code
	if len(line) > 13 && string(line[13:]) != http.StatusText(code) {
		resp.reason = string(line[13:])
	}
	resp.close = http10

	head := bufferedHead(br)
	var own []string
	if vals == nil {
		vals = &own
	}
	var lastKey string
	sawCL, clValue := false, int64(0)
	for {
		line, err := readHeadLine(br, &budget)
		if err != nil {
			return resp, err
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Obsolete line folding: continue the previous value.
			if lastKey == "" {
				return resp, fmt.Errorf("%w: folded first header line", errBadResponse)
			}
			vv := dst[lastKey]
			if len(vv) > 0 {
				vv[len(vv)-1] += " " + string(bytes.TrimSpace(line))
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return resp, fmt.Errorf("%w: header line %q", errBadResponse, line)
		}
		rawKey := line[:colon]
		for _, ch := range rawKey {
			if !isTokenChar(ch) {
				return resp, fmt.Errorf("%w: header name %q", errBadResponse, rawKey)
			}
		}
		key, ok := commonHeaders[string(rawKey)]
		if !ok {
			key = textproto.CanonicalMIMEHeaderKey(head.str(rawKey))
		}
		value := head.str(bytes.TrimSpace(line[colon+1:]))
		lastKey = key
		switch key {
		case "Connection":
			for _, tok := range bytes.Split([]byte(value), []byte(",")) {
				switch string(bytes.ToLower(bytes.TrimSpace(tok))) {
				case "close":
					resp.close = true
				case "keep-alive":
					if http10 {
						resp.close = false
					}
				}
			}
			continue
		case "Transfer-Encoding":
			resp.contentLength = -2 // chunked or until close, decided below
			if !bytes.HasSuffix(bytes.ToLower(bytes.TrimSpace([]byte(value))), []byte("chunked")) {
				resp.close = true
				resp.contentLength = -3
			}
			continue
		case "Content-Length":
			n, canonical, ok := parseContentLength(value)
			if !ok || (sawCL && n != clValue) {
				return resp, fmt.Errorf("%w: Content-Length %q", errBadResponse, value)
			}
			if sawCL {
				// The same length again: merged, as HAProxy does.
				continue
			}
			sawCL, clValue = true, n
			if !canonical {
				value = strconv.FormatInt(n, 10)
			}
			if resp.contentLength < -1 {
				// Transfer-Encoding wins; the length is not forwarded.
				continue
			}
			resp.contentLength = n
		case "Upgrade":
			resp.upgrade = value
		}
		if isHopHeader(key) {
			continue
		}
		if vv, ok := dst[key]; ok {
			dst[key] = append(vv, value)
			continue
		}
		dst[key] = keepValue(vals, value, &head.lines)
		*order = append(*order, key)
	}
	if resp.contentLength < -1 {
		delete(dst, "Content-Length")
	}
	return resp, nil
}

// keepValue stores v in the header values' backing store *vals and
// returns it as a one-value slice, which an append copies rather than
// overwrite the store. A store that must grow is sized by *hint when it
// is above 0 (the lines of a head read whole; the hint is then used up),
// else by a guess.
func keepValue(vals *[]string, v string, hint *int) []string {
	values := *vals
	if len(values) == cap(values) {
		n := max(16, 2*cap(values))
		if hint != nil && *hint > 0 {
			n, *hint = max(*hint, 2*cap(values)), 0
		}
		values = make([]string, 0, n)
	}
	values = append(values, v)
	*vals = values
	return values[len(values)-1 : len(values) : len(values)]
}

// headText is a response head found whole in the read buffer, copied
// into one string that header names and values are cut from, which saves
// copying each of them.
type headText struct {
	text string
	// bufCap is the capacity of the buffered bytes the text starts at: a
	// slice of the read buffer with capacity c starts bufCap-c bytes in.
	bufCap int
	// lines is the number of lines in text, a bound on its headers.
	lines int
}

// bufferedHead returns the head at the start of br's buffered bytes, or
// the zero headText when it is not all there.
func bufferedHead(br *bufio.Reader) headText {
	b, _ := br.Peek(br.Buffered())
	end, lines := -1, 1
	for i := 0; i < len(b); lines++ {
		// Each line starts at i: an empty one ends the head.
		if rest := b[i:]; rest[0] == '\n' {
			end = i + 1
			break
		} else if len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
			end = i + 2
			break
		}
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			break
		}
		i += nl + 1
	}
	if end <= 0 {
		return headText{}
	}
	return headText{text: string(b[:end]), bufCap: cap(b), lines: lines}
}

// str returns v as a string: cut from the head's text when v is a part of
// the buffered head, a copy otherwise.
func (h *headText) str(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	if off := h.bufCap - cap(v); h.text != "" && off >= 0 && off+len(v) <= len(h.text) && h.text[off:off+len(v)] == string(v) {
		return h.text[off : off+len(v)]
	}
	return string(v)
}

// parseContentLength parses a Content-Length value: a decimal number, or
// a comma-separated list of the same number, which RFC 9110 section 8.6
// lets a recipient merge. canonical reports that value is the number alone.
func parseContentLength(value string) (n int64, canonical, ok bool) {
	n = -1
	canonical = true
	for i := 0; i <= len(value); {
		j := i
		for j < len(value) && value[j] >= '0' && value[j] <= '9' {
			j++
		}
		if j == i || j-i > 18 {
			return 0, false, false
		}
		v, _ := strconv.ParseInt(value[i:j], 10, 64)
		if n >= 0 && v != n {
			return 0, false, false
		}
		n = v
		if j == len(value) {
			return n, canonical, true
		}
		canonical = false
		for j < len(value) && (value[j] == ' ' || value[j] == '\t') {
			j++
		}
		if j == len(value) || value[j] != ',' {
			return 0, false, false
		}
		j++
		for j < len(value) && (value[j] == ' ' || value[j] == '\t') {
			j++
		}
		i = j
	}
	return 0, false, false
}

// prepareBody sets up the body reader from the framing headers.
func (resp *upstreamResponse) prepareBody(c *upConn, method string, dst http.Header) error {
	switch {
	case method == http.MethodHead || resp.status == http.StatusNoContent || resp.status == http.StatusNotModified:
		resp.body = http.NoBody
		if resp.contentLength < -1 {
			resp.contentLength = -1
		}
		if method != http.MethodHead {
			resp.contentLength = 0
		}
	case resp.contentLength == -2:
		resp.body = &chunkedBody{c: c, r: httputil.NewChunkedReader(c.br)}
		resp.contentLength = -1
	case resp.contentLength == -3 || resp.contentLength == -1:
		// No framing: the body ends when the server closes.
		resp.body = c.br
		resp.close = true
		resp.contentLength = -1
	default:
		c.lim = lengthBody{r: c.br, n: resp.contentLength}
		resp.body = &c.lim
	}
	return nil
}

// lengthBody reads exactly n bytes.
type lengthBody struct {
	r io.Reader
	n int64
}

func (l *lengthBody) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if err == io.EOF && l.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && l.n == 0 {
		err = io.EOF
	}
	return n, err
}

// chunkedBody decodes a chunked body and consumes its trailer section, so
// the connection is ready for the next response.
type chunkedBody struct {
	c *upConn
	r io.Reader
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		for {
			line, lerr := b.c.br.ReadSlice('\n')
			if lerr != nil {
				return n, io.ErrUnexpectedEOF
			}
			if len(trimEOL(line)) == 0 {
				break
			}
		}
	}
	return n, err
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// isTokenChar reports whether c may appear in a header name (RFC 9110).
func isTokenChar(c byte) bool { return tokenChars[c] }

// tokenChars marks the bytes of RFC 9110 tokens: letters, digits and
// !#$%&'*+-.^_`|~.
var tokenChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()
