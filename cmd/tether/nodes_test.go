package main

import (
	"strings"
	"testing"
	"time"

	"tether/store"
)

func TestWriteNodes(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	nodes := []store.Node{
		{Name: "a", Version: "v1", Applied: 9, Started: now.Add(-time.Hour), Heartbeat: now.Add(-time.Second), ConsoleURL: "http://10.0.0.1:9090/"},
		{Name: "b", Version: "v1", Applied: 7, Started: now.Add(-time.Minute), Heartbeat: now.Add(-time.Second)},
		{Name: "c", Version: "v1", Applied: 9, Started: now.Add(-2 * time.Hour), Heartbeat: now.Add(-time.Minute)},
	}
	var b strings.Builder
	writeNodes(&b, nodes, 9, now)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"a", "up", "9/9", "59m59s", "1s", "ago", "v1", "http://10.0.0.1:9090/"},
		{"b", "behind", "7/9", "59s", "1s", "ago", "v1", "-"},
		{"c", "lost", "9/9", "1h59m0s", "1m0s", "ago", "v1", "-"},
	}
	if len(lines) != 1+len(want) {
		t.Fatalf("output:\n%s", b.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want %q", i+1, got, w)
		}
	}
}
