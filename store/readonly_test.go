package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"tether/store"
)

// dirState lists the files of dir with their sizes and modification times.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, _ := os.ReadFile(p)
		out[filepath.Base(p)] = info.ModTime().String() + " " + string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenReadOnlyWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tether.db")
	if _, err := store.OpenReadOnly(ctx, path, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only open of a missing file: %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only open created %s", path)
	}

	rw, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := richState()
	if err := rw.ReplaceState(ctx, want, store.AuditEntry{Channel: "import", Command: "import"}); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	before := dirState(t, dir)

	ro, err := store.OpenReadOnly(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, found, err := ro.LoadState(ctx)
	if err != nil || !found {
		t.Fatalf("load: found=%v err=%v", found, err)
	}
	if !reflect.DeepEqual(store.Normalize(got), store.Normalize(want)) {
		t.Errorf("read-only load differs:\n%s", diffStates(got, want))
	}
	if err := ro.ReplaceState(ctx, want, store.AuditEntry{Channel: "import", Command: "import"}); err == nil {
		t.Errorf("a write through a read-only store succeeded")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	after := dirState(t, dir)
	if !reflect.DeepEqual(before, after) {
		var names []string
		for n := range after {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Errorf("files changed by a read-only open: before %d files, after %v", len(before), names)
	}

	// While another process has it open, a read-only open sees its
	// committed changes and still creates nothing.
	rw, err = store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	want = filledState(t)
	if err := rw.ReplaceState(ctx, want, store.AuditEntry{Channel: "import", Command: "import"}); err != nil {
		t.Fatal(err)
	}
	before = dirState(t, dir)
	ro, err = store.OpenReadOnly(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = ro.LoadState(ctx)
	ro.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(store.Normalize(got), store.Normalize(want)) {
		t.Errorf("read-only load beside a writer differs:\n%s", diffStates(got, want))
	}
	if after := dirState(t, dir); len(after) != len(before) {
		t.Errorf("files beside a writer: before %d, after %d", len(before), len(after))
	}
}
