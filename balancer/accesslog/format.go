package accesslog

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Layout is a compiled "log-format" string: literal text, separators and
// variables. A Layout is immutable and safe for concurrent use.
type Layout struct {
	nodes []node
}

type nodeKind uint8

const (
	nodeText nodeKind = iota
	nodeSeparator
	nodeVar
)

type node struct {
	kind  nodeKind
	text  string
	v     variable
	quote bool
}

// variable is one "%" variable of a log format.
type variable uint8

const (
	varClientIP variable = iota
	varClientPort
	varAcceptDate
	varAcceptDateGMT
	varAcceptDateLocal
	varAcceptMillis
	varRequestDate
	varRequestDateGMT
	varRequestDateLocal
	varFrontend
	varFrontendTransport
	varBackend
	varServer
	varStatus
	varBytes
	varTh
	varTi
	varTR
	varTq
	varTw
	varTc
	varTr
	varTa
	varTt
	varTd
	varTermination
	varTerminationCookie
	varCookieRequest
	varCookieResponse
	varHeadersRequest
	varHeadersResponse
	varHeadersRequestList
	varHeadersResponseList
	varRequestLine
	varMethod
	varURI
	varURIPath
	varPathOnly
	varQuery
	varVersion
	varActConn
	varFeConn
	varBeConn
	varSrvConn
	varRetries
	varSrvQueue
	varBackendQueue
	varPID
	varHostname
)

// variables maps the names Tether writes to their variable; quoted marks
// the text ones, which the Q flag quotes.
var variables = map[string]struct {
	v      variable
	quoted bool
}{
	"ci": {varClientIP, true}, "cp": {varClientPort, false},
	"t": {varAcceptDate, false}, "T": {varAcceptDateGMT, false}, "Tl": {varAcceptDateLocal, false}, "ms": {varAcceptMillis, false},
	"tr": {varRequestDate, false}, "trg": {varRequestDateGMT, false}, "trl": {varRequestDateLocal, false},
	"f": {varFrontend, true}, "ft": {varFrontendTransport, true}, "b": {varBackend, true}, "s": {varServer, true},
	"ST": {varStatus, false}, "B": {varBytes, false},
	"Th": {varTh, false}, "Ti": {varTi, false}, "TR": {varTR, false}, "Tq": {varTq, false}, "Tw": {varTw, false},
	"Tc": {varTc, false}, "Tr": {varTr, false}, "Ta": {varTa, false}, "Tt": {varTt, false}, "Td": {varTd, false},
	"ts": {varTermination, false}, "tsc": {varTerminationCookie, false},
	"CC": {varCookieRequest, true}, "CS": {varCookieResponse, true},
	"hr": {varHeadersRequest, true}, "hs": {varHeadersResponse, true},
	"hrl": {varHeadersRequestList, true}, "hsl": {varHeadersResponseList, true},
	"r": {varRequestLine, true}, "HM": {varMethod, true}, "HU": {varURI, true}, "HP": {varURIPath, true},
	"HPO": {varPathOnly, true}, "HQ": {varQuery, true}, "HV": {varVersion, true},
	"ac": {varActConn, false}, "fc": {varFeConn, false}, "bc": {varBeConn, false}, "sc": {varSrvConn, false},
	"rc": {varRetries, false}, "sq": {varSrvQueue, false}, "bq": {varBackendQueue, false},
	"pid": {varPID, false}, "H": {varHostname, true},
}

// haproxyOnly are HAProxy 2.6's log-format variables Tether does not
// write: a format naming one is refused rather than logged wrong.
var haproxyOnly = "ID Tu Ts U bi bp fi fp lc rt si sp sslc sslv"

// HTTPLogFormat is HAProxy's definition of "option httplog" as a log
// format.
const HTTPLogFormat = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r"

// CLFLogFormat is HAProxy's definition of "option httplog clf" as a log
// format.
const CLFLogFormat = `%{+Q}o %{-Q}ci - - [%trg] %r %ST %B "" "" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl`

// ParseLayout compiles a log-format string as HAProxy 2.6 reads it:
// spaces separate fields (several count as one), "%%" is a literal "%",
// "%{+Q}VAR" or "%{-Q}VAR" quote a variable or not, and "%o" carries its
// flags to the variables after it. A variable Tether does not write, a
// sample expression "%[…]" and unknown flags are refused.
func ParseLayout(format string) (*Layout, error) {
	l := &Layout{}
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			l.nodes = append(l.nodes, node{kind: nodeText, text: text.String()})
			text.Reset()
		}
	}
	quoteAll := false
	for i := 0; i < len(format); {
		c := format[i]
		switch {
		case c == ' ':
			flush()
			if n := len(l.nodes); n == 0 || l.nodes[n-1].kind != nodeSeparator {
				l.nodes = append(l.nodes, node{kind: nodeSeparator})
			}
			i++
			continue
		case c != '%':
			text.WriteByte(c)
			i++
			continue
		}
		i++
		if i < len(format) && format[i] == '%' {
			text.WriteByte('%')
			i++
			continue
		}
		quote := quoteAll
		quoteSet := false
		if i < len(format) && format[i] == '{' {
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("missing '}' after '%%{' in log-format %q", format)
			}
			for _, flag := range strings.Split(format[i+1:i+end], ",") {
				switch flag {
				case "+Q":
					quote, quoteSet = true, true
				case "-Q":
					quote, quoteSet = false, true
				case "":
				default:
					return nil, fmt.Errorf("log-format flag '%s' is not supported by Tether (only +Q and -Q are)", flag)
				}
			}
			i += end + 1
		}
		if i < len(format) && format[i] == '[' {
			return nil, fmt.Errorf("log-format sample expressions ('%%[…]') are not supported by Tether")
		}
		start := i
		for i < len(format) && (format[i] >= 'a' && format[i] <= 'z' || format[i] >= 'A' && format[i] <= 'Z') {
			i++
		}
		name := format[start:i]
		if name == "o" {
			if quoteSet {
				quoteAll = quote
			}
			continue
		}
		v, ok := variables[name]
		switch {
		case ok:
		case name != "" && hasWord(haproxyOnly, name):
			return nil, fmt.Errorf("log-format variable '%%%s' is not supported by Tether", name)
		case name == "":
			return nil, fmt.Errorf("log-format: '%%' at position %d is followed by no variable name; write '%%%%' for a verbatim '%%'", start)
		default:
			return nil, fmt.Errorf("no such format variable '%s'. If you wanted to emit the '%%' character verbatim, you need to use '%%%%'", name)
		}
		flush()
		l.nodes = append(l.nodes, node{kind: nodeVar, v: v.v, quote: quote && v.quoted})
	}
	flush()
	return l, nil
}

// hasWord reports whether the space-separated list holds w.
func hasWord(list, w string) bool {
	for f := range strings.FieldsSeq(list) {
		if f == w {
			return true
		}
	}
	return false
}

// UsesCaptures reports whether the layout writes captured headers or
// cookies, which the proxy then has to collect.
func (l *Layout) UsesCaptures() bool {
	for _, n := range l.nodes {
		if n.kind == nodeVar && n.v >= varCookieRequest && n.v <= varHeadersResponseList {
			return true
		}
	}
	return false
}

// appendLayout appends e formatted by l.
func (e *Entry) appendLayout(dst []byte, l *Layout) []byte {
	lastSpace := true
	for _, n := range l.nodes {
		switch n.kind {
		case nodeSeparator:
			if !lastSpace {
				dst = append(dst, ' ')
				lastSpace = true
			}
			continue
		case nodeText:
			dst = append(dst, n.text...)
			lastSpace = false
			continue
		}
		before := len(dst)
		dst = e.appendVar(dst, n.v, n.quote)
		if len(dst) > before {
			lastSpace = false
		}
	}
	return dst
}

const (
	dateLayout     = "02/Jan/2006:15:04:05.000"
	dateZoneLayout = "02/Jan/2006:15:04:05 -0700"
	dateGMTLayout  = "02/Jan/2006:15:04:05 +0000"
)

// appendVar appends one variable of e.
func (e *Entry) appendVar(dst []byte, v variable, quote bool) []byte {
	// str appends a text variable: "-" when empty, or "" when quoted.
	str := func(dst []byte, s string, encode bool) []byte {
		if s == "" && !quote {
			return append(dst, '-')
		}
		if quote {
			dst = append(dst, '"')
		}
		if encode {
			dst = appendEncoded(dst, s, urlEncoded)
		} else {
			dst = append(dst, s...)
		}
		if quote {
			dst = append(dst, '"')
		}
		return dst
	}
	num := func(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }
	accept := e.Accept
	if accept.IsZero() {
		accept = e.Start
	}
	switch v {
	case varClientIP:
		ip, _ := splitClient(e.Client)
		return str(dst, ip, false)
	case varClientPort:
		_, port := splitClient(e.Client)
		return append(dst, port...)
	case varAcceptDate:
		return accept.AppendFormat(dst, dateLayout)
	case varAcceptDateGMT:
		return accept.UTC().AppendFormat(dst, dateGMTLayout)
	case varAcceptDateLocal:
		return accept.AppendFormat(dst, dateZoneLayout)
	case varAcceptMillis:
		ms := accept.Nanosecond() / int(time.Millisecond)
		return append(dst, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	case varRequestDate:
		return e.Start.AppendFormat(dst, dateLayout)
	case varRequestDateGMT:
		return e.Start.UTC().AppendFormat(dst, dateGMTLayout)
	case varRequestDateLocal:
		return e.Start.AppendFormat(dst, dateZoneLayout)
	case varFrontend:
		return str(dst, e.Frontend, false)
	case varFrontendTransport:
		if e.TLS {
			return str(dst, e.Frontend+"~", false)
		}
		return str(dst, e.Frontend, false)
	case varBackend:
		return str(dst, e.Backend, false)
	case varServer:
		if e.Server == "" {
			return str(dst, "<NOSRV>", false)
		}
		return str(dst, e.Server, false)
	case varStatus:
		if e.Status == 0 {
			return append(dst, "-1"...)
		}
		return num(dst, int64(e.Status))
	case varBytes:
		return num(dst, e.Bytes)
	case varTh:
		return num(dst, int64(e.Th))
	case varTi:
		return num(dst, int64(e.Ti))
	case varTR:
		return num(dst, int64(e.TR))
	case varTq:
		if e.TR < 0 {
			return append(dst, "-1"...)
		}
		return num(dst, int64(e.Th+e.Ti+e.TR))
	case varTw:
		return num(dst, int64(e.Tw))
	case varTc:
		return num(dst, int64(e.Tc))
	case varTr:
		return num(dst, int64(e.Tr))
	case varTa:
		return num(dst, int64(e.Ta))
	case varTt:
		return num(dst, int64(e.Th+e.Ti+e.Ta))
	case varTd:
		if e.TR < 0 || e.Tw < 0 || e.Tc < 0 || e.Tr < 0 {
			return append(dst, "-1"...)
		}
		return num(dst, int64(e.Ta-e.TR-e.Tw-e.Tc-e.Tr))
	case varTermination:
		return append(dst, e.Termination[:2]...)
	case varTerminationCookie:
		return append(dst, e.Termination[:]...)
	case varCookieRequest:
		return str(dst, e.CookieRequest, true)
	case varCookieResponse:
		return str(dst, e.CookieResponse, true)
	case varHeadersRequest:
		return appendCaptures(dst, e.RequestCaptures, quote)
	case varHeadersResponse:
		return appendCaptures(dst, e.ResponseCaptures, quote)
	case varHeadersRequestList:
		return appendCaptureList(dst, e.RequestCaptures, quote)
	case varHeadersResponseList:
		return appendCaptureList(dst, e.ResponseCaptures, quote)
	case varRequestLine:
		if quote {
			dst = append(dst, '"')
		}
		dst = appendRequestLine(dst, e)
		if quote {
			dst = append(dst, '"')
		}
		return dst
	case varMethod:
		return str(dst, e.Method, true)
	case varURI:
		return str(dst, e.URI, true)
	case varURIPath:
		uri, _, _ := strings.Cut(e.URI, "?")
		return str(dst, uri, true)
	case varPathOnly:
		uri, _, _ := strings.Cut(e.URI, "?")
		if i := strings.Index(uri, "://"); i >= 0 {
			uri = uri[i+3:]
			if j := strings.IndexByte(uri, '/'); j >= 0 {
				uri = uri[j:]
			} else {
				uri = ""
			}
		}
		return str(dst, uri, true)
	case varQuery:
		// No query writes nothing, not "-".
		_, q, found := strings.Cut(e.URI, "?")
		if !found {
			if quote {
				dst = append(dst, `""`...)
			}
			return dst
		}
		return str(dst, "?"+q, true)
	case varVersion:
		return str(dst, e.Proto, true)
	case varActConn:
		return num(dst, e.ActConn)
	case varFeConn:
		return num(dst, e.FeConn)
	case varBeConn:
		return num(dst, e.BeConn)
	case varSrvConn:
		return num(dst, e.SrvConn)
	case varRetries:
		if e.Redispatched {
			dst = append(dst, '+')
		}
		return num(dst, int64(e.Retries))
	case varSrvQueue:
		return num(dst, e.SrvQueue)
	case varBackendQueue:
		return num(dst, e.BackendQueue)
	case varPID:
		return num(dst, int64(os.Getpid()))
	case varHostname:
		h, _ := os.Hostname()
		return str(dst, h, false)
	}
	return dst
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// splitClient splits "ip:port" or "[ip]:port".
func splitClient(client string) (ip, port string) {
	i := strings.LastIndexByte(client, ':')
	if i < 0 {
		return client, ""
	}
	ip, port = client[:i], client[i+1:]
	if len(ip) > 1 && ip[0] == '[' && ip[len(ip)-1] == ']' {
		ip = ip[1 : len(ip)-1]
	}
	return ip, port
}

// appendCaptures appends captured header values as "{v1|v2}", nothing
// when the frontend captures none.
func appendCaptures(dst []byte, values []string, quote bool) []byte {
	if values == nil {
		return dst
	}
	if quote {
		dst = append(dst, '"')
	}
	dst = append(dst, '{')
	for i, v := range values {
		if i > 0 {
			dst = append(dst, '|')
		}
		dst = appendEncoded(dst, v, headerEncoded)
	}
	dst = append(dst, '}')
	if quote {
		dst = append(dst, '"')
	}
	return dst
}

// appendCaptureList appends captured header values separated by spaces,
// "-" for an empty one (HAProxy's CLF style).
func appendCaptureList(dst []byte, values []string, quote bool) []byte {
	for i, v := range values {
		if i > 0 {
			dst = append(dst, ' ')
		}
		if quote {
			dst = append(dst, '"')
		}
		if v == "" && !quote {
			dst = append(dst, '-')
		} else {
			dst = appendEncoded(dst, v, headerEncoded)
		}
		if quote {
			dst = append(dst, '"')
		}
	}
	return dst
}
