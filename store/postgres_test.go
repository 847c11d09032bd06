package store

import "testing"

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"WHERE s.backend = ?1 AND (?2 = '' OR s.server = ?2) AND m < ?10", "WHERE s.backend = $1 AND ($2 = '' OR s.server = $2) AND m < $10"},
		{"SELECT '?', \"a?\" FROM t WHERE x = ?", "SELECT '?', \"a?\" FROM t WHERE x = $1"},
		{"SELECT 'it''s ?' WHERE x = ?", "SELECT 'it''s ?' WHERE x = $1"},
		{"-- why?\nSELECT ?", "-- why?\nSELECT $1"},
		{"SELECT $1", "SELECT $1"},
		{"SELECT 'unterminated ?", "SELECT 'unterminated ?"},
	}
	for _, tt := range tests {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsPostgresDSN(t *testing.T) {
	tests := []struct {
		dsn  string
		want bool
	}{
		{"postgres://u@localhost/db", true},
		{"postgresql://u@localhost/db?sslmode=disable", true},
		{"tether.db", false},
		{"/var/lib/tether/postgres://x", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsPostgresDSN(tt.dsn); got != tt.want {
			t.Errorf("IsPostgresDSN(%q) = %v, want %v", tt.dsn, got, tt.want)
		}
	}
	if got := RedactDSN("postgres://u:secret@h/db"); got != "postgres://u:xxxxx@h/db" {
		t.Errorf("RedactDSN = %q", got)
	}
}
