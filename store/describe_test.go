package store

import "testing"

func TestFieldLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Weight", "weight"},
		{"MaxConn", "maxconn"},
		{"Cookie.MaxIdle", "cookie.maxidle"},
		{"Cookie.HTTPOnly", "cookie.httponly"},
		{"AllowDupIP", "allow-dup-ip"},
		{"FastInter", "fastinter"},
		{"StatsMaxConn", "stats-maxconn"},
		{"ResolvePrefer", "resolve-prefer"},
		{"HTTPCheck.ExpectStatus", "httpcheck.expect-status"},
	}
	for _, tt := range tests {
		if got := fieldLabel(tt.in); got != tt.want {
			t.Errorf("fieldLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
