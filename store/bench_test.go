package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"tether/balancer"
	"tether/store"
)

// bigState returns a state with one backend of n servers plus a small one.
func bigState(n int) balancer.State {
	st := richState()
	b := balancer.Backend{Name: "big", Balance: balancer.RoundRobin,
		Cookie:           &balancer.CookieConfig{Name: "SRV", Mode: balancer.CookieInsert, Dynamic: true, Indirect: true, NoCache: true},
		DynamicCookieKey: "bench-key"}
	for i := range n {
		name := fmt.Sprintf("srv%04d", i)
		b.Servers = append(b.Servers, balancer.Server{Name: name, Address: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1),
			Port: 8080, PortSet: true, Check: true, Inter: 2 * time.Second, Rise: 2, Fall: 3, Weight: 1})
		st.Servers["big/"+name] = balancer.ServerRuntime{Weight: 1, CheckEnabled: true}
	}
	st.Config.Backends = append(st.Config.Backends, b)
	return st
}

func openBench(b *testing.B, st balancer.State) *store.Store {
	b.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.IntegrityCheck(ctx); err != nil {
			b.Error(err)
		}
		s.Close()
	})
	if err := s.ReplaceState(ctx, st, store.AuditEntry{Channel: "import"}); err != nil {
		b.Fatal(err)
	}
	return s
}

// reportLatency reports the median and 99th percentile of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCommitChange measures one server state change (ready ↔ drain)
// on a backend of 1000 servers, through Committer, with Before and After
// as independent copies (the worst case: nothing shared to skip).
func BenchmarkCommitChange(b *testing.B) {
	ready := bigState(1000)
	s := openBench(b, ready)
	drain := clone(ready)
	r := drain.Servers["big/srv0500"]
	r.Admin = balancer.Drain
	drain.Servers["big/srv0500"] = r
	states := [2]balancer.State{ready, drain}
	changes := [2]balancer.Change{
		balancer.SetAdminState{ServerRef: balancer.ServerRef{Backend: "big", Server: "srv0500"}, State: balancer.Drain},
		balancer.SetAdminState{ServerRef: balancer.ServerRef{Backend: "big", Server: "srv0500"}, State: balancer.Ready},
	}
	commit := s.Committer()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		err := commit(balancer.Commit{
			Change: changes[i%2],
			Origin: balancer.Origin{Channel: "socket", Command: "set server big/srv0500 state drain"},
			Time:   start,
			Before: states[i%2],
			After:  states[(i+1)%2],
		})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkCommitAddDelServer measures adding a server at the end of a
// backend of 1000 servers and deleting its first server (which renumbers
// the others), alternately.
func BenchmarkCommitAddDelServer(b *testing.B) {
	st := bigState(1000)
	s := openBench(b, st)
	commit := s.Committer()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		after := clone(st)
		be := &after.Config.Backends[len(after.Config.Backends)-1]
		var change balancer.Change
		if i%2 == 0 {
			name := fmt.Sprintf("new%06d", i)
			be.Servers = append(be.Servers, balancer.Server{Name: name, Address: "10.9.9.9", Port: 80, PortSet: true, Weight: 1})
			after.Servers["big/"+name] = balancer.ServerRuntime{Admin: balancer.Maint, Weight: 1}
			change = balancer.AddServer{Backend: "big", Server: be.Servers[len(be.Servers)-1]}
		} else {
			name := be.Servers[0].Name
			be.Servers = be.Servers[1:]
			delete(after.Servers, "big/"+name)
			change = balancer.DelServer{ServerRef: balancer.ServerRef{Backend: "big", Server: name}}
		}
		b.StartTimer()
		start := time.Now()
		err := commit(balancer.Commit{Change: change, Origin: balancer.Origin{Channel: "socket"}, Time: start, Before: st, After: after})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		st = after
	}
	b.StopTimer()
	reportLatency(b, lat)
}
