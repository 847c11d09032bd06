//go:build !unix

package connlimit

import "errors"

// RaiseFileLimit reports that the platform has no RLIMIT_NOFILE; the
// global maxconn is then not derived.
func RaiseFileLimit() (int, error) {
	return 0, errors.ErrUnsupported
}
