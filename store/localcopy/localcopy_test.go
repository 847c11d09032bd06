package localcopy

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"tether/balancer"
)

func testState(key string, weight int) balancer.State {
	return balancer.State{
		Config: balancer.Config{Backends: []balancer.Backend{{
			Name: "be", DynamicCookieKey: balancer.Secret(key),
			Servers: []balancer.Server{{Name: "s1", Address: "127.0.0.1", Port: 8080, PortSet: true, Weight: weight}},
		}}},
		Servers: map[string]balancer.ServerRuntime{"be/s1": {Weight: weight}},
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.tether-state")
	if _, err := Read(path); !IsMissing(err) {
		t.Fatalf("Read of no copy: %v, want a missing-file error", err)
	}
	for i, c := range []Copy{{Version: 3, State: testState("first-key", 10)}, {Version: 9, State: testState("second-key", 40)}} {
		if err := Write(path, c); err != nil {
			t.Fatal(err)
		}
		got, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != c.Version || !reflect.DeepEqual(got.State, c.State) {
			t.Errorf("write %d: read %+v, want %+v", i, got, c)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want the copy only", len(entries))
	}
	data, _ := os.ReadFile(path)
	// The state names the key by reference, as the database's documents do.
	if n := strings.Count(string(data), "second-key"); n != 1 {
		t.Errorf("the key appears %d times in the file, want once (in its secrets)", n)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"state":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || IsMissing(err) {
		t.Errorf("a damaged copy read: %v", err)
	}
}

func TestSaverWritesTheNewestOffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.tether-state")
	s := NewSaver(path, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for v := int64(1); v <= 20; v++ {
		s.Offer(Copy{Version: v, State: testState("k", int(v))})
	}
	s.Offer(Copy{Version: 5, State: testState("k", 5)}) // older: ignored
	deadline := time.Now().Add(5 * time.Second)
	for s.Written() != 20 {
		if time.Now().After(deadline) {
			t.Fatalf("written version %d, want 20", s.Written())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 20 || got.State.Servers["be/s1"].Weight != 20 {
		t.Errorf("copy at version %d with weight %d, want 20 and 20", got.Version, got.State.Servers["be/s1"].Weight)
	}
}

// An offer older than the copy being written is ignored: it used to be
// taken once the write had begun, and written over the newer copy.
func TestSaverIgnoresAnOlderOfferDuringAWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.tether-state")
	s := NewSaver(path, slog.New(slog.DiscardHandler))
	writing, finish := make(chan int64, 4), make(chan struct{})
	s.write = func(path string, c Copy) error {
		writing <- c.Version
		<-finish
		return Write(path, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	s.Offer(Copy{Version: 20, State: testState("k", 20)})
	if v := <-writing; v != 20 {
		t.Fatalf("writing version %d, want 20", v)
	}
	s.Offer(Copy{Version: 5, State: testState("k", 5)}) // while 20 is being written
	close(finish)
	cancel()
	<-done
	select {
	case v := <-writing:
		t.Errorf("version %d written after version 20", v)
	default:
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 20 {
		t.Errorf("copy at version %d, want 20", got.Version)
	}
}
