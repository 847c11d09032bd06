package compat

import (
	"net"
	"testing"
)

// tcpOrigin accepts connections on a loopback port until the test ends and
// runs handle on each in its own goroutine; it returns the address.
func tcpOrigin(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}
