package balancer

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// rrPicker is what fwrr and staticMap have in common.
type rrPicker interface {
	update([]rrMember)
	next(avoid *serverLive) *serverLive
}

// rrSim is a backend as the round-robin state sees it, driven by the same
// Runtime API commands the differential test sends to HAProxy.
type rrSim struct {
	t       *testing.T
	p       rrPicker
	names   []string
	members []rrMember
	admin   []string
}

// newRRSim builds a backend of web1..webN; a negative weight is a backup.
func newRRSim(t *testing.T, p rrPicker, weights []int) *rrSim {
	s := &rrSim{t: t, p: p}
	for i, w := range weights {
		backup := w < 0
		if backup {
			w = -w
		}
		s.names = append(s.names, fmt.Sprintf("web%d", i+1))
		s.members = append(s.members, rrMember{key: newServerLive(), weight: w, usable: true, backup: backup})
		s.admin = append(s.admin, "ready")
	}
	p.update(s.members)
	return s
}

func (s *rrSim) index(ref string) int {
	name := strings.TrimPrefix(ref, "b/")
	for i, n := range s.names {
		if n == name {
			return i
		}
	}
	s.t.Fatalf("no server %q", ref)
	return -1
}

func (s *rrSim) name(k *serverLive) string {
	if k == nil {
		return "503"
	}
	for i, m := range s.members {
		if m.key == k {
			return s.names[i]
		}
	}
	s.t.Fatalf("picked a server that is not in the backend")
	return ""
}

// command applies one of: set server b/S state ready|drain|maint,
// set server b/S weight W, add server b/S ADDR [weight W], del server b/S.
func (s *rrSim) command(cmd string) {
	f := strings.Fields(cmd)
	switch {
	case len(f) == 5 && f[0] == "set" && f[3] == "state":
		s.admin[s.index(f[2])] = f[4]
	case len(f) == 5 && f[0] == "set" && f[3] == "weight":
		w, err := strconv.Atoi(f[4])
		if err != nil {
			s.t.Fatalf("bad weight in %q", cmd)
		}
		s.members[s.index(f[2])].weight = w
	case len(f) >= 4 && f[0] == "add":
		w := 1
		if len(f) == 6 && f[4] == "weight" {
			w, _ = strconv.Atoi(f[5])
		}
		s.names = append(s.names, strings.TrimPrefix(f[2], "b/"))
		s.members = append(s.members, rrMember{key: newServerLive(), weight: w})
		s.admin = append(s.admin, "maint")
	case len(f) == 3 && f[0] == "del":
		i := s.index(f[2])
		s.names = append(s.names[:i:i], s.names[i+1:]...)
		s.members = append(s.members[:i:i], s.members[i+1:]...)
		s.admin = append(s.admin[:i:i], s.admin[i+1:]...)
	default:
		s.t.Fatalf("unsupported command %q", cmd)
	}
	for i := range s.members {
		s.members[i].usable = s.admin[i] == "ready"
	}
	s.p.update(s.members)
}

// run plays a script like the differential test's and returns the same
// rendering: server names, and each command between bars.
func (s *rrSim) run(steps []string) string {
	var out []string
	for _, st := range steps {
		if n, err := strconv.Atoi(st); err == nil {
			for range n {
				out = append(out, s.name(s.p.next(nil)))
			}
			continue
		}
		s.command(st)
		out = append(out, "| "+st+" |")
	}
	return strings.Join(out, " ")
}

// TestRoundRobinMatchesRecordedHAProxy replays the scenarios of
// balancer/compat's TestRoundRobinOrderMatchesHAProxy; want is what
// HAProxy 2.6.12 answered (logged by that test).
func TestRoundRobinMatchesRecordedHAProxy(t *testing.T) {
	tests := []struct {
		name    string
		static  bool
		weights []int
		steps   []string
		want    string
	}{
		{"equal weights", false, []int{1, 1, 1}, []string{"9"},
			"web1 web2 web3 web1 web2 web3 web1 web2 web3"},
		{"weights 3/1/1", false, []int{3, 1, 1}, []string{"15"},
			"web1 web1 web2 web1 web3 web1 web1 web2 web1 web3 web1 web1 web2 web1 web3"},
		{"weights 1/2/3/4", false, []int{1, 2, 3, 4}, []string{"25"},
			"web4 web3 web4 web2 web3 web4 web1 web4 web3 web2 web4 web3 web4 web2 web3 web4 web1 web4 web3 web2 web4 web3 web4 web2 web3"},
		{"drain maint ready weight", false, []int{1, 1, 1}, []string{
			"4", "set server b/web2 state drain", "4", "set server b/web2 state ready", "6",
			"set server b/web2 state maint", "3", "set server b/web2 state ready", "6",
			"set server b/web1 weight 3", "10", "set server b/web1 weight 0", "5",
			"set server b/web1 weight 1", "7",
		}, "web1 web2 web3 web1 | set server b/web2 state drain | web3 web1 web3 web1 | set server b/web2 state ready | " +
			"web3 web1 web2 web3 web1 web2 | set server b/web2 state maint | web3 web1 web3 | set server b/web2 state ready | " +
			"web1 web2 web3 web1 web2 web3 | set server b/web1 weight 3 | web1 web2 web3 web1 web1 web1 web2 web3 web1 web1 | " +
			"set server b/web1 weight 0 | web2 web3 web2 web3 web2 | set server b/web1 weight 1 | web3 web2 web1 web3 web2 web1 web3"},
		{"weighted changes mid-round", false, []int{1, 2, 3, 4}, []string{
			"3", "set server b/web4 weight 1", "5", "set server b/web1 weight 10", "7",
			"set server b/web3 state maint", "4", "set server b/web2 weight 7", "6",
			"set server b/web3 state ready", "9", "set server b/web4 state drain", "5",
			"set server b/web4 state ready", "set server b/web1 weight 2", "12",
		}, "web4 web3 web4 | set server b/web4 weight 1 | web2 web3 web4 web2 web3 | set server b/web1 weight 10 | " +
			"web1 web1 web3 web2 web1 web1 web4 | set server b/web3 state maint | web1 web1 web1 web1 | " +
			"set server b/web2 weight 7 | web1 web2 web1 web1 web2 web1 | set server b/web3 state ready | " +
			"web2 web1 web4 web1 web2 web1 web3 web2 web1 | set server b/web4 state drain | web1 web2 web1 web2 web3 | " +
			"set server b/web4 state ready | | set server b/web1 weight 2 | web2 web2 web2 web3 web1 web2 web2 web3 web2 web1 web2 web3"},
		{"add and delete servers", false, []int{1, 1, 1}, []string{
			"2", "add server b/web4 127.0.0.1:{port4} weight 2", "3", "set server b/web4 state ready", "8",
			"add server b/web5 127.0.0.1:{port5}", "set server b/web5 state ready", "7",
			"set server b/web2 state maint", "del server b/web2", "6",
			"set server b/web4 state maint", "4", "set server b/web4 state ready", "6",
		}, "web1 web2 | add server b/web4 127.0.0.1:{port4} weight 2 | web3 web1 web2 | set server b/web4 state ready | " +
			"web3 web1 web4 web2 web4 web3 web1 web4 | add server b/web5 127.0.0.1:{port5} | | set server b/web5 state ready | " +
			"web2 web4 web3 web1 web4 web5 web2 | set server b/web2 state maint | | del server b/web2 | " +
			"web4 web3 web1 web4 web5 web4 | set server b/web4 state maint | web3 web1 web5 web3 | set server b/web4 state ready | " +
			"web1 web4 web5 web3 web4 web1"},
		{"all down then back", false, []int{2, 1}, []string{
			"2", "set server b/web1 state maint", "set server b/web2 state maint", "2",
			"set server b/web2 state ready", "3", "set server b/web1 state ready", "6",
		}, "web1 web1 | set server b/web1 state maint | | set server b/web2 state maint | 503 503 | " +
			"set server b/web2 state ready | web2 web2 web2 | set server b/web1 state ready | web2 web1 web1 web2 web1 web1"},
		{"backup servers", false, []int{1, 1, -2, -1}, []string{
			"3", "set server b/web1 state maint", "set server b/web2 state maint", "3",
			"set server b/web3 state maint", "3", "set server b/web3 state ready", "2",
			"set server b/web2 state ready", "3",
		}, "web1 web2 web1 | set server b/web1 state maint | | set server b/web2 state maint | web3 web3 web3 | " +
			"set server b/web3 state maint | web4 web4 web4 | set server b/web3 state ready | web3 web3 | " +
			"set server b/web2 state ready | web2 web2 web2"},
		{"static equal weights", true, []int{1, 1, 1}, []string{
			"4", "set server b/web2 state drain", "4", "set server b/web2 state ready", "6",
			"set server b/web2 state maint", "3", "set server b/web2 state ready", "6",
			"set server b/web1 weight 0", "3", "set server b/web1 weight 1", "5",
		}, "web1 web2 web3 web1 | set server b/web2 state drain | web3 web1 web3 web1 | set server b/web2 state ready | " +
			"web2 web3 web1 web2 web3 web1 | set server b/web2 state maint | web3 web1 web3 | set server b/web2 state ready | " +
			"web3 web1 web2 web3 web1 web2 | set server b/web1 weight 0 | web2 web3 web2 | set server b/web1 weight 1 | " +
			"web2 web3 web1 web2 web3"},
		{"static weights 3/1/1", true, []int{3, 1, 1}, []string{
			"7", "set server b/web1 state maint", "3", "set server b/web1 state ready", "11",
		}, "web1 web1 web2 web1 web3 web1 web1 | set server b/web1 state maint | web2 web3 web2 | set server b/web1 state ready | " +
			"web1 web2 web1 web3 web1 web1 web2 web1 web3 web1 web1"},
		{"static weights 2/4/6", true, []int{2, 4, 6}, []string{
			"8", "set server b/web3 state drain", "5", "set server b/web3 state ready", "9",
			"set server b/web1 weight 0", "4", "set server b/web1 weight 2", "7",
		}, "web1 web3 web2 web3 web2 web3 web1 web3 | set server b/web3 state drain | web2 web1 web2 web2 web1 | " +
			"set server b/web3 state ready | web3 web2 web3 web2 web3 web1 web3 web2 web3 | set server b/web1 weight 0 | " +
			"web3 web2 web3 web2 | set server b/web1 weight 2 | web3 web2 web3 web1 web3 web2 web3"},
		{"static backup servers", true, []int{1, 1, -2, -1}, []string{
			"3", "set server b/web1 state maint", "set server b/web2 state maint", "3",
			"set server b/web3 state maint", "3", "set server b/web3 state ready", "2",
			"set server b/web2 state ready", "3",
		}, "web1 web2 web1 | set server b/web1 state maint | | set server b/web2 state maint | web3 web3 web3 | " +
			"set server b/web3 state maint | web4 web4 web4 | set server b/web3 state ready | web3 web3 | " +
			"set server b/web2 state ready | web2 web2 web2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p rrPicker = newFWRR()
			if tt.static {
				p = newStaticMap()
			}
			got := newRRSim(t, p, tt.weights).run(tt.steps)
			if got != tt.want {
				t.Errorf("order differs from HAProxy 2.6\nhaproxy %s\ngot     %s", tt.want, got)
			}
		})
	}
}

// picks renders n picks, avoiding the named server on the first one.
func (s *rrSim) picks(n int, avoid string) string {
	var out []string
	for i := range n {
		var a *serverLive
		if i == 0 && avoid != "" {
			a = s.members[s.index(avoid)].key
		}
		out = append(out, s.name(s.p.next(a)))
	}
	return strings.Join(out, " ")
}

// TestRoundRobinPicksByHand checks sequences worked out by hand from the
// algorithms: redispatch away from a server, single servers, no server,
// backups only.
func TestRoundRobinPicksByHand(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		avoid   string // avoided on the first pick only
		n       int
		fwrr    string
		static  string
	}{
		// The avoided server is skipped but keeps its place in the round:
		// fwrr positions web1 at 51 and web2 at 52 out of 48 slots, then
		// takes web3 from the init tree (position 50 is a hole).
		{"avoid the first server", []int{1, 1, 1}, "web1", 6,
			"web2 web3 web1 web2 web3 web1", "web2 web3 web1 web2 web3 web1"},
		{"avoid the only server", []int{5}, "web1", 3, "web1 web1 web1", "web1 web1 web1"},
		{"no usable server", []int{0, 0}, "", 2, "503 503", "503 503"},
		// Only the first usable backup takes traffic, even when avoided.
		{"backups only", []int{0, -3, -1}, "web2", 3, "web2 web2 web2", "web2 web2 web2"},
		// static-rr map for 3/1/1, scores (w+tot)/tot with tot 5:
		// web1 web1 web2 web1 web3.
		{"static 3/1/1 map", []int{3, 1, 1}, "", 5, "web1 web1 web2 web1 web3", "web1 web1 web2 web1 web3"},
		// fwrr, weights 32/64 out of 96: web2 from init at 96 goes to 97
		// with a remainder of 32, then 99; web1 comes from init at the hole
		// 98 and goes to 101; web2 99 -> 100 -> 102; web1 at 101.
		// static-rr reduces 2/4 to 1/2, tot 3: scores (s+3)/3 give web1
		// first among equals (1 vs 1), then web2 twice (0 vs 2, 1 vs 2).
		{"2/4", []int{2, 4}, "", 6, "web2 web2 web1 web2 web2 web1", "web1 web2 web2 web1 web2 web2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newRRSim(t, newFWRR(), tt.weights).picks(tt.n, tt.avoid); got != tt.fwrr {
				t.Errorf("roundrobin: got %s, want %s", got, tt.fwrr)
			}
			if got := newRRSim(t, newStaticMap(), tt.weights).picks(tt.n, tt.avoid); got != tt.static {
				t.Errorf("static-rr: got %s, want %s", got, tt.static)
			}
		})
	}
}

// TestRoundRobinUpdateEquivalences checks that the ways the lead code may
// report the same change give the same order: an update without change is
// a no-op, a server that appears usable equals one added in maintenance
// then made ready, and a usable server that disappears equals one put in
// maintenance then deleted.
func TestRoundRobinUpdateEquivalences(t *testing.T) {
	for _, static := range []bool{false, true} {
		mk := func() rrPicker {
			if static {
				return newStaticMap()
			}
			return newFWRR()
		}
		t.Run(fmt.Sprintf("static=%v", static), func(t *testing.T) {
			a, b := newRRSim(t, mk(), []int{3, 1, 2}), newRRSim(t, mk(), []int{3, 1, 2})
			var gotA, gotB []string
			for i := range 40 {
				gotA = append(gotA, a.name(a.p.next(nil)))
				gotB = append(gotB, b.name(b.p.next(nil)))
				b.p.update(b.members)
				if i == 10 {
					a.command("add server b/web4 x weight 2")
					a.command("set server b/web4 state ready")
					b.names = append(b.names, "web4")
					b.admin = append(b.admin, "ready")
					b.members = append(b.members, rrMember{key: newServerLive(), weight: 2, usable: true})
					b.p.update(b.members)
				}
				if i == 25 {
					a.command("set server b/web1 state maint")
					a.command("del server b/web1")
					b.names, b.admin, b.members = b.names[1:], b.admin[1:], b.members[1:]
					b.p.update(b.members)
				}
			}
			if strings.Join(gotA, " ") != strings.Join(gotB, " ") {
				t.Errorf("orders differ\nstep by step %s\nat once      %s", strings.Join(gotA, " "), strings.Join(gotB, " "))
			}
		})
	}
}

// TestRoundRobinConcurrent picks from several goroutines while the
// backend changes back and forth; complete rounds give exact shares.
func TestRoundRobinConcurrent(t *testing.T) {
	for _, static := range []bool{false, true} {
		var p rrPicker = newFWRR()
		if static {
			p = newStaticMap()
		}
		s := newRRSim(t, p, []int{3, 1, 2})
		keys := map[*serverLive]string{}
		for i, m := range s.members {
			keys[m.key] = s.names[i]
		}
		const workers, each = 4, 1500 // 6000 picks: 1000 rounds of 6
		counts := make([]map[string]int, workers)
		var wg sync.WaitGroup
		for w := range workers {
			counts[w] = map[string]int{}
			wg.Go(func() {
				for range each {
					counts[w][keys[p.next(nil)]]++
				}
			})
		}
		wg.Go(func() {
			for range 200 {
				p.update(s.members)
			}
		})
		wg.Wait()
		total := map[string]int{}
		for _, c := range counts {
			for k, v := range c {
				total[k] += v
			}
		}
		want := map[string]int{"web1": 3000, "web2": 1000, "web3": 2000}
		if fmt.Sprint(total) != fmt.Sprint(want) {
			t.Errorf("static=%v: shares %v, want %v", static, total, want)
		}
	}
}

func benchPicker(b *testing.B, p rrPicker, n int) {
	members := make([]rrMember, n)
	for i := range members {
		members[i] = rrMember{key: newServerLive(), weight: 1 + i%7, usable: true}
	}
	p.update(members)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if p.next(nil) == nil {
			b.Fatal("no server")
		}
	}
}

// BenchmarkFWRRNext measures one roundrobin pick (one mutex per pick).
func BenchmarkFWRRNext(b *testing.B) {
	for _, n := range []int{3, 100, 1000} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) { benchPicker(b, newFWRR(), n) })
	}
}

// BenchmarkStaticMapNext measures one static-rr pick.
func BenchmarkStaticMapNext(b *testing.B) {
	for _, n := range []int{3, 100, 1000} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) { benchPicker(b, newStaticMap(), n) })
	}
}

// BenchmarkFWRRNextParallel measures picks from all cores at once, where
// the mutex is contended.
func BenchmarkFWRRNextParallel(b *testing.B) {
	p := newFWRR()
	members := make([]rrMember, 10)
	for i := range members {
		members[i] = rrMember{key: newServerLive(), weight: 1 + i%3, usable: true}
	}
	p.update(members)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.next(nil)
		}
	})
}

// BenchmarkRoundRobinUpdate measures taking one server of a 1000-server
// backend (weights 1..7) out and back: fwrr moves one server, static-rr
// rebuilds its map (sum of weights times servers steps, as HAProxy does).
func BenchmarkRoundRobinUpdate(b *testing.B) {
	for _, static := range []bool{false, true} {
		b.Run(fmt.Sprintf("static=%v", static), func(b *testing.B) {
			var p rrPicker = newFWRR()
			if static {
				p = newStaticMap()
			}
			members := make([]rrMember, 1000)
			for i := range members {
				members[i] = rrMember{key: newServerLive(), weight: 1 + i%7, usable: true}
			}
			p.update(members)
			b.ReportAllocs()
			for b.Loop() {
				members[500].usable = !members[500].usable
				p.update(members)
				p.next(nil)
			}
		})
	}
}
