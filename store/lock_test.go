package store_test

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"tether/store"
)

func TestLockIsExclusive(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tether.db")
	l, err := store.Lock(db)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("locking created the database file (stat: %v)", err)
	}
	_, err = store.Lock(db)
	var inUse *store.InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, store.ErrInUse) {
		t.Fatalf("second lock: got %v, want an InUseError", err)
	}
	if inUse.PID != os.Getpid() {
		t.Errorf("holder pid %d, want %d", inUse.PID, os.Getpid())
	}
	if want := db + " is in use by pid " + strconv.Itoa(os.Getpid()); err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if h := store.Holder(db); h != os.Getpid() {
		t.Errorf("Holder = %d, want %d", h, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if h := store.Holder(db); h != 0 {
		t.Errorf("Holder after release = %d, want 0", h)
	}
	l2, err := store.Lock(db)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

// TestLockReleasedWhenHolderDies shows the lock does not outlive a killed
// process: the kernel releases it.
func TestLockReleasedWhenHolderDies(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tether.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderProcess$")
	cmd.Env = append(os.Environ(), "TETHER_LOCK_HOLDER="+db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 7)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "locked\n" {
		cmd.Process.Kill()
		t.Fatalf("holder did not lock: %q %v", line, err)
	}
	_, err = store.Lock(db)
	var inUse *store.InUseError
	if !errors.As(err, &inUse) || inUse.PID != cmd.Process.Pid {
		cmd.Process.Kill()
		t.Fatalf("lock while the holder runs: %v, want in use by pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := store.Lock(db)
	if err != nil {
		t.Fatalf("lock after the holder was killed: %v", err)
	}
	l.Release()
}

// TestLockHolderProcess is the process TestLockReleasedWhenHolderDies kills.
func TestLockHolderProcess(t *testing.T) {
	db := os.Getenv("TETHER_LOCK_HOLDER")
	if db == "" {
		t.Skip("run by TestLockReleasedWhenHolderDies")
	}
	if _, err := store.Lock(db); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	time.Sleep(time.Minute)
}
