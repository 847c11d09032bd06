package runtimeapi

import (
	"bufio"
	"errors"
	"strings"
)

// Limits of HAProxy 2.6's command-line reader.
const (
	// maxArgs is HAProxy's MAX_CLI_ARGS: words beyond it are ignored.
	maxArgs = 64
	// maxCommandBytes is the longest command, delimiter included, that fits
	// HAProxy's request chunk (tune.bufsize 16384 minus the byte kept for
	// the terminating NUL). A longer command closes the connection.
	maxCommandBytes = 16383
	// payloadPattern ends a command whose payload follows on the next lines.
	payloadPattern = "<<"
)

// errCommandTooLong reports a command that does not fit the request buffer.
var errCommandTooLong = errors.New("command line too long for the request buffer")

// readCommand reads one command from r: bytes up to an unescaped ';' or
// '\n' (only '\n', without escapes, in payload mode). It returns the
// command without its delimiter and without a trailing '\r'. limit is the
// room left in the request buffer, delimiter included. io.EOF (or any
// read error) is returned when the stream ends before a delimiter, in
// which case the partial command is discarded, as HAProxy does.
func readCommand(r *bufio.Reader, payload bool, limit int) (string, error) {
	var b strings.Builder
	escaped := false
	for n := 0; ; n++ {
		if n >= limit {
			return "", errCommandTooLong
		}
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		switch {
		case escaped:
			escaped = false
		case c == '\\' && !payload:
			escaped = true
		case c == '\n' || (c == ';' && !payload):
			s := b.String()
			return strings.TrimSuffix(s, "\r"), nil
		}
		b.WriteByte(c)
	}
}

// splitCommands splits a whole line into commands the way readCommand
// reads them from a stream: at each unescaped ';' or '\n', dropping one
// trailing '\r' per command. A final command without delimiter is kept.
func splitCommands(line string) []string {
	var cmds []string
	start := 0
	escaped := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '\n' || c == ';':
			cmds = append(cmds, strings.TrimSuffix(line[start:i], "\r"))
			start = i + 1
		}
	}
	if start < len(line) {
		cmds = append(cmds, strings.TrimSuffix(line[start:], "\r"))
	}
	return cmds
}

// parseWords splits one command into words as HAProxy 2.6's
// cli_parse_request does: words are separated by spaces and tabs, a
// backslash makes the next character part of the word (a backslash
// followed by anything but a backslash is dropped, "\\" gives one
// backslash), there is no quoting, and words after the 64th are ignored.
// A word equal to "<<" ends the words: what follows is payload.
func parseWords(cmd string) []string {
	var words []string
	p := 0
	for len(words) < maxArgs && p < len(cmd) {
		for p < len(cmd) && (cmd[p] == ' ' || cmd[p] == '\t') {
			p++
		}
		if p >= len(cmd) {
			break
		}
		if cmd[p:] == payloadPattern {
			break
		}
		start := p
		for p < len(cmd) {
			c := cmd[p]
			if c == ' ' || c == '\t' {
				break
			}
			if c == '\\' {
				p++
				if p >= len(cmd) {
					break
				}
			}
			p++
		}
		words = append(words, unescapeWord(cmd[start:p]))
		p++ // skip the separator
	}
	return words
}

// unescapeWord removes the escaping backslashes of one word.
func unescapeWord(w string) string {
	if !strings.Contains(w, `\`) {
		return w
	}
	var b strings.Builder
	for k := 0; k < len(w); k++ {
		if w[k] == '\\' {
			if k+1 < len(w) && w[k+1] == '\\' {
				k++
			} else {
				continue
			}
		}
		b.WriteByte(w[k])
	}
	return b.String()
}

// startsPayload reports whether a command ends with the payload pattern,
// in which case the lines that follow, up to an empty line, are its payload.
func startsPayload(cmd string) bool {
	return strings.HasSuffix(cmd, payloadPattern)
}
