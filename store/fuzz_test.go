package store

import (
	"strings"
	"testing"
)

// FuzzScrubEntry checks that a key given to scrubEntry never survives in
// an audit entry's text, whatever surrounds it.
func FuzzScrubEntry(f *testing.F) {
	f.Add("set dynamic-cookie-key backend app secretkey", "secretkey")
	f.Add("set dynamic-cookie-key backend app two words", "two words")
	f.Add("note secretsecret and secretsecret", "secretsecret")
	f.Add("xx k xx", "k")
	f.Add("set   dynamic-cookie-key backend b\tk3y", "k3y")
	f.Fuzz(func(t *testing.T, text, key string) {
		e := scrubEntry(AuditEntry{Command: text, Detail: text, Result: text}, []string{key})
		for _, got := range []string{e.Command, e.Detail, e.Result} {
			if len(key) >= 6 && strings.Contains(got, key) && !strings.Contains(maskedKey(key), key) {
				t.Fatalf("key %q survives in %q", key, got)
			}
			if key != "" && !strings.ContainsAny(key, " \t\n") {
				for _, w := range strings.Split(got, " ") {
					if w == key && !strings.Contains(maskedKey(key), key) {
						t.Fatalf("key %q survives as a word in %q", key, got)
					}
				}
			}
		}
	})
}
