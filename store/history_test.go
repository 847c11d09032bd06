package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"tether/store"
	"tether/store/storetest"
)

// historyTests are the history tests that run on every engine, each on
// a new, empty store.
var historyTests = []struct {
	name string
	run  func(*testing.T, *store.Store)
}{
	{"round trip", testHistoryRoundTrip},
	{"a minute adds up", testHistoryMinuteAddsUp},
	{"events", testHistoryEvents},
	{"prune", testHistoryPrune},
	{"sums", testHistorySums},
}

// t0 is a whole minute; history tests count minutes from it.
var t0 = time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)

func minute(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

func bucket(be, srv string, m, req int64) store.HistoryBucket {
	return store.HistoryBucket{Backend: be, Server: srv, Minute: minute(int(m)), Requests: req,
		NewSessions: req / 10, Pinned: req / 2, Redispatched: req / 100, Errors: req / 50, BytesIn: req * 300, BytesOut: req * 4000}
}

func TestHistoryRoundTrip(t *testing.T) { testHistoryRoundTrip(t, storetest.Open(t)) }

func testHistoryRoundTrip(t *testing.T, s *store.Store) {
	ctx := context.Background()
	in := []store.HistoryBucket{
		bucket("app", "web1", 0, 100), bucket("app", "web2", 0, 50),
		bucket("app", "web1", 1, 120),
		{Backend: "app", Server: "web2", Minute: minute(1)}, // idle: not stored
		bucket("app", "web2", 2, 7),
		bucket("api", "web1", 1, 9), // same server name, other backend
	}
	// A bucket's Minute may be any instant of its minute.
	in[2].Minute = in[2].Minute.Add(59 * time.Second)
	if err := s.AppendHistory(ctx, in, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    store.HistoryQuery
		want []store.HistoryBucket
	}{
		{"backend, every minute", store.HistoryQuery{Backend: "app", From: minute(0), To: minute(3)},
			[]store.HistoryBucket{bucket("app", "web1", 0, 100), bucket("app", "web2", 0, 50), bucket("app", "web1", 1, 120), bucket("app", "web2", 2, 7)}},
		{"one server", store.HistoryQuery{Backend: "app", Server: "web2", From: minute(0), To: minute(3)},
			[]store.HistoryBucket{bucket("app", "web2", 0, 50), bucket("app", "web2", 2, 7)}},
		{"To excludes its minute", store.HistoryQuery{Backend: "app", From: minute(0), To: minute(1)},
			[]store.HistoryBucket{bucket("app", "web1", 0, 100), bucket("app", "web2", 0, 50)}},
		{"From within a minute starts at the next", store.HistoryQuery{Backend: "app", From: minute(0).Add(time.Second), To: minute(2)},
			[]store.HistoryBucket{bucket("app", "web1", 1, 120)}},
		{"other backend", store.HistoryQuery{Backend: "api", From: minute(0), To: minute(60)},
			[]store.HistoryBucket{bucket("api", "web1", 1, 9)}},
		{"unknown server", store.HistoryQuery{Backend: "app", Server: "nope", From: minute(0), To: minute(60)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.History(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("History(%+v)\n got %+v\nwant %+v", tt.q, got, tt.want)
			}
		})
	}
}

// TestHistoryMinuteAddsUp checks that a minute written twice (before and
// after a restart) holds the sum.
func TestHistoryMinuteAddsUp(t *testing.T) { testHistoryMinuteAddsUp(t, storetest.Open(t)) }

func testHistoryMinuteAddsUp(t *testing.T, s *store.Store) {
	ctx := context.Background()
	for _, req := range []int64{40, 60} {
		if err := s.AppendHistory(ctx, []store.HistoryBucket{bucket("app", "web1", 5, req)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.History(ctx, store.HistoryQuery{Backend: "app", From: minute(0), To: minute(10)})
	if err != nil {
		t.Fatal(err)
	}
	want := bucket("app", "web1", 5, 40)
	b60 := bucket("app", "web1", 5, 60)
	want.Requests += b60.Requests
	want.NewSessions += b60.NewSessions
	want.Pinned += b60.Pinned
	want.Redispatched += b60.Redispatched
	want.Errors += b60.Errors
	want.BytesIn += b60.BytesIn
	want.BytesOut += b60.BytesOut
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v, want one bucket %+v", got, want)
	}
}

func TestHistoryEvents(t *testing.T) { testHistoryEvents(t, storetest.Open(t)) }

func testHistoryEvents(t *testing.T, s *store.Store) {
	ctx := context.Background()
	evs := []store.HistoryEvent{
		{Time: minute(1).Add(10 * time.Second), Backend: "app", Server: "web1", Kind: store.HistoryHealth, Message: "Server app/web1 is DOWN"},
		{Time: minute(1).Add(20 * time.Second), Backend: "app", Server: "web2", Kind: store.HistoryAdmin, Message: "state maint by alice (console)"},
		{Time: minute(2), Backend: "app", Kind: store.HistoryAdmin, Message: "dynamic cookies disabled"},
		{Time: minute(2), Backend: "api", Server: "web1", Kind: store.HistoryAdmin, Message: "weight 0"},
	}
	if err := s.AppendHistory(ctx, nil, evs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    store.HistoryQuery
		want []store.HistoryEvent
	}{
		{"backend", store.HistoryQuery{Backend: "app", From: minute(0), To: minute(10)}, evs[:3]},
		{"server with backend-wide", store.HistoryQuery{Backend: "app", Server: "web1", From: minute(0), To: minute(10)}, []store.HistoryEvent{evs[0], evs[2]}},
		{"range", store.HistoryQuery{Backend: "app", From: minute(2), To: minute(10)}, evs[2:3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.HistoryEvents(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("HistoryEvents(%+v)\n got %+v\nwant %+v", tt.q, got, tt.want)
			}
		})
	}
}

// TestHistoryAppendIsOneTransaction checks that a refused event leaves
// none of the buckets written with it.
func TestHistoryAppendIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t)
	err := s.AppendHistory(ctx, []store.HistoryBucket{bucket("app", "web1", 0, 10)},
		[]store.HistoryEvent{{Time: minute(0), Backend: "app", Kind: "gossip"}})
	if err == nil {
		t.Fatal("an event of an unknown kind was accepted")
	}
	got, err := s.History(ctx, store.HistoryQuery{Backend: "app", From: minute(0), To: minute(1)})
	if err != nil || len(got) != 0 {
		t.Fatalf("after a failed append: %+v, %v; want nothing", got, err)
	}
}

func TestHistoryBadQuery(t *testing.T) {
	s := storetest.Open(t)
	for _, q := range []store.HistoryQuery{
		{From: minute(0), To: minute(1)},
		{Backend: "app", From: minute(1), To: minute(1)},
		{Backend: "app", From: minute(2), To: minute(1)},
	} {
		if _, err := s.History(context.Background(), q); !errors.Is(err, store.ErrBadHistoryQuery) {
			t.Errorf("History(%+v) = %v, want ErrBadHistoryQuery", q, err)
		}
		if _, err := s.HistoryEvents(context.Background(), q); !errors.Is(err, store.ErrBadHistoryQuery) {
			t.Errorf("HistoryEvents(%+v) = %v, want ErrBadHistoryQuery", q, err)
		}
	}
}

func TestHistoryPrune(t *testing.T) { testHistoryPrune(t, storetest.Open(t)) }

func testHistoryPrune(t *testing.T, s *store.Store) {
	ctx := context.Background()
	var in []store.HistoryBucket
	for m := range int64(10) {
		in = append(in, bucket("app", "web1", m, 10+m))
	}
	in = append(in, bucket("app", "gone", 1, 5)) // a server removed long ago
	evs := []store.HistoryEvent{
		{Time: minute(2).Add(30 * time.Second), Backend: "app", Server: "web1", Kind: store.HistoryHealth, Message: "old"},
		{Time: minute(7), Backend: "app", Server: "web1", Kind: store.HistoryHealth, Message: "new"},
	}
	if err := s.AppendHistory(ctx, in, evs); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneHistory(ctx, minute(5).Add(-time.Second)) // minute 4 started before the cut
	if err != nil {
		t.Fatal(err)
	}
	if n != 5+1+5+1 {
		t.Errorf("pruned %d rows, want 12 (web1 minutes 0-4, gone, the backend's totals of minutes 0-4, one event)", n)
	}
	got, err := s.History(ctx, store.HistoryQuery{Backend: "app", From: minute(0), To: minute(10)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || !got[0].Minute.Equal(minute(5)) {
		t.Errorf("after prune: %+v, want web1 minutes 5-9", got)
	}
	gotEv, err := s.HistoryEvents(ctx, store.HistoryQuery{Backend: "app", From: minute(0), To: minute(10)})
	if err != nil || len(gotEv) != 1 || gotEv[0].Message != "new" {
		t.Errorf("events after prune: %+v, %v; want the newer one", gotEv, err)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	// A pruned server's name can come back.
	if err := s.AppendHistory(ctx, []store.HistoryBucket{bucket("app", "gone", 8, 3)}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestHistorySurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tether.db")
	s, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := []store.HistoryBucket{bucket("app", "web1", 0, 100), bucket("app", "web1", 1, 3)}
	ev := []store.HistoryEvent{{Time: minute(1), Backend: "app", Server: "web1", Kind: store.HistoryAdmin, Message: "state drain"}}
	if err := s.AppendHistory(ctx, in, ev); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := store.HistoryQuery{Backend: "app", Server: "web1", From: minute(0), To: minute(2)}
	got, err := s.History(ctx, q)
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Fatalf("after reopen: %+v, %v; want %+v", got, err, in)
	}
	gotEv, err := s.HistoryEvents(ctx, q)
	if err != nil || !reflect.DeepEqual(gotEv, ev) {
		t.Fatalf("events after reopen: %+v, %v; want %+v", gotEv, err, ev)
	}
}

// BenchmarkAppendHistoryMinute records one minute of 1000 busy servers:
// one AppendHistory call, one transaction.
func BenchmarkAppendHistoryMinute(b *testing.B) {
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const servers = 1000
	buckets := make([]store.HistoryBucket, servers)
	for i := range buckets {
		buckets[i] = bucket("big", fmt.Sprintf("srv%04d", i), 0, int64(100+i))
	}
	b.ReportAllocs()
	m := 0
	for b.Loop() {
		for i := range buckets {
			buckets[i].Minute = minute(m)
		}
		if err := s.AppendHistory(ctx, buckets, nil); err != nil {
			b.Fatal(err)
		}
		m++
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/servers, "µs/server")
}

// BenchmarkReadHistoryDay reads 24 hours of one server among 100 that
// recorded every minute.
func BenchmarkReadHistoryDay(b *testing.B) {
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	buckets := make([]store.HistoryBucket, 100)
	for m := range 24 * 60 {
		for i := range buckets {
			buckets[i] = bucket("big", fmt.Sprintf("srv%04d", i), int64(m), int64(100+i))
		}
		if err := s.AppendHistory(ctx, buckets, nil); err != nil {
			b.Fatal(err)
		}
	}
	q := store.HistoryQuery{Backend: "big", Server: "srv0042", From: minute(0), To: minute(24 * 60)}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.History(ctx, q)
		if err != nil || len(got) != 24*60 {
			b.Fatalf("%d buckets, %v", len(got), err)
		}
	}
}

func TestHistorySums(t *testing.T) { testHistorySums(t, storetest.Open(t)) }

func testHistorySums(t *testing.T, s *store.Store) {
	ctx := context.Background()
	in := []store.HistoryBucket{
		bucket("app", "web1", 0, 100), bucket("app", "web2", 0, 50),
		bucket("app", "web1", 4, 10), bucket("app", "web2", 5, 20),
		bucket("app", "web1", 11, 1),
		bucket("api", "web1", 0, 9999),
	}
	if err := s.AppendHistory(ctx, in, nil); err != nil {
		t.Fatal(err)
	}
	sum := func(m int, bs ...store.HistoryBucket) store.HistoryBucket {
		out := store.HistoryBucket{Backend: "app", Minute: minute(m)}
		for _, b := range bs {
			out.Requests += b.Requests
			out.NewSessions += b.NewSessions
			out.Pinned += b.Pinned
			out.Redispatched += b.Redispatched
			out.Errors += b.Errors
			out.BytesIn += b.BytesIn
			out.BytesOut += b.BytesOut
		}
		return out
	}
	tests := []struct {
		name string
		q    store.HistoryQuery
		step time.Duration
		want []store.HistoryBucket
	}{
		{"backend by minute", store.HistoryQuery{Backend: "app", From: minute(0), To: minute(12)}, time.Minute,
			[]store.HistoryBucket{sum(0, in[0], in[1]), sum(4, in[2]), sum(5, in[3]), sum(11, in[4])}},
		{"backend by 5 minutes", store.HistoryQuery{Backend: "app", From: minute(0), To: minute(12)}, 5 * time.Minute,
			[]store.HistoryBucket{sum(0, in[0], in[1], in[2]), sum(5, in[3]), sum(10, in[4])}},
		{"steps count from From", store.HistoryQuery{Backend: "app", From: minute(1), To: minute(12)}, 5 * time.Minute,
			[]store.HistoryBucket{sum(1, in[2], in[3]), sum(11, in[4])}},
		{"one server", store.HistoryQuery{Backend: "app", Server: "web2", From: minute(0), To: minute(12)}, 10 * time.Minute,
			[]store.HistoryBucket{sum(0, in[1], in[3])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.HistorySums(ctx, tt.q, tt.step)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("HistorySums(%+v, %s)\n got %+v\nwant %+v", tt.q, tt.step, got, tt.want)
			}
		})
	}
	if _, err := s.HistorySums(ctx, store.HistoryQuery{Backend: "app", From: minute(0), To: minute(1)}, 90*time.Second); err == nil {
		t.Error("a step of 90s was accepted")
	}
}

// BenchmarkSumHistoryDay sums 24 hours of a backend of 100 servers that
// recorded every minute into 96 steps of 15 minutes (the 24 h chart): it
// reads the backend's total, one row per minute.
func BenchmarkSumHistoryDay(b *testing.B) {
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	buckets := make([]store.HistoryBucket, 100)
	for m := range 24 * 60 {
		for i := range buckets {
			buckets[i] = bucket("big", fmt.Sprintf("srv%04d", i), int64(m), int64(100+i))
		}
		if err := s.AppendHistory(ctx, buckets, nil); err != nil {
			b.Fatal(err)
		}
	}
	q := store.HistoryQuery{Backend: "big", From: minute(0), To: minute(24 * 60)}
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.HistorySums(ctx, q, 15*time.Minute)
		if err != nil || len(got) != 96 {
			b.Fatalf("%d sums, %v", len(got), err)
		}
	}
}
