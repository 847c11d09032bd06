package balancer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestSecretNeverShows formats, marshals and logs a key every common way:
// only its fingerprint or its reference may come out.
func TestSecretNeverShows(t *testing.T) {
	const key = "my-very-secret-key"
	s := Secret(key)
	be := Backend{Name: "app", DynamicCookieKey: s}
	var logs bytes.Buffer
	text := slog.New(slog.NewTextHandler(&logs, nil))
	js := slog.New(slog.NewJSONHandler(&logs, nil))
	text.Info("key", "key", s, "backend", be)
	js.Info("key", "key", s, "backend", be)
	j, err := json.Marshal(be)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Join([]string{
		fmt.Sprint(s), fmt.Sprintf("%s %v %q %+v %#v %x", s, s, s, s, s, s), fmt.Sprintf("%+v %v", be, be),
		s.String(), string(j), logs.String(),
	}, "\n")
	if strings.Contains(out, key) {
		t.Fatalf("the key shows:\n%s", out)
	}
	if !strings.Contains(out, KeyFingerprint(key)) || !strings.Contains(string(j), s.Ref()) {
		t.Errorf("neither fingerprint nor reference shows:\n%s", out)
	}
	var back Backend
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if !back.DynamicCookieKey.IsRef() {
		t.Fatalf("read back %q, want the reference", string(back.DynamicCookieKey))
	}
	if err := back.DynamicCookieKey.Resolve(func(ref string) (string, bool) { return key, ref == s.Ref() }); err != nil || back.DynamicCookieKey.Reveal() != key {
		t.Errorf("resolve: %v, %q", err, back.DynamicCookieKey.Reveal())
	}
	var missing Secret = Secret(s.Ref())
	if err := missing.Resolve(func(string) (string, bool) { return "", false }); err == nil {
		t.Error("an unknown reference resolved")
	}
}
