package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// testCopyTo fills a SQLite store, copies it into dst and checks that dst
// holds the same state, audit, users, sessions and history, and numbers
// its next rows after the copied ones.
func testCopyTo(t *testing.T, dst *store.Store) {
	ctx := context.Background()
	src := storetest.Open(t)
	bal := seedFleet(t, src)
	for _, c := range []balancer.Change{
		balancer.SetWeight{ServerRef: srv("s1"), Weight: 7},
		balancer.SetDynamicCookieKey{Backend: "app", Key: "copied-key"},
		balancer.SetAdminState{ServerRef: srv("s2"), State: balancer.Drain},
	} {
		if err := bal.Apply(c, balancer.Origin{Channel: "socket", Command: "change"}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := src.CreateUser(ctx, "alice", copyPassword, "admin")
	if err != nil {
		t.Fatal(err)
	}
	token, err := src.CreateSession(ctx, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.AppendHistory(ctx, []store.HistoryBucket{bucket("app", "s1", 0, 100)}, nil); err != nil {
		t.Fatal(err)
	}

	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if counts["journal"] != 4 || counts["users"] != 1 || counts["sessions"] != 1 || counts["server_history"] != 2 {
		t.Errorf("copied %v", counts)
	}
	want, _, _ := src.LoadState(ctx)
	if got, _, err := dst.LoadState(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("copied state %+v, %v\nwant %+v", got, err, want)
	}
	if k := want.Config.Backends[0].DynamicCookieKey.Reveal(); k != "copied-key" {
		t.Errorf("key %q", k)
	}
	wantAudit, _ := src.ListAudit(ctx, store.AuditFilter{})
	if got, err := dst.ListAudit(ctx, store.AuditFilter{}); err != nil || !reflect.DeepEqual(got, wantAudit) {
		t.Errorf("copied audit %+v, %v\nwant %+v", got, err, wantAudit)
	}
	if got, err := dst.SessionUser(ctx, token); err != nil || got.Name != "alice" {
		t.Errorf("session on the copy: %+v, %v", got, err)
	}
	if _, err := dst.Authenticate(ctx, "alice", copyPassword); err != nil {
		t.Errorf("password on the copy: %v", err)
	}
	q := store.HistoryQuery{Backend: "app", From: minute(0), To: minute(1)}
	wantHist, _ := src.History(ctx, q)
	if got, err := dst.History(ctx, q); err != nil || !reflect.DeepEqual(got, wantHist) {
		t.Errorf("copied history %+v, %v, want %+v", got, err, wantHist)
	}
	// New rows follow the copied ones.
	if _, err := dst.CreateUser(ctx, "bob", copyPassword, "viewer"); err != nil {
		t.Errorf("a user after the copy: %v", err)
	}
	last := wantAudit[0].ID
	v, err := dst.CommitAt(ctx, balancer.Commit{Changes: []balancer.Change{balancer.SetWeight{ServerRef: srv("s1"), Weight: 9}}, Time: time.Now()}, last)
	if err != nil || v <= last {
		t.Errorf("a commit after the copy: version %d, %v; want above %d", v, err, last)
	}
	if err := dst.AppendHistory(ctx, []store.HistoryBucket{bucket("app", "s3", 1, 5)}, nil); err != nil {
		t.Errorf("history after the copy: %v", err)
	}
	if _, err := src.CopyTo(ctx, dst); err == nil {
		t.Error("a copy into a store that is not empty was accepted")
	}
}

// copyPassword is strong enough for the store's password rules.
const copyPassword = "correct horse battery staple 9"

func TestCopyTo(t *testing.T) { testCopyTo(t, storetest.Open(t)) }
