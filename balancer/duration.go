package balancer

import (
	"fmt"
	"strconv"
	"time"
)

// MaxHAProxyTimer is the largest timer HAProxy accepts, counted in the
// unit of the keyword that takes it (2^31-1 milliseconds or seconds).
const MaxHAProxyTimer = 1<<31 - 1

// TimeErrorKind says why HAProxy refuses a time value.
type TimeErrorKind uint8

// Reasons a time value is refused.
const (
	TimeMissing   TimeErrorKind = iota + 1 // empty value
	TimeBadChar                            // a character that is neither a digit nor a unit
	TimeOverflow                           // larger than MaxHAProxyTimer units
	TimeUnderflow                          // not zero, but rounds to zero units
)

// TimeError is a time value HAProxy's parse_time_err refuses. Callers word
// the message, since HAProxy's text depends on the keyword.
type TimeError struct {
	Kind TimeErrorKind
	// Char is the unexpected character, for TimeBadChar.
	Char byte
}

// Error describes the problem without the keyword.
func (e *TimeError) Error() string {
	switch e.Kind {
	case TimeOverflow:
		return "timer overflow"
	case TimeUnderflow:
		return "timer underflow"
	case TimeMissing:
		return "missing time value"
	}
	return fmt.Sprintf("unexpected character '%c'", e.Char)
}

// ParseHAProxyTime reads an HAProxy time value the way HAProxy 2.6's
// parse_time_err does: digits, then an optional unit (us, ms, s, m, h, d);
// a bare number counts in unit. The result is rounded up to a whole
// number of unit. rest is what follows a valid unit ("10sx" gives "x"),
// which HAProxy 2.6 accepts with a warning. A refused value gives a
// *TimeError.
func ParseHAProxyTime(s string, unit time.Duration) (d time.Duration, rest string, err error) {
	if s == "" {
		return 0, "", &TimeError{Kind: TimeMissing}
	}
	if !isDigit(s[0]) {
		return 0, "", &TimeError{Kind: TimeBadChar, Char: s[0]}
	}
	i := 0
	var value uint64
	for i < len(s) && isDigit(s[i]) {
		value = value*10 + uint64(s[i]-'0')
		if value > 1<<50 {
			return 0, "", &TimeError{Kind: TimeOverflow}
		}
		i++
	}
	var in time.Duration
	rest = s[i:]
	switch {
	case rest == "":
		in = unit
	case rest[0] == 's':
		in, rest = time.Second, rest[1:]
	case rest[0] == 'u' && len(rest) > 1 && rest[1] == 's':
		in, rest = time.Microsecond, rest[2:]
	case rest[0] == 'm' && len(rest) > 1 && rest[1] == 's':
		in, rest = time.Millisecond, rest[2:]
	case rest[0] == 'm':
		in, rest = time.Minute, rest[1:]
	case rest[0] == 'h':
		in, rest = time.Hour, rest[1:]
	case rest[0] == 'd':
		in, rest = 24*time.Hour, rest[1:]
	default:
		return 0, "", &TimeError{Kind: TimeBadChar, Char: rest[0]}
	}
	// HAProxy computes in its output unit, rounding up.
	total := value * uint64(in)
	if in != 0 && total/uint64(in) != value {
		return 0, "", &TimeError{Kind: TimeOverflow}
	}
	result := (total + uint64(unit) - 1) / uint64(unit)
	if result > MaxHAProxyTimer {
		return 0, "", &TimeError{Kind: TimeOverflow}
	}
	if result == 0 && value != 0 {
		return 0, "", &TimeError{Kind: TimeUnderflow}
	}
	return time.Duration(result) * unit, rest, nil
}

// FormatHAProxyTime writes d in the largest HAProxy unit that holds it
// exactly ("30m", "8h", "1500ms"), so that ParseHAProxyTime reads a whole
// number of microseconds back unchanged; 0 is "0".
func FormatHAProxyTime(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	units := [...]struct {
		d time.Duration
		s string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "us"}}
	for _, u := range units {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(d/time.Microsecond), 10) + "us"
}

// TrailingTimeWarning is HAProxy 2.6's warning for a time value with
// characters after its unit: value as written and rest as ParseHAProxyTime
// returned it (not empty).
func TrailingTimeWarning(value, rest string) string {
	if rest == "" {
		return ""
	}
	return fmt.Sprintf("unexpected character '%c' after the timer value '%s', only (us=microseconds,ms=milliseconds,s=seconds,m=minutes,h=hours,d=days) are supported. This will be reported as an error in next versions.", rest[0], value)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
