package balancer

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// CookieLineError is one problem of a cookie line, with HAProxy 2.6's
// message for it where HAProxy has one.
type CookieLineError struct {
	// Option is the keyword the problem concerns ("domain", "maxidle",
	// "maxlife", "attr"), or "" for the line as a whole: its name, an
	// unknown option, incompatible modes.
	Option string
	// Msg is the message, without file or line.
	Msg string
}

// Error returns e.Msg.
func (e *CookieLineError) Error() string { return e.Msg }

func lineErr(option, format string, args ...any) error {
	return &CookieLineError{Option: option, Msg: fmt.Sprintf(format, args...)}
}

// ParseCookieLine parses the words that follow "cookie" on an HAProxy
// backend line:
//
//	NAME [rewrite|insert|prefix] [indirect] [nocache] [postonly] [preserve]
//	     [httponly] [secure] [domain D]* [maxidle T] [maxlife T] [dynamic] [attr A]*
//
// with HAProxy 2.6's rules and messages: options in any order, an empty
// word ends the line, times in seconds unless a unit follows. The error is
// a *CookieLineError, or several joined with errors.Join when HAProxy
// reports several (incompatible modes); its text is HAProxy's message, one
// per line. Warnings HAProxy would print are dropped; see
// ParseCookieLineWarnings.
func ParseCookieLine(args []string) (*CookieConfig, error) {
	c, _, err := ParseCookieLineWarnings(args)
	return c, err
}

// ParseCookieLineWarnings is ParseCookieLine that also returns the
// warnings HAProxy 2.6 prints for an accepted line: a domain without a
// dot, characters after a time unit.
func ParseCookieLineWarnings(args []string) (*CookieConfig, []string, error) {
	name := word(args, 0)
	if name == "" {
		return nil, nil, errNoCookieName()
	}
	c := &CookieConfig{Name: name}
	var warns []string
	var rewrite, insert, prefix bool
	for i := 1; i < len(args) && args[i] != ""; i++ {
		switch o := args[i]; o {
		case "rewrite":
			rewrite = true
		case "insert":
			insert = true
		case "prefix":
			prefix = true
		case "indirect":
			c.Indirect = true
		case "nocache":
			c.NoCache = true
		case "postonly":
			c.PostOnly = true
		case "preserve":
			c.Preserve = true
		case "httponly":
			c.HTTPOnly = true
		case "secure":
			c.Secure = true
		case "dynamic":
			c.Dynamic = true
		case "domain":
			d := word(args, i+1)
			if d != "" && !strings.Contains(d, ".") {
				warns = append(warns, fmt.Sprintf("domain '%s' contains no embedded dot, this configuration may not work properly (see RFC6265#5.2.3).", d))
			}
			if err := checkCookieDomain(d); err != nil {
				return nil, warns, err
			}
			c.Domains = append(c.Domains, d)
			i++
		case "maxidle", "maxlife":
			v := word(args, i+1)
			if v == "" {
				what := "<idletime>"
				if o == "maxlife" {
					what = "<lifetime>"
				}
				return nil, warns, lineErr(o, "'%s' expects %s in seconds as argument.", o, what)
			}
			d, rest, err := ParseHAProxyTime(v, time.Second)
			if err != nil {
				return nil, warns, cookieTimeError(o, v, err)
			}
			if rest != "" {
				warns = append(warns, TrailingTimeWarning(v, rest))
			}
			if o == "maxidle" {
				c.MaxIdle = d
			} else {
				c.MaxLife = d
			}
			i++
		case "attr":
			v := word(args, i+1)
			if err := checkCookieAttr(v); err != nil {
				return nil, warns, err
			}
			c.Attrs = append(c.Attrs, v)
			i++
		default:
			return nil, warns, lineErr("", "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options.")
		}
	}
	if err := cookieModeRules(rewrite, insert, prefix, c.Indirect, c.Preserve); err != nil {
		return nil, warns, err
	}
	switch {
	case rewrite:
		c.Mode = CookieRewrite
	case insert:
		c.Mode = CookieInsert
	case prefix:
		c.Mode = CookiePrefix
	}
	return c, warns, nil
}

// Validate checks c with the rules of ParseCookieLine, so that c.Words()
// is a line HAProxy accepts and ParseCookieLine reads back to c. MaxIdle
// and MaxLife must be whole seconds. A nil c (no cookie persistence) is
// valid. The error is as ParseCookieLine's.
func (c *CookieConfig) Validate() error {
	if c == nil {
		return nil
	}
	if c.Name == "" {
		return errNoCookieName()
	}
	var rewrite, insert, prefix bool
	switch c.Mode {
	case CookiePassive:
	case CookieRewrite:
		rewrite = true
	case CookieInsert:
		insert = true
	case CookiePrefix:
		prefix = true
	default:
		return lineErr("", "unknown cookie mode %d.", c.Mode)
	}
	for _, d := range c.Domains {
		if err := checkCookieDomain(d); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		option string
		d      time.Duration
	}{{"maxidle", c.MaxIdle}, {"maxlife", c.MaxLife}} {
		if t.d < 0 || t.d%time.Second != 0 || t.d/time.Second > MaxHAProxyTimer {
			return lineErr(t.option, "'%s' expects a whole number of seconds from 0 to %d, not %v.", t.option, MaxHAProxyTimer, t.d)
		}
	}
	for _, a := range c.Attrs {
		if err := checkCookieAttr(a); err != nil {
			return err
		}
	}
	return cookieModeRules(rewrite, insert, prefix, c.Indirect, c.Preserve)
}

// Words returns the cookie line c stands for, without the "cookie"
// keyword, in canonical order: name, mode, the flags (indirect, nocache,
// postonly, preserve, httponly, secure, dynamic), the domains, maxidle,
// maxlife, then the attributes. Times use the largest exact unit. For a c
// that Validate accepts, ParseCookieLine(c.Words()) equals c. A nil c
// gives nil.
func (c *CookieConfig) Words() []string {
	if c == nil {
		return nil
	}
	w := make([]string, 0, 10+2*len(c.Domains)+2*len(c.Attrs))
	w = append(w, c.Name)
	if m := c.Mode.String(); m != "" {
		w = append(w, m)
	}
	flags := [...]struct {
		on   bool
		word string
	}{{c.Indirect, "indirect"}, {c.NoCache, "nocache"}, {c.PostOnly, "postonly"}, {c.Preserve, "preserve"},
		{c.HTTPOnly, "httponly"}, {c.Secure, "secure"}, {c.Dynamic, "dynamic"}}
	for _, f := range flags {
		if f.on {
			w = append(w, f.word)
		}
	}
	for _, d := range c.Domains {
		w = append(w, "domain", d)
	}
	if c.MaxIdle != 0 {
		w = append(w, "maxidle", FormatHAProxyTime(c.MaxIdle))
	}
	if c.MaxLife != 0 {
		w = append(w, "maxlife", FormatHAProxyTime(c.MaxLife))
	}
	for _, a := range c.Attrs {
		w = append(w, "attr", a)
	}
	return w
}

func errNoCookieName() error {
	return lineErr("", "'cookie' expects <cookie_name> as argument.")
}

// cookieModeRules applies HAProxy's checks on the combination of modes
// and options, reporting every broken rule as HAProxy does.
func cookieModeRules(rewrite, insert, prefix, indirect, preserve bool) error {
	var errs []error
	if rewrite && indirect {
		errs = append(errs, lineErr("", "cookie 'rewrite' and 'indirect' modes are incompatible."))
	}
	modes := 0
	for _, on := range [...]bool{rewrite, insert, prefix} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		errs = append(errs, lineErr("", "cookie 'rewrite', 'insert' and 'prefix' modes are incompatible."))
	}
	if preserve && !insert && !indirect {
		errs = append(errs, lineErr("", "cookie 'preserve' requires at least 'insert' or 'indirect'."))
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

// checkCookieDomain is HAProxy's check of a domain argument: not empty,
// and only [A-Za-z0-9_.-] (invalid_domainchar).
func checkCookieDomain(d string) error {
	if d == "" {
		return lineErr("domain", "'domain' expects <domain> as argument.")
	}
	for i := 0; i < len(d); i++ {
		ch := d[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || isDigit(ch) || ch == '_' || ch == '.' || ch == '-') {
			return lineErr("domain", "character '%c' is not permitted in domain name '%s'.", ch, d)
		}
	}
	return nil
}

// checkCookieAttr is HAProxy's check of an attr argument: not empty, no
// control character and no ';'.
func checkCookieAttr(v string) error {
	if v == "" {
		return lineErr("attr", "'attr' expects <value> as argument.")
	}
	for i := 0; i < len(v); i++ {
		if ch := v[i]; ch < 0x20 || ch == 0x7f || ch == ';' {
			return lineErr("attr", "character '%%x%02X' is not permitted in attribute value.", ch)
		}
	}
	return nil
}

// cookieTimeError words a refused maxidle or maxlife value as HAProxy 2.6.
func cookieTimeError(option, v string, err error) error {
	var te *TimeError
	if errors.As(err, &te) {
		switch te.Kind {
		case TimeOverflow:
			return lineErr(option, "timer overflow in argument <%s> to <%s>, maximum value is 2147483647 s (~68 years).", v, option)
		case TimeUnderflow:
			return lineErr(option, "timer underflow in argument <%s> to <%s>, minimum non-null value is 1 s.", v, option)
		case TimeBadChar:
			return lineErr(option, "unexpected character '%c' in argument to <%s>.", te.Char, option)
		}
	}
	return lineErr(option, "'%s' : %v.", option, err)
}

// word returns args[i], or "" past the end.
func word(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
