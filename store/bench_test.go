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

// benchBalancer runs a balancer on bigState(n) over a new store.
func benchBalancer(b *testing.B, n int) *balancer.Balancer {
	st := bigState(n)
	s := openBench(b, st)
	bal, err := balancer.New(st.Config, balancer.Options{Runtime: st.Servers, Committer: s.Committer()})
	if err != nil {
		b.Fatal(err)
	}
	return bal
}

// BenchmarkCommitChange measures one server state change (ready ↔ drain)
// applied through the balancer and committed to the journal, on a backend
// of 10 and of 1000 servers.
func BenchmarkCommitChange(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			bal := benchBalancer(b, n)
			ref := balancer.ServerRef{Backend: "big", Server: fmt.Sprintf("srv%04d", n/2)}
			modes := [2]balancer.AdminMode{balancer.Drain, balancer.Ready}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				err := bal.Apply(balancer.SetAdminState{ServerRef: ref, State: modes[i%2]},
					balancer.Origin{Channel: "socket", Command: "set server big/srv0500 state drain"})
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// BenchmarkCommitAddDelServer measures adding a server to a backend of
// 1000 servers and deleting it again, alternately.
func BenchmarkCommitAddDelServer(b *testing.B) {
	bal := benchBalancer(b, 1000)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("new%06d", i/2)
		var change balancer.Change = balancer.AddServer{Backend: "big", Server: balancer.Server{Name: name, Address: "10.9.9.9", Port: 80, PortSet: true, Weight: 1}}
		if i%2 == 1 {
			change = balancer.DelServer{ServerRef: balancer.ServerRef{Backend: "big", Server: name}}
		}
		start := time.Now()
		err := bal.Apply(change, balancer.Origin{Channel: "socket"})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}
