package balancer

import (
	"errors"
	"testing"
)

func TestReplaceKeepsCountersAndRuntime(t *testing.T) {
	origins := startOrigins(t, 3)
	be := dynBackend(origins)
	h := newHarness(t, be, nil)
	for range 6 {
		h.get("/", "")
	}
	h.apply(SetAdminState{ServerRef: ServerRef{Backend: "servers", Server: "s2"}, State: Drain})
	events, stop := h.b.Subscribe(16)
	defer stop()

	var commits []Commit
	h.b.SetCommitter(func(c Commit) error { commits = append(commits, c); return nil })
	st := h.b.State()
	// The new file drops s3, changes the key and adds nothing else.
	st.Config.Backends[0].Servers = st.Config.Backends[0].Servers[:2]
	st.Config.Backends[0].DynamicCookieKey = "another"
	delete(st.Servers, "servers/s3")
	if err := h.b.Replace(st, Origin{Channel: "reload"}, "reload: 2 changes"); err != nil {
		t.Fatal(err)
	}
	if len(commits) != 1 || commits[0].Changes != nil || !commits[0].Replaced || len(commits[0].After.Config.Backends[0].Servers) != 2 {
		t.Fatalf("commits = %+v, want one whole-state commit", commits)
	}
	ev := <-events
	if ev.Kind != EventChange || ev.Message != "reload: 2 changes" || ev.Origin.Channel != "reload" {
		t.Errorf("event = %+v", ev)
	}
	snap := h.b.Snapshot().Backend("servers")
	if len(snap.Servers) != 2 {
		t.Fatalf("servers after reload: %d", len(snap.Servers))
	}
	s1 := snap.Server("s1")
	if s1.Stats.TotalSessions < 2 {
		t.Errorf("s1 lost its counters over the reload: %+v", s1.Stats)
	}
	if snap.Server("s2").Admin&AdminFDrain == 0 {
		t.Errorf("s2's drain was lost: %v", snap.Server("s2").Admin)
	}
	if h.b.Snapshot().Backend("servers").Stats.TotalSessions < 6 {
		t.Errorf("backend counters lost")
	}
	r := h.get("/", "")
	if r.origin != "s1" {
		t.Errorf("after reload a new client went to %q, want s1 (s2 drains, s3 is gone)", r.origin)
	}
}

func TestReplaceRefusedChangesNothing(t *testing.T) {
	origins := startOrigins(t, 2)
	h := newHarness(t, dynBackend(origins), nil)
	before := h.b.State()
	version := h.b.Snapshot().Version

	bad := h.b.State()
	bad.Config.Frontends = []Frontend{bad.Config.Frontends[0]}
	bad.Config.Frontends[0].DefaultBackend = "nowhere"
	if err := h.b.Replace(bad, Origin{Channel: "reload"}, "reload"); err == nil {
		t.Fatal("a state naming a missing backend was accepted")
	}
	refuse := errors.New("disk full")
	h.b.SetCommitter(func(Commit) error { return refuse })
	good := h.b.State()
	good.Config.Backends[0].Servers = good.Config.Backends[0].Servers[:1]
	if err := h.b.Replace(good, Origin{Channel: "reload"}, "reload"); !errors.Is(err, refuse) {
		t.Fatalf("Replace with a failing committer: %v", err)
	}
	if v := h.b.Snapshot().Version; v != version {
		t.Errorf("version moved from %d to %d", version, v)
	}
	if len(h.b.State().Config.Backends[0].Servers) != len(before.Config.Backends[0].Servers) {
		t.Errorf("a refused reload changed the servers")
	}
}
