// Package localcopy keeps a fleet node's last applied state on its own
// disk, so that the node can start and serve while the shared database
// cannot be reached. The copy is one JSON file, replaced atomically
// (written beside it, synced, renamed) with mode 0600. Its dynamic-cookie
// keys are held as the SQLite database holds them: the state names each
// key by reference and the file's secrets map the references to the keys,
// in clear text, protected by the file's permissions only.
package localcopy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"tether/balancer"
)

// Copy is a node's state once it applied the journal up to Version.
type Copy struct {
	Version int64
	State   balancer.State
}

// file is the copy as stored.
type file struct {
	// Version is the journal version the state includes.
	Version int64 `json:"version"`
	// State is balancer.EncodeState's document.
	State json.RawMessage `json:"state"`
	// Secrets are the state's keys by reference.
	Secrets map[string]string `json:"secrets"`
}

// Write replaces the copy at path with c, atomically: a reader sees the
// old copy or the new one, never a part.
func Write(path string, c Copy) error {
	doc, err := balancer.EncodeState(c.State)
	if err != nil {
		return fmt.Errorf("write the local copy %s: %w", path, err)
	}
	data, err := json.Marshal(file{Version: c.Version, State: doc, Secrets: c.State.Secrets()})
	if err != nil {
		return fmt.Errorf("write the local copy %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write the local copy %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp creates the file with mode 0600.
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write the local copy %s: %w", path, err)
	}
	// The rename is durable once the directory is synced.
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// Read returns the copy at path; an error matching fs.ErrNotExist says
// there is none.
func Read(path string) (Copy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Copy{}, fmt.Errorf("read the local copy: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return Copy{}, fmt.Errorf("read the local copy %s: %w", path, err)
	}
	st, err := balancer.DecodeState(f.State)
	if err != nil {
		return Copy{}, fmt.Errorf("read the local copy %s: %w", path, err)
	}
	if err := st.ResolveSecrets(func(ref string) (string, bool) { v, ok := f.Secrets[ref]; return v, ok }); err != nil {
		return Copy{}, fmt.Errorf("read the local copy %s: %w", path, err)
	}
	return Copy{Version: f.Version, State: st}, nil
}

// Saver writes the newest copy offered to it, one write at a time: a
// burst of changes costs one write of the last state. It is safe for
// concurrent use; Run must be running for offers to be written.
type Saver struct {
	path  string
	log   *slog.Logger
	ready chan struct{}
	write func(path string, c Copy) error // Write; tests slow it down

	mu      sync.Mutex
	pending *Copy
	// newest is the version of the newest copy taken: pending, being
	// written or written.
	newest  int64
	written int64
}

// NewSaver returns a saver writing to path.
func NewSaver(path string, log *slog.Logger) *Saver {
	return &Saver{path: path, log: log, ready: make(chan struct{}, 1), write: Write, newest: -1, written: -1}
}

// Offer hands the saver c to write. It never blocks on I/O: an offer
// replaces one not yet written. An offer older than one taken before
// (pending, being written or written) is ignored.
func (s *Saver) Offer(c Copy) {
	s.mu.Lock()
	if c.Version < s.newest {
		s.mu.Unlock()
		return
	}
	s.newest = c.Version
	s.pending = &c
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Run writes the copies offered until ctx ends, then the last one.
func (s *Saver) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			s.flush()
			return nil
		case <-s.ready:
			s.flush()
		}
	}
}

// Written returns the version of the copy written last, -1 before any.
func (s *Saver) Written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

func (s *Saver) flush() {
	s.mu.Lock()
	c := s.pending
	s.pending = nil
	s.mu.Unlock()
	if c == nil {
		return
	}
	if err := s.write(s.path, *c); err != nil {
		s.log.Error("the node's local copy of the state was not written; a start while the database is down would run an older one", "error", err)
		return
	}
	s.mu.Lock()
	s.written = max(s.written, c.Version)
	s.mu.Unlock()
}

// IsMissing reports whether err says there is no local copy.
func IsMissing(err error) bool { return errors.Is(err, os.ErrNotExist) }
