//go:build unix

package connlimit

import (
	"fmt"
	"math"
	"syscall"
)

// RaiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit, as
// HAProxy does at start, and returns the soft limit in effect (at most
// MaxInt32). Go's runtime already raises it at start-up, but to one below
// the hard limit (syscall's init, since Go 1.19), so this usually gains
// one descriptor; as with any explicit Setrlimit, child processes then
// inherit the raised limit instead of the original one.
func RaiseFileLimit() (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read the file descriptor limit: %w", err)
	}
	var err error
	// An unlimited hard limit (macOS) cannot be the soft one; Go's runtime
	// already raised the soft limit as far as the kernel allows.
	if lim.Cur < lim.Max && uint64(lim.Max) < 1<<62 {
		raised := lim
		raised.Cur = raised.Max
		if err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			lim = raised
		} else {
			err = fmt.Errorf("raise the file descriptor limit from %d to %d: %w", lim.Cur, lim.Max, err)
		}
	}
	return int(min(uint64(lim.Cur), math.MaxInt32)), err
}
