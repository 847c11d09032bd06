package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
	"tether/store/pgtest"
	"tether/store/storetest"
)

// received is a journal row and when the follower got it.
type received struct {
	row store.JournalRow
	at  time.Time
}

// follower runs Store.Follow on its own goroutine until the test ends.
type follower struct {
	rows chan received
	done chan error
}

func follow(t *testing.T, s *store.Store, after int64) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{rows: make(chan received, 4096), done: make(chan error, 1)}
	go func() {
		f.done <- s.Follow(ctx, after, func(r store.JournalRow) error {
			f.rows <- received{r, time.Now()}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-f.done; !errors.Is(err, context.Canceled) {
			t.Errorf("Follow ended with %v, want context.Canceled", err)
		}
	})
	return f
}

func (f *follower) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-f.rows:
		return r
	case err := <-f.done:
		t.Fatalf("Follow ended: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no journal row within 15 s")
	}
	return received{}
}

// seedFleet stores suite's configuration through s and returns a balancer
// committing to s.
func seedFleet(t *testing.T, s *store.Store) *balancer.Balancer {
	t.Helper()
	b, err := balancer.New(balancer.Config{
		Backends: []balancer.Backend{{
			Name: "app", Balance: balancer.RoundRobin, DynamicCookieKey: "fleet-key-1",
			Cookie: &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert, Dynamic: true},
			Servers: []balancer.Server{
				{Name: "s1", Address: "127.0.0.1", Port: 9001, PortSet: true, Weight: 1},
				{Name: "s2", Address: "127.0.0.1", Port: 9002, PortSet: true, Weight: 1},
			},
		}},
	}, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceState(context.Background(), b.State(), store.AuditEntry{Channel: "import", Command: "import fleet.cfg"}); err != nil {
		t.Fatal(err)
	}
	b.SetCommitter(s.Committer())
	return b
}

func srv(name string) balancer.ServerRef { return balancer.ServerRef{Backend: "app", Server: name} }

// TestFollowPostgres checks the shared journal on PostgreSQL: rows
// committed through one Store reach the follower of another, in order,
// across a lost connection, and a commit from a node behind the journal is
// refused.
func TestFollowPostgres(t *testing.T) {
	c := pgtest.Start(t)
	pair := func(t *testing.T) (url string, a, b *store.Store) {
		url = c.NewDatabase(t)
		return url, storetest.OpenPath(t, url), storetest.OpenPath(t, url)
	}

	t.Run("rows committed on one store are delivered on the other", func(t *testing.T) {
		_, a, b := pair(t)
		f := follow(t, b, 0)
		bal := seedFleet(t, a)
		origin := balancer.Origin{Channel: "socket", Command: "set server app/s1 weight 40"}
		if err := bal.Apply(balancer.SetWeight{ServerRef: srv("s1"), Weight: 40}, origin); err != nil {
			t.Fatal(err)
		}
		if err := bal.Apply(balancer.SetDynamicCookieKey{Backend: "app", Key: "fleet-key-2"}, balancer.Origin{Channel: "socket"}); err != nil {
			t.Fatal(err)
		}
		first := f.next(t).row
		if first.State == nil || first.Changes != nil || first.Entry.Channel != "import" {
			t.Fatalf("first row = %+v, want the imported state", first)
		}
		st := *first.State
		var last int64 = first.Version
		for range 2 {
			r := f.next(t).row
			if r.Version <= last || r.State != nil || len(r.Changes) != 1 {
				t.Fatalf("row %+v after version %d, want one change with a greater version", r, last)
			}
			last = r.Version
			var err error
			if st, err = balancer.Replay(st, r.Changes, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := store.Normalize(st), store.Normalize(bal.State()); !reflect.DeepEqual(got, want) {
			t.Errorf("state replayed from followed rows:\ngot  %+v\nwant %+v", got, want)
		}
		if k := st.Config.Backends[0].DynamicCookieKey.Reveal(); k != "fleet-key-2" {
			t.Errorf("followed key = %q, want fleet-key-2", k)
		}
		loaded, _, v, err := b.LoadStateVersion(context.Background())
		if err != nil || v != last || !reflect.DeepEqual(loaded, store.Normalize(st)) {
			t.Errorf("LoadStateVersion = version %d, %v; want the followed state at version %d", v, err, last)
		}
	})

	t.Run("1000 rows arrive in order", func(t *testing.T) {
		_, a, b := pair(t)
		bal := seedFleet(t, a)
		from, err := b.JournalVersion(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		f := follow(t, b, from)
		// A first row, so the follower listens before the clock starts.
		if err := a.AppendAudit(context.Background(), store.AuditEntry{Channel: "socket", Command: "warm up"}); err != nil {
			t.Fatal(err)
		}
		from = f.next(t).row.Version
		const n = 1000
		acked := make([]time.Time, n)
		for i := range n {
			if err := bal.Apply(balancer.SetWeight{ServerRef: srv("s1"), Weight: i % 256}, balancer.Origin{Channel: "socket"}); err != nil {
				t.Fatal(err)
			}
			acked[i] = time.Now()
		}
		latency := make([]time.Duration, n)
		last := from
		for i := range n {
			r := f.next(t)
			w, ok := r.row.Changes[0].(balancer.SetWeight)
			if r.row.Version <= last || !ok || w.Weight != i%256 {
				t.Fatalf("row %d: version %d after %d, change %+v; want weight %d", i, r.row.Version, last, r.row.Changes, i%256)
			}
			last = r.row.Version
			latency[i] = max(r.at.Sub(acked[i]), 0)
		}
		slices.Sort(latency)
		t.Logf("commit acknowledged on one store to row delivered on the other: p50 %v, p99 %v, max %v",
			latency[n/2], latency[n*99/100], latency[n-1])
	})

	t.Run("a commit from a node behind the journal is refused", func(t *testing.T) {
		ctx := context.Background()
		_, a, b := pair(t)
		seedFleet(t, a)
		v0, err := a.JournalVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		weight := func(w int) balancer.Commit {
			return balancer.Commit{Changes: []balancer.Change{balancer.SetWeight{ServerRef: srv("s1"), Weight: w}},
				Origin: balancer.Origin{Channel: "socket"}, Time: time.Now()}
		}
		v1, err := a.CommitAt(ctx, weight(5), v0)
		if err != nil || v1 <= v0 {
			t.Fatalf("CommitAt(%d) = %d, %v", v0, v1, err)
		}
		_, err = b.CommitAt(ctx, weight(6), v0)
		var conflict *store.ConflictError
		if !errors.Is(err, store.ErrConflict) || !errors.As(err, &conflict) || conflict.Newest != v1 {
			t.Fatalf("CommitAt from version %d after %d was committed: %v, want a conflict at %d", v0, v1, err, v1)
		}
		if v, _ := b.JournalVersion(ctx); v != v1 {
			t.Errorf("journal version %d after a refused commit, want %d", v, v1)
		}
		// A refused command recorded by another node is no conflict.
		if err := a.AppendAudit(ctx, store.AuditEntry{Channel: "socket", Command: "set server app/s1 weight 999", Result: "refused"}); err != nil {
			t.Fatal(err)
		}
		v2, err := b.CommitAt(ctx, weight(6), v1)
		if err != nil {
			t.Fatalf("CommitAt(%d) after an audit-only row: %v", v1, err)
		}
		if _, err := a.CommitAt(ctx, weight(7), v1); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CommitAt(%d) after %d: %v, want ErrConflict", v1, v2, err)
		}
		st, _, err := a.LoadState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if w := st.Servers["app/s1"].Weight; w != 6 {
			t.Errorf("weight after the commits = %d, want 6 (the refused 7 left nothing)", w)
		}
	})

	t.Run("a follower that loses its connection catches up", func(t *testing.T) {
		ctx := context.Background()
		url, a, b := pair(t)
		db := pgtest.DatabaseName(url)
		f := follow(t, b, 0)
		appendRow := func(i int) {
			t.Helper()
			if err := a.AppendAudit(ctx, store.AuditEntry{Channel: "socket", Command: fmt.Sprintf("row %d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		appendRow(0)
		if r := f.next(t).row; r.Entry.Command != "row 0" {
			t.Fatalf("first row %+v", r.Entry)
		}
		// Refuse new connections to the database, then end the follower's:
		// it cannot listen again until connections are allowed, and the
		// rows committed meanwhile are never notified to it.
		if err := c.Exec(ctx, "postgres", "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS false"); err != nil {
			t.Fatal(err)
		}
		if n, err := c.TerminateConnections(ctx, db, store.FollowApplicationName); err != nil || n != 1 {
			t.Fatalf("ended %d listening connections (%v), want 1", n, err)
		}
		for i := 1; i <= 5; i++ {
			appendRow(i)
		}
		if err := c.Exec(ctx, "postgres", "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS true"); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 5; i++ {
			if r := f.next(t).row; r.Entry.Command != fmt.Sprintf("row %d", i) {
				t.Fatalf("row %d after reconnecting = %+v", i, r.Entry)
			}
		}
		appendRow(6)
		if r := f.next(t).row; r.Entry.Command != "row 6" {
			t.Fatalf("row after catching up = %+v", r.Entry)
		}
	})
}

// TestFollowSQLite checks that Follow delivers rows on the embedded engine
// too, reading the journal.
func TestFollowSQLite(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	f := follow(t, s, 0)
	for i := range 3 {
		if err := s.AppendAudit(ctx, store.AuditEntry{Channel: "socket", Command: fmt.Sprintf("row %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if r := f.next(t).row; r.Entry.Command != fmt.Sprintf("row %d", i) || r.Version != int64(i+1) {
			t.Fatalf("row %d = %+v", i, r)
		}
	}
}
