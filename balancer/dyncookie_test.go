package balancer

import (
	"net/netip"
	"testing"
)

func TestDynamicCookieVectors(t *testing.T) {
	tests := []struct {
		key  string
		addr string
		port int32
		want string
	}{
		{"dynckey", "127.0.0.1", 29001, "edd65e86ae0031ee"},
		{"dynckey", "127.0.0.2", 29002, "38ab08ba9aa13281"},
		{"dynckey", "::1", 29003, "8ec090577e7dc44f"},
		{"mysecretkey", "2001:db8::1", 443, "3438d656124473ec"},
		{"k", "10.0.0.1", 0, "9f534c85655fa53e"},
		{"secret key", "10.0.0.2", 8443, "43e9e9b0c1714f41"},
		{"", "10.0.0.2", 8443, ""},
	}
	for _, tt := range tests {
		got := DynamicCookie(tt.key, netip.MustParseAddr(tt.addr), tt.port)
		if got != tt.want {
			t.Errorf("DynamicCookie(%q, %s, %d) = %q, want %q", tt.key, tt.addr, tt.port, got, tt.want)
		}
	}
	if got := DynamicCookie("k", netip.Addr{}, 80); got != "" {
		t.Errorf("DynamicCookie with no address = %q, want empty", got)
	}
}

func TestCookieDate(t *testing.T) {
	enc := []struct {
		t    int64
		want string
	}{
		{1700000000, "ZVPxA"},
		{1700000001, "ZVPxB"},
		{1700000004, "ZVPxB"},
		{1795536771, "awW3h"},
	}
	for _, tt := range enc {
		if got := string(appendCookieDate(nil, tt.t)); got != tt.want {
			t.Errorf("appendCookieDate(%d) = %q, want %q", tt.t, got, tt.want)
		}
	}
	if got := parseCookieDate("awW3h"); got != 1795536772 {
		t.Errorf("parseCookieDate(awW3h) = %d, want 1795536772", got)
	}
	for _, bad := range []string{"", "abcd", "abcdef", "ab*de", "AAAAA"} {
		if got := parseCookieDate(bad); got != 0 {
			t.Errorf("parseCookieDate(%q) = %d, want 0", bad, got)
		}
	}
}

func TestKeyFingerprintHidesKey(t *testing.T) {
	fp := KeyFingerprint("mysecretphrase")
	if len(fp) != 8 || fp == KeyFingerprint("other") {
		t.Fatalf("fingerprint %q not 8 hex digits or not distinct", fp)
	}
	if KeyFingerprint("") != "" {
		t.Fatal("empty key must have empty fingerprint")
	}
}

func TestPreviewCookie(t *testing.T) {
	b, err := New(Config{Backends: []Backend{{Name: "be", DynamicCookieKey: "dynckey"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.PreviewCookie("be", netip.MustParseAddr("127.0.0.2"), 29002)
	if err != nil || got != "38ab08ba9aa13281" {
		t.Fatalf("PreviewCookie = %q, %v", got, err)
	}
	if _, err := b.PreviewCookie("nope", netip.MustParseAddr("127.0.0.2"), 1); err != ErrNoSuchBackend {
		t.Fatalf("unknown backend: %v", err)
	}
}
