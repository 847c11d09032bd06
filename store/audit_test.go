package store_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// auditText returns every column of every journal row and state document
// as text: none of them may hold a key.
func auditText(t *testing.T, s *store.Store) string {
	t.Helper()
	rows, err := store.RawDB(s).Query("SELECT *, '' FROM journal UNION ALL SELECT journal_id, time_ns, document, '', '', '', '', '', '', '', '', '', '', '' FROM state_documents")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			fmt.Fprintf(&b, "%s|", v)
		}
		b.WriteString("\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestAuditNeverHoldsKeys(t *testing.T) {
	const oldKey, newKey, shortKey = "old-secret-key-1", "new-secret-key-2", "k9"
	tests := []struct {
		name    string
		from    string
		to      string
		command string // as a careless caller might pass it
	}{
		{"long keys, masked command", oldKey, newKey, "set dynamic-cookie-key backend app ****"},
		{"long keys, clear command", oldKey, newKey, "set dynamic-cookie-key backend app " + newKey},
		{"short key in clear", oldKey, shortKey, "set dynamic-cookie-key backend app " + shortKey},
		{"key with spaces", oldKey, "two words", "set dynamic-cookie-key backend app two words"},
		{"key first set", "", newKey, "note: key " + newKey + " installed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var logs bytes.Buffer
			s, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			st := richState()
			backendOf(t, &st, "app").DynamicCookieKey = balancer.Secret(tt.from)
			if err := s.ReplaceState(ctx, st, store.AuditEntry{Channel: "import", Command: "import with key " + tt.from}); err != nil {
				t.Fatal(err)
			}
			after := clone(st)
			backendOf(t, &after, "app").DynamicCookieKey = balancer.Secret(tt.to)
			err = s.Committer()(balancer.Commit{
				Changes: []balancer.Change{balancer.SetDynamicCookieKey{Backend: "app", Key: balancer.Secret(tt.to)}},
				Origin:  balancer.Origin{Channel: "socket", Command: tt.command},
				Before:  st, After: after,
			})
			if err != nil {
				t.Fatal(err)
			}
			// A refused attempt, recorded by the caller.
			if err := s.AppendAudit(ctx, store.AuditEntry{Channel: "socket", Backend: "app",
				Command: "set dynamic-cookie-key backend app " + tt.to, Result: "permission denied"}); err != nil {
				t.Fatal(err)
			}
			text := auditText(t, s)
			for _, k := range []string{tt.from, tt.to} {
				if k == "" {
					continue
				}
				if holdsKey(text, k) {
					t.Errorf("audit log holds key %q: %s", k, text)
				}
				if strings.Contains(logs.String(), k) {
					t.Errorf("log holds key %q: %s", k, logs.String())
				}
			}
			if !strings.Contains(text, store.KeyFingerprint(tt.to)) {
				t.Errorf("audit log lacks the new key's fingerprint %s: %s", store.KeyFingerprint(tt.to), text)
			}
			// The key itself is kept, to rebuild the balancer.
			got := loadState(t, s)
			if k := backendOf(t, &got, "app").DynamicCookieKey; k.Reveal() != tt.to {
				t.Errorf("stored key = %q, want %q", k, tt.to)
			}
			if err := s.IntegrityCheck(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}

// holdsKey reports whether text shows key: anywhere for a long key, as a
// word for a short one (which may occur inside other words by chance).
func holdsKey(text, key string) bool {
	if len(key) >= 6 {
		return strings.Contains(text, key)
	}
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '|' || r == '\n' }) {
		if w == key {
			return true
		}
	}
	return false
}

func TestKeyFingerprint(t *testing.T) {
	tests := []struct{ key, want string }{
		{"", ""},
		// printf %s abc | sha256sum
		{"abc", "ba7816bf"},
	}
	for _, tt := range tests {
		if got := store.KeyFingerprint(tt.key); got != tt.want {
			t.Errorf("KeyFingerprint(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestListAudit(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var all []store.AuditEntry
	for i := range 30 {
		e := store.AuditEntry{
			Time:    base.Add(time.Duration(i) * time.Second),
			Actor:   []string{"alice", "bob", ""}[i%3],
			Channel: []string{"console", "socket"}[i%2],
			Source:  "src",
			Command: fmt.Sprintf("set weight b%d/s 1", i%4),
			Result:  []string{store.ResultOK, "No such server."}[i%2],
			Backend: fmt.Sprintf("b%d", i%4),
			Server:  "s",
			Before:  "weight 0",
			After:   "weight 1",
			Detail:  "weight 0 → 1",
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		all = append(all, e)
	}
	tests := []struct {
		name   string
		filter store.AuditFilter
		want   func(i int) bool
		limit  int
	}{
		{"all", store.AuditFilter{}, func(int) bool { return true }, 100},
		{"backend", store.AuditFilter{Backend: "b1"}, func(i int) bool { return i%4 == 1 }, 100},
		{"actor", store.AuditFilter{Actor: "bob"}, func(i int) bool { return i%3 == 1 }, 100},
		{"channel", store.AuditFilter{Channel: "socket"}, func(i int) bool { return i%2 == 1 }, 100},
		{"combined", store.AuditFilter{Channel: "console", Backend: "b2"}, func(i int) bool { return i%2 == 0 && i%4 == 2 }, 100},
		{"limit", store.AuditFilter{Limit: 5}, func(int) bool { return true }, 5},
		{"page", store.AuditFilter{BeforeID: 11, Limit: 4}, func(i int) bool { return i+1 < 11 }, 4},
		{"none", store.AuditFilter{Actor: "mallory"}, func(int) bool { return false }, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var want []int
			for i := len(all) - 1; i >= 0 && len(want) < tt.limit; i-- {
				if tt.want(i) {
					want = append(want, i)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("got %d entries, want %d", len(got), len(want))
			}
			for k, i := range want {
				g, w := got[k], all[i]
				if g.ID != int64(i+1) || !g.Time.Equal(w.Time) {
					t.Errorf("entry %d: id %d time %v, want id %d time %v", k, g.ID, g.Time, i+1, w.Time)
				}
				g.ID, g.Time, w.Time = 0, time.Time{}, time.Time{}
				if g != w {
					t.Errorf("entry %d = %+v, want %+v", k, g, w)
				}
			}
		})
	}
}

func TestPruneAuditKeepsLatestImport(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(day int, channel, source, command string) {
		t.Helper()
		e := store.AuditEntry{Time: base.AddDate(0, 0, day), Channel: channel, Source: source, Command: command}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	add(0, "import", "a.cfg", "import a.cfg sha256:1")
	add(1, "import", "a.cfg", "import a.cfg sha256:2")
	add(2, "socket", "admin.sock", "set weight b/s 2")
	add(3, "import", "b.cfg", "import b.cfg sha256:3")
	add(40, "console", "/", "set server b/s state drain")

	n, err := s.PruneAudit(ctx, base.AddDate(0, 0, 10))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("pruned %d entries, want 2 (the older a.cfg import and the socket change)", n)
	}
	left, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, e := range left {
		cmds = append(cmds, e.Command)
	}
	want := []string{"set server b/s state drain", "import b.cfg sha256:3", "import a.cfg sha256:2"}
	if strings.Join(cmds, "|") != strings.Join(want, "|") {
		t.Fatalf("left %q, want %q", cmds, want)
	}
}
