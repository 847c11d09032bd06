// Package e2etest holds what Tether's end-to-end tests share: finding the
// external programs they drive (haproxy, chromium, wrk) and deciding,
// from TETHER_E2E, whether a missing one skips the test or fails it.
package e2etest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Required reports whether end-to-end tests must run rather than skip
// (TETHER_E2E=require, as CI sets it).
func Required() bool { return os.Getenv("TETHER_E2E") == "require" }

// RequireProgram returns the path of an external program, looking in PATH
// and in /usr/sbin and /usr/bin. When it is missing the test is skipped
// with a message saying what to install, or fails if Required.
func RequireProgram(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if Required() {
		t.Fatalf("%s is required (TETHER_E2E=require) but not installed", name)
	}
	t.Skipf("%s is not installed; install it (Debian: apt-get install %s) to run this test", name, name)
	return ""
}

// Buffer collects the output of a process or logger that writes while a
// test reads it. It is safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
