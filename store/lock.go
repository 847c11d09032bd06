package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrInUse reports a database that another process holds with Lock.
var ErrInUse = errors.New("database is in use")

// InUseError says which process holds a database. It matches ErrInUse.
type InUseError struct {
	Path string
	// PID is the holder's process ID, or 0 when it could not be read.
	PID int
}

func (e *InUseError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is in use by pid %d", e.Path, e.PID)
	}
	return fmt.Sprintf("%s is in use by another process", e.Path)
}

// Is reports whether target is ErrInUse.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// DatabaseLock is an exclusive claim on a database file by this process:
// a lock on the file PATH.lock, which holds the owner's process ID. The
// operating system releases it when the process ends, however it ends.
type DatabaseLock struct {
	f    *os.File
	path string
}

// LockPath returns the lock file of the database at path.
func LockPath(path string) string { return path + ".lock" }

// Lock claims the database at path for this process, before anything is
// written to it. It fails with an *InUseError when another process holds
// it. The database file itself need not exist.
func Lock(path string) (*DatabaseLock, error) {
	lp := LockPath(path)
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		pid := readPID(f)
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, &InUseError{Path: path, PID: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DatabaseLock{f: f, path: lp}, nil
}

// Holder returns the process ID that holds the database at path, or 0 when
// no process holds it.
func Holder(path string) int {
	f, err := os.Open(LockPath(path))
	if err != nil {
		return 0
	}
	defer f.Close()
	if err := tryLock(f); err == nil {
		return 0
	}
	return readPID(f)
}

func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0
	}
	return pid
}

// Release gives the database up: the lock file is removed, then unlocked.
// Calling Release again does nothing.
func (l *DatabaseLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Removing before unlocking: a process that opened the old file meanwhile
	// finds it locked and fails rather than sharing the database.
	rmErr := os.Remove(l.path)
	err := l.f.Close()
	l.f = nil
	if rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", l.path, rmErr)
	}
	return err
}
