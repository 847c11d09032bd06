//go:build !unix

package store

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked")

// tryLock refuses: without flock there is no lock the operating system
// releases on a crash, and sharing a database silently is not an option.
func tryLock(*os.File) error {
	return errors.New("locking a database is not supported on this operating system")
}
