package haproxycfg

import (
	"fmt"
	"os"
	"strings"
)

// maxLineArgs is HAProxy's MAX_LINE_ARGS: a line holds at most this many words.
const maxLineArgs = 64

// lookupEnv reads an environment variable; it is a parameter so that tests
// and callers can run the tokenizer without touching the process environment.
type lookupEnv func(name string) (string, bool)

// splitLine breaks one configuration line into words the way HAProxy's
// parse_line does with the options the configuration reader uses: '#' starts
// a comment, single quotes keep everything literal, double quotes keep spaces
// and expand "$VAR", "${VAR}", "${VAR-default}" and "${VAR[*]}", and a
// backslash escapes a space, a backslash, '#', a quote, '$' (inside double
// quotes) or introduces \t, \n, \r and \xHH. Any other backslash is kept.
// A carriage return or line feed ends the line, as in HAProxy.
func splitLine(line string, env lookupEnv) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inWord  bool // cur holds a started word, possibly empty ("")
		squote  bool
		dquote  bool
		quoteAt int
	)
	// Leading blanks are skipped by the reader before the line is parsed.
	i := 0
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	finish := func() {
		args = append(args, cur.String())
		cur.Reset()
		inWord = false
	}
loop:
	for i < len(line) {
		c := line[i]
		switch {
		case c == 0:
			return nil, fmt.Errorf("NUL character at position %d", i+1)
		case c == '\n' || c == '\r':
			break loop
		case c == '#' && !squote && !dquote:
			break loop
		case c == '"' && !squote:
			dquote = !dquote
			quoteAt = i
			inWord = true
			i++
		case c == '\'' && !dquote:
			squote = !squote
			quoteAt = i
			inWord = true
			i++
		case c == '\\' && !squote:
			inWord = true
			if i+1 >= len(line) {
				cur.WriteByte('\\')
				i++
				continue
			}
			switch n := line[i+1]; n {
			case ' ', '\\', '#', '\'', '"':
				cur.WriteByte(n)
				i += 2
			case 't':
				cur.WriteByte('\t')
				i += 2
			case 'n':
				cur.WriteByte('\n')
				i += 2
			case 'r':
				cur.WriteByte('\r')
				i += 2
			case '$':
				if dquote {
					cur.WriteByte('$')
					i += 2
				} else {
					cur.WriteByte('\\')
					i++
				}
			case 'x':
				if i+3 >= len(line) || !isHex(line[i+2]) || !isHex(line[i+3]) {
					return nil, fmt.Errorf("truncated or invalid hexadecimal sequence at position %d", i+1)
				}
				b := unhex(line[i+2])<<4 | unhex(line[i+3])
				if b == 0 {
					return nil, fmt.Errorf("NUL character (\\x00) at position %d is not supported", i+1)
				}
				cur.WriteByte(b)
				i += 4
			default:
				cur.WriteByte('\\')
				i++
			}
		case isSpace(c) && !squote && !dquote:
			for i < len(line) && isSpace(line[i]) {
				i++
			}
			finish()
		case c == '$' && dquote:
			words, next, err := expandVar(line, i, env)
			if err != nil {
				return nil, err
			}
			inWord = true
			for k, w := range words {
				if k > 0 {
					finish()
					inWord = true
				}
				cur.WriteString(w)
			}
			i = next
		default:
			inWord = true
			cur.WriteByte(c)
			i++
		}
		if len(args) > maxLineArgs {
			return nil, fmt.Errorf("too many words, truncating after word %d", maxLineArgs)
		}
	}
	if squote || dquote {
		return nil, fmt.Errorf("unmatched quote at position %d", quoteAt+1)
	}
	if inWord {
		finish()
	}
	// Like HAProxy, an empty last word (a trailing "") is no word at all.
	if n := len(args); n > 0 && args[n-1] == "" {
		args = args[:n-1]
	}
	if len(args) > maxLineArgs {
		return nil, fmt.Errorf("too many words, truncating after word %d", maxLineArgs)
	}
	return args, nil
}

// expandVar expands the variable reference starting with the '$' at
// line[at]. It returns the words of its value (several only for the "[*]"
// word expansion) and the index just after the reference.
func expandVar(line string, at int, env lookupEnv) ([]string, int, error) {
	i := at + 1
	brace := i < len(line) && line[i] == '{'
	if brace {
		i++
	}
	if i >= len(line) || !(isAlpha(line[i]) || line[i] == '_' || line[i] == '.') {
		return nil, 0, fmt.Errorf("invalid variable name at position %d", i+1)
	}
	start := i
	if line[i] == '.' {
		i++
	}
	for i < len(line) && (isAlpha(line[i]) || isDigit(line[i]) || line[i] == '_') {
		i++
	}
	name := line[start:i]
	if strings.HasPrefix(name, ".") {
		return nil, 0, fmt.Errorf("pseudo-variable '%s' at position %d is not supported", name, start+1)
	}
	value, ok := "", false
	if env != nil {
		value, ok = env(name)
	}
	expand := false
	if brace && i < len(line) && line[i] == '[' {
		if !strings.HasPrefix(line[i:], "[*]") {
			return nil, 0, fmt.Errorf("invalid word expansion at position %d", i+1)
		}
		expand = true
		i += 3
	}
	if brace {
		if i < len(line) && line[i] == '-' {
			end := strings.IndexByte(line[i:], '}')
			if end < 0 {
				return nil, 0, fmt.Errorf("unmatched brace at position %d", at+2)
			}
			if !ok {
				value, ok = line[i+1:i+end], true
			}
			i += end
		}
		if i >= len(line) || line[i] != '}' {
			return nil, 0, fmt.Errorf("unmatched brace at position %d", at+2)
		}
		i++
	}
	if strings.IndexByte(value, 0) >= 0 {
		return nil, 0, fmt.Errorf("variable '%s' holds a NUL character", name)
	}
	if !expand {
		return []string{value}, i, nil
	}
	words := strings.FieldsFunc(value, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
	if len(words) == 0 {
		words = []string{""}
	}
	return words, i, nil
}

// isSpace reports whether c is a C-locale isspace() character.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case isDigit(c):
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// osEnv is the lookupEnv used by Parse: the process environment, as HAProxy.
func osEnv(name string) (string, bool) { return os.LookupEnv(name) }

// quoteWord returns w written so that splitLine reads it back as one word
// equal to w. Plain words are written bare; anything else is double-quoted
// with escapes, so no environment expansion or comment can apply.
func quoteWord(w string) string {
	if w != "" && isPlainWord(w) {
		return w
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '"' || c == '\\' || c == '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// isPlainWord reports whether w needs no quoting at all.
func isPlainWord(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c <= ' ' || c == 0x7f || c == '"' || c == '\'' || c == '\\' || c == '#' || c == '$' {
			return false
		}
	}
	return true
}
