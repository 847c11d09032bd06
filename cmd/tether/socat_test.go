package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"tether/balancer"
)

func TestSocatAddressIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		sockets []string
		want    string
	}{
		{"relative path", []string{"tether.sock"}, filepath.Join(cwd, "tether.sock")},
		{"dot-relative path", []string{"./run/../tether.sock"}, filepath.Join(cwd, "tether.sock")},
		{"absolute path", []string{"/run/tether/admin.sock"}, "/run/tether/admin.sock"},
		{"first UNIX socket after a TCP one", []string{"ipv4@127.0.0.1:9999", "admin.sock"}, filepath.Join(cwd, "admin.sock")},
		{"TCP only", []string{"ipv4@127.0.0.1:9999"}, "tcp:127.0.0.1:9999"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var socks []balancer.StatsSocket
			for _, a := range tt.sockets {
				socks = append(socks, balancer.StatsSocket{Address: a})
			}
			if got := socatAddress(socks); got != tt.want {
				t.Errorf("socatAddress(%q) = %q, want %q", tt.sockets, got, tt.want)
			}
		})
	}

	// The address reaches a socket opened by its relative path from
	// another directory.
	ln, err := net.Listen("unix", "tether.sock")
	if err != nil {
		t.Fatalf("listen on a relative socket path: %v", err)
	}
	defer ln.Close()
	addr := socatAddress([]balancer.StatsSocket{{Address: "tether.sock"}})
	t.Chdir(t.TempDir())
	c, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatalf("dial %s from another directory: %v", addr, err)
	}
	c.Close()
}
