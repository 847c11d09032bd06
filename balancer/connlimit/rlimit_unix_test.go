//go:build unix

package connlimit

import (
	"syscall"
	"testing"
)

func TestRaiseFileLimit(t *testing.T) {
	got, err := RaiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if uint64(lim.Cur) != uint64(lim.Max) && uint64(lim.Max) < 1<<62 {
		t.Errorf("soft limit %d after RaiseFileLimit, want the hard limit %d", lim.Cur, lim.Max)
	}
	if uint64(got) != uint64(lim.Cur) && got != 1<<31-1 {
		t.Errorf("RaiseFileLimit = %d, soft limit is %d", got, lim.Cur)
	}
}
