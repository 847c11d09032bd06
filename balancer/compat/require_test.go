package compat

import (
	"os"
	"os/exec"
	"testing"
)

// requireProgram returns the path of an external program, skipping the test
// when it is missing, or failing it when TETHER_E2E=require.
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := dir + "/" + name; fileExists(p) {
			return p
		}
	}
	if os.Getenv("TETHER_E2E") == "require" {
		t.Fatalf("%s is required (TETHER_E2E=require) but not installed", name)
	}
	t.Skipf("%s is not installed; install it (apt-get install %s) to run this differential test", name, name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
