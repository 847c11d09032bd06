package balancer

import (
	"net/http"
)

// Reason phrases of the status lines Tether writes itself, as HAProxy 2.6
// writes them (measured against it). Go's http.StatusText differs for a
// few codes, and HAProxy uses two tables: its error pages' own status
// lines, and http_get_reason for http-request return.

// pageReasons are the reason phrases of HAProxy's error pages where they
// differ from http.StatusText.
var pageReasons = map[int]string{
	400: "Bad request",
	407: "Unauthorized",
	408: "Request Time-out",
	413: "Payload Too Large",
	504: "Gateway Time-out",
}

// pageReason returns the reason phrase of HAProxy's error page for code.
func pageReason(code int) string {
	if r, ok := pageReasons[code]; ok {
		return r
	}
	return http.StatusText(code)
}

// returnReasons is HAProxy's reason table (http_get_reason), used by
// http-request return.
var returnReasons = map[int]string{
	204: "No Content",
	304: "Not Modified",
	200: "OK",
	201: "Created",
	202: "Accepted",
	203: "Non-Authoritative Information",
	205: "Reset Content",
	206: "Partial Content",
	207: "Multi-Status",
	210: "Content Different",
	226: "IM Used",
	300: "Multiple Choices",
	301: "Moved Permanently",
	302: "Moved Temporarily",
	303: "See Other",
	305: "Use Proxy",
	307: "Temporary Redirect",
	308: "Permanent Redirect",
	310: "Too many Redirects",
	400: "Bad Request",
	401: "Unauthorized",
	402: "Payment Required",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	406: "Not Acceptable",
	407: "Proxy Authentication Required",
	408: "Request Time-out",
	409: "Conflict",
	410: "Gone",
	411: "Length Required",
	412: "Precondition Failed",
	413: "Request Entity Too Large",
	414: "Request-URI Too Long",
	415: "Unsupported Media Type",
	416: "Requested range unsatisfiable",
	417: "Expectation failed",
	418: "I'm a teapot",
	421: "Misdirected Request",
	422: "Unprocessable Content",
	423: "Locked",
	424: "Method failure",
	425: "Too Early",
	426: "Upgrade Required",
	428: "Precondition Required",
	429: "Too Many Requests",
	431: "Request Header Fields Too Large",
	449: "Retry With",
	450: "Blocked by Windows Parental Controls",
	451: "Unavailable For Legal Reasons",
	456: "Unrecoverable Error",
	499: "client has closed connection",
	500: "Internal Server Error",
	501: "Not Implemented",
	502: "Bad Gateway or Proxy Error",
	503: "Service Unavailable",
	504: "Gateway Time-out",
	505: "HTTP Version not supported",
	506: "Variant also negotiate",
	507: "Insufficient storage",
	508: "Loop detected",
	509: "Bandwidth Limit Exceeded",
	510: "Not extended",
	511: "Network authentication required",
	520: "Web server is returning an unknown error",
}

// returnReason returns the reason phrase HAProxy writes for code in an
// answer of http-request return: its table's, else its class's.
func returnReason(code int) string {
	if r, ok := returnReasons[code]; ok {
		return r
	}
	switch code / 100 {
	case 2:
		return "Success"
	case 3:
		return "Redirection"
	case 4:
		return "Client Error"
	case 5:
		return "Server Error"
	}
	return "Other"
}
