package runtimeapi

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t ", nil},
		{"show stat", []string{"show", "stat"}},
		{"  show \t  stat  ", []string{"show", "stat"}},
		{`add server be/x\ y 1.2.3.4`, []string{"add", "server", "be/x y", "1.2.3.4"}},
		{`a\\b`, []string{`a\b`}},
		{`a\xb`, []string{"axb"}},
		{`a\;b`, []string{"a;b"}},
		{`trailing\`, []string{"trailing"}},
		{`x \\ y`, []string{"x", `\`, "y"}},
		{"set map x <<", []string{"set", "map", "x"}},
		{"set map x<<", []string{"set", "map", "x<<"}},
		{`"quoted words"`, []string{`"quoted`, `words"`}},
	}
	for _, tt := range tests {
		if got := parseWords(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseWordsLimit(t *testing.T) {
	words := strings.Fields(strings.Repeat("w ", 70))
	got := parseWords(strings.Join(words, " "))
	if len(got) != maxArgs {
		t.Fatalf("got %d words, want the first %d", len(got), maxArgs)
	}
}

func TestSplitCommands(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a;b;c\n", []string{"a", "b", "c"}},
		{"a\nb\r\n", []string{"a", "b"}},
		{`a\;b;c`, []string{`a\;b`, "c"}},
		{`a\\;b`, []string{`a\\`, "b"}},
		{";;", []string{"", ""}},
		{"no delimiter", []string{"no delimiter"}},
	}
	for _, tt := range tests {
		if got := splitCommands(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCommands(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadCommand(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("show stat;get weight a\\;b/c\r\nrest"))
	for _, want := range []string{"show stat", `get weight a\;b/c`} {
		got, err := readCommand(r, false, maxCommandBytes)
		if err != nil || got != want {
			t.Fatalf("readCommand = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readCommand(r, false, maxCommandBytes); err != io.EOF {
		t.Fatalf("unterminated command: err = %v, want io.EOF", err)
	}
	// Payload lines end at '\n' only and keep escapes and semicolons.
	r = bufio.NewReader(strings.NewReader("a;b\\c\n"))
	if got, err := readCommand(r, true, maxCommandBytes); err != nil || got != `a;b\c` {
		t.Fatalf("payload line = %q, %v", got, err)
	}
}

func TestReadCommandLimit(t *testing.T) {
	for _, tt := range []struct {
		n    int
		fits bool
	}{{maxCommandBytes - 1, true}, {maxCommandBytes, false}} {
		r := bufio.NewReader(strings.NewReader(strings.Repeat("x", tt.n) + "\n"))
		_, err := readCommand(r, false, maxCommandBytes)
		if fits := err == nil; fits != tt.fits {
			t.Errorf("%d bytes + newline: err = %v, want fits=%v", tt.n, err, tt.fits)
		}
		if !tt.fits && !errors.Is(err, errCommandTooLong) {
			t.Errorf("%d bytes: err = %v, want errCommandTooLong", tt.n, err)
		}
	}
}

// FuzzParseLine checks that splitting and word parsing never fail, keep
// the word limit, and agree with the stream reader.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"show stat", "a;b\nc", `x\ y\;z\\`, "set map <<\nk v\n\n", "\\", ";;", "a\r\n", "\t \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmds := splitCommands(line)
		r := bufio.NewReader(strings.NewReader(line))
		for i, c := range cmds {
			words := parseWords(c)
			if len(words) > maxArgs {
				t.Fatalf("%d words, limit is %d", len(words), maxArgs)
			}
			for _, w := range words {
				if w == "" && !strings.Contains(c, `\`) {
					t.Fatalf("empty word from %q", c)
				}
			}
			got, err := readCommand(r, false, len(line)+2)
			if err != nil {
				if i == len(cmds)-1 && err == io.EOF {
					break // last command without delimiter
				}
				t.Fatalf("readCommand #%d of %q: %v", i, line, err)
			}
			if got != c {
				t.Fatalf("readCommand #%d = %q, splitCommands gave %q", i, got, c)
			}
		}
	})
}
