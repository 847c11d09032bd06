package store_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// TestUpgradeFromRelease6 opens a database written by the release whose
// schema version is 6 (configuration in one column per field): the
// migration folds it into a state document, and the state, the audit log
// and the users read back as that release read them.
func TestUpgradeFromRelease6(t *testing.T) {
	ctx := context.Background()
	src, err := os.ReadFile("testdata/release6/tether.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tether.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	s := storetest.OpenPath(t, path)

	var want balancer.State
	readJSON(t, "testdata/release6/state.json", &want)
	got, found, err := s.LoadState(ctx)
	if err != nil || !found {
		t.Fatalf("LoadState: found=%v err=%v", found, err)
	}
	if want = store.Normalize(want); !reflect.DeepEqual(got, want) {
		t.Errorf("state after upgrade differs:\n%s", diffStates(got, want))
	}
	if got.Config.Backends[0].DynamicCookieKey != "another-release-key" {
		t.Errorf("dynamic-cookie key after upgrade = %q", got.Config.Backends[0].DynamicCookieKey)
	}

	var wantAudit []store.AuditEntry
	readJSON(t, "testdata/release6/audit.json", &wantAudit)
	gotAudit, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gotAudit) != len(wantAudit) {
		t.Fatalf("%d audit entries after upgrade, want %d", len(gotAudit), len(wantAudit))
	}
	for i := range wantAudit {
		g, w := gotAudit[i], wantAudit[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("audit entry %d time %v, want %v", w.ID, g.Time, w.Time)
		}
		g.Time = w.Time
		if g != w {
			t.Errorf("audit entry %d = %+v, want %+v", w.ID, g, w)
		}
	}
	// That release kept the last import's digest in the command text.
	if f, err := s.LastImport(ctx); err != nil || f != (balancer.ConfigFile{Path: "app.cfg", Digest: "745f0c0c0914a35f"}) {
		t.Errorf("LastImport after upgrade = %+v, %v", f, err)
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 {
		t.Errorf("%d users after upgrade, want 2: %+v", len(users), users)
	}

	// Changes made after the upgrade are journalled on top of the folded
	// state and survive a reopen.
	b, err := balancer.New(got.Config, balancer.Options{Runtime: got.Servers, Committer: s.Committer()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(balancer.SetWeight{ServerRef: balancer.ServerRef{Backend: "app", Server: "web2"}, Weight: 77}, balancer.Origin{Channel: "socket"}); err != nil {
		t.Fatal(err)
	}
	want = store.Normalize(b.State())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := storetest.OpenPath(t, path)
	if got := loadState(t, s2); !reflect.DeepEqual(got, want) {
		t.Errorf("state after a change and a reopen differs:\n%s", diffStates(got, want))
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestCheckpoints: every checkpointEvery changes a commit stores the whole
// state as a document, loading replays only what follows it, and pruning
// the journal keeps the state.
func TestCheckpoints(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tether.db")
	b, s := liveBalancer(t, path)
	store.SetCheckpointEvery(s, 5)
	docs := func() (n int, last int64) {
		t.Helper()
		if err := store.RawDB(s).QueryRow("SELECT COUNT(*), MAX(journal_id) FROM state_documents").Scan(&n, &last); err != nil {
			t.Fatal(err)
		}
		return n, last
	}
	if n, _ := docs(); n != 1 {
		t.Fatalf("%d documents after seeding, want 1", n)
	}
	for i := range 13 {
		c := balancer.SetWeight{ServerRef: balancer.ServerRef{Backend: "app", Server: "s1"}, Weight: i + 2}
		if err := b.Apply(c, balancer.Origin{Channel: "socket"}); err != nil {
			t.Fatal(err)
		}
	}
	// Rows 2-6 are followed by a document at row 7, rows 8-12 by one at
	// row 13; row 14 is replayed on top of it.
	n, last := docs()
	if n != 3 || last != 13 {
		t.Errorf("%d documents, newest at journal row %d; want 3, at row 13", n, last)
	}
	want := store.Normalize(b.State())
	if got := loadState(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("state differs:\n%s", diffStates(got, want))
	}
	// Pruning every row still leaves the state, in a new document.
	if _, err := s.PruneAudit(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, last := docs(); n != 1 || last != 14 {
		t.Errorf("after pruning: %d documents, newest at row %d; want 1, at row 14", n, last)
	}
	if got := loadState(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("state after pruning differs:\n%s", diffStates(got, want))
	}
}

// TestLastImportOutlivesCheckpoints: the file of the last import or reload
// stays known through checkpoints and pruning, and a reload replaces it.
func TestLastImportOutlivesCheckpoints(t *testing.T) {
	ctx := context.Background()
	s := storetest.OpenPath(t, filepath.Join(t.TempDir(), "tether.db"))
	store.SetCheckpointEvery(s, 3)
	b, err := balancer.New(liveConfig(), balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := balancer.ConfigFile{Path: "a.cfg", Digest: "0123456789abcdef"}
	if err := s.ReplaceState(ctx, b.State(), store.AuditEntry{Channel: "import", Command: "import a.cfg", File: first}); err != nil {
		t.Fatal(err)
	}
	b.SetCommitter(s.Committer())
	lastImport := func(want balancer.ConfigFile) {
		t.Helper()
		if got, err := s.LastImport(ctx); err != nil || got != want {
			t.Fatalf("LastImport = %+v, %v; want %+v", got, err, want)
		}
	}
	lastImport(first)
	for i := range 7 {
		if err := b.Apply(balancer.SetWeight{ServerRef: balancer.ServerRef{Backend: "app", Server: "s1"}, Weight: i + 2}, balancer.Origin{Channel: "socket"}); err != nil {
			t.Fatal(err)
		}
	}
	var docs int
	if err := store.RawDB(s).QueryRow("SELECT COUNT(*) FROM state_documents").Scan(&docs); err != nil || docs < 2 {
		t.Fatalf("%d documents (%v); the checkpoints did not happen", docs, err)
	}
	lastImport(first)
	if _, err := s.PruneAudit(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	lastImport(first)

	second := balancer.ConfigFile{Path: "b.cfg", Digest: "fedcba9876543210"}
	if err := b.Replace(b.State(), balancer.Origin{Channel: "import", Command: "import b.cfg", File: second}, "reload"); err != nil {
		t.Fatal(err)
	}
	lastImport(second)
	if rows, err := s.ListAudit(ctx, store.AuditFilter{Channel: "import"}); err != nil || len(rows) == 0 || rows[0].Command != "import b.cfg" {
		t.Errorf("newest import row: %+v, %v", rows, err)
	}
}
