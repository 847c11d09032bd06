package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
)

func TestRefusedCommandsCannotFloodTheAudit(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "t.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := newRefusalAudit(st, slog.New(slog.DiscardHandler))
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }

	flood := balancer.Origin{Channel: "socket", Source: "/run/ro.sock"}
	other := balancer.Origin{Channel: "socket", Source: "/run/admin.sock"}
	for range 1000 {
		a.record(flood, "set weight be/s1 1", "Permission denied")
	}
	a.record(other, "del server be/s9", "No such server.")
	rows := func(o balancer.Origin) []store.AuditEntry {
		all, err := st.ListAudit(ctx, store.AuditFilter{Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		var out []store.AuditEntry
		for _, e := range all {
			if e.Source == o.Source {
				out = append(out, e)
			}
		}
		return out
	}
	if n := len(rows(flood)); n != a.limit {
		t.Errorf("%d rows for 1000 refusals in one window, want %d", n, a.limit)
	}
	if n := len(rows(other)); n != 1 {
		t.Errorf("another source got %d rows, want 1", n)
	}
	// The window ends: one summary row says how many were not written.
	now = now.Add(a.window)
	a.flush(false)
	got := rows(flood)
	if len(got) != a.limit+1 || !strings.HasPrefix(got[0].Command, "980 more refused commands") {
		t.Fatalf("after the window: %d rows, newest %+v", len(got), got[0])
	}
	// A new window records again.
	a.record(flood, "set weight be/s1 2", "Permission denied")
	if n := len(rows(flood)); n != a.limit+2 {
		t.Errorf("new window: %d rows", n)
	}
}
