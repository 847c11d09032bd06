package accesslog

import (
	"net/netip"
	"strconv"
	"time"
)

// SyslogFormat is the header layout of a log line, HAProxy's "format"
// argument of a "log" line.
type SyslogFormat uint8

// The header layouts HAProxy 2.6 writes.
const (
	// FormatLocal is "<PRI>Mmm dd hh:mm:ss TAG[PID]: ": RFC 3164 without
	// the hostname. It is the default unless log-send-hostname is set.
	FormatLocal SyslogFormat = iota
	// FormatRFC3164 is "<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: ", HOST
	// being "localhost" unless log-send-hostname names one.
	FormatRFC3164
	// FormatRFC5424 is "<PRI>1 ISODATE HOST TAG PID - - ", HOST being "-"
	// unless log-send-hostname names one.
	FormatRFC5424
	// FormatPriority is "<PRI>".
	FormatPriority
	// FormatShort is "<SEVERITY>", without the facility.
	FormatShort
	// FormatTimed is "<SEVERITY>ISODATE ".
	FormatTimed
	// FormatISO is "ISODATE ".
	FormatISO
	// FormatRaw is the message alone.
	FormatRaw
)

var syslogFormatNames = [...]string{"local", "rfc3164", "rfc5424", "priority", "short", "timed", "iso", "raw"}

// ParseSyslogFormat returns the format HAProxy names name.
func ParseSyslogFormat(name string) (SyslogFormat, bool) {
	for i, n := range syslogFormatNames {
		if n == name {
			return SyslogFormat(i), true
		}
	}
	return 0, false
}

// String returns the format's name in a "log" line.
func (f SyslogFormat) String() string {
	if int(f) < len(syslogFormatNames) {
		return syslogFormatNames[f]
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// DefaultMaxLen is the length HAProxy cuts log lines to when a "log" line
// sets no "len".
const DefaultMaxLen = 1024

// Output names of the Loggers a balancer writes to: standard output,
// standard error, and syslog servers over UDP.
const (
	Stdout = "stdout"
	Stderr = "stderr"
	Syslog = "syslog"
)

// Target is where and how one "log" line writes an access-log line. A
// Target is immutable once built and shared by every entry logged to it.
type Target struct {
	// Output is Stdout, Stderr or Syslog; a Syslog target sends each line
	// to Addr in one UDP datagram.
	Output string
	Addr   netip.AddrPort
	Format SyslogFormat
	// Facility is the syslog facility number (local0 is 16) and Severity
	// the level the lines are sent with (info is 6).
	Facility, Severity int
	// MaxLen is the longest line written, header included; 0 means
	// DefaultMaxLen.
	MaxLen int
	// Tag is the program name in the header ("haproxy" for HAProxy) and
	// Hostname the host name, "" when log-send-hostname is not set.
	Tag, Hostname string
}

// appendHeader appends t's syslog header for a line written at now by
// process pid.
func (t *Target) appendHeader(dst []byte, now time.Time, pid int) []byte {
	pri := func(dst []byte, v int) []byte {
		dst = append(dst, '<')
		dst = strconv.AppendInt(dst, int64(v), 10)
		return append(dst, '>')
	}
	const iso = "2006-01-02T15:04:05.000000-07:00"
	switch t.Format {
	case FormatLocal, FormatRFC3164:
		dst = pri(dst, t.Facility*8+t.Severity)
		dst = now.AppendFormat(dst, "Jan _2 15:04:05 ")
		if t.Format == FormatRFC3164 {
			host := t.Hostname
			if host == "" {
				host = "localhost"
			}
			dst = append(append(dst, host...), ' ')
		}
		dst = append(dst, t.Tag...)
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, int64(pid), 10)
		return append(dst, "]: "...)
	case FormatRFC5424:
		dst = pri(dst, t.Facility*8+t.Severity)
		dst = append(dst, "1 "...)
		dst = now.AppendFormat(dst, iso)
		dst = append(dst, ' ')
		host := t.Hostname
		if host == "" {
			host = "-"
		}
		dst = append(append(dst, host...), ' ')
		dst = append(append(dst, t.Tag...), ' ')
		dst = strconv.AppendInt(dst, int64(pid), 10)
		return append(dst, " - - "...)
	case FormatPriority:
		return pri(dst, t.Facility*8+t.Severity)
	case FormatShort:
		return pri(dst, t.Severity)
	case FormatTimed:
		dst = pri(dst, t.Severity)
		dst = now.AppendFormat(dst, iso)
		return append(dst, ' ')
	case FormatISO:
		dst = now.AppendFormat(dst, iso)
		return append(dst, ' ')
	}
	return dst
}

// appendLine appends e's whole line for t: header, message cut to t's
// length, and a line feed. A datagram's length leaves out the line feed,
// as HAProxy's does; a stream's counts it.
func (t *Target) appendLine(dst []byte, e *Entry, now time.Time, pid int) []byte {
	start := len(dst)
	dst = t.appendHeader(dst, now, pid)
	dst = e.appendMessage(dst)
	limit := t.MaxLen
	if limit <= 0 {
		limit = DefaultMaxLen
	}
	if t.Output != Syslog {
		limit--
	}
	if len(dst)-start > limit {
		dst = dst[:start+limit]
	}
	return append(dst, '\n')
}
