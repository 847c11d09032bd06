package store_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// TestKeyGraceSurvivesRestart rotates a dynamic-cookie key with grace
// through a store, reopens the store as a restart does, and checks that a
// balancer built from what it loads still honours the previous key's
// cookies until the window ends, and no longer after: once from the
// journal, once from a state document.
func TestKeyGraceSurvivesRestart(t *testing.T) {
	for _, fromDocument := range []bool{false, true} {
		name := "journal"
		if fromDocument {
			name = "document"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "tether.db")
			var mu sync.Mutex
			clock := time.Now().Truncate(time.Second)
			now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
			s := storetest.OpenPath(t, path)
			b, err := balancer.New(liveConfig(), balancer.Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ReplaceState(ctx, b.State(), store.AuditEntry{Channel: "import", Command: "seed"}); err != nil {
				t.Fatal(err)
			}
			b.SetCommitter(s.Committer())
			if err := b.Apply(balancer.SetDynamicCookieKey{Backend: "app", Key: "second-live-key", Grace: time.Hour}, balancer.Origin{Channel: "test"}); err != nil {
				t.Fatal(err)
			}
			if fromDocument {
				if err := s.ReplaceState(ctx, b.State(), store.AuditEntry{Channel: "import", Command: "checkpoint"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = storetest.OpenPath(t, path)
			st, found, err := s.LoadState(ctx)
			if err != nil || !found {
				t.Fatalf("load state: found %v, %v", found, err)
			}
			rk := st.Config.Backends[0].RetiredKeys
			if len(rk) != 1 || rk[0].Key != "first-live-key" || !rk[0].Until.Equal(clock.Add(time.Hour)) {
				t.Fatalf("loaded retired keys %+v", rk)
			}
			b2, err := balancer.New(st.Config, balancer.Options{Now: now, Runtime: st.Servers})
			if err != nil {
				t.Fatal(err)
			}
			old := "SRV=" + balancer.DynamicCookie("first-live-key", netip.MustParseAddr("127.0.0.1"), 9002)
			explain := func() balancer.Explanation {
				e, err := b2.Explain("app", old, now())
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			if e := explain(); e.Named != "s2" || !e.OldKey || e.Route != balancer.RouteCookie {
				t.Fatalf("after the restart, inside the window: %+v", e)
			}
			mu.Lock()
			clock = clock.Add(time.Hour)
			mu.Unlock()
			if e := explain(); e.Verdict != balancer.VerdictUnknown || e.OldKey {
				t.Fatalf("after the restart, past the window: %+v", e)
			}
		})
	}
}

