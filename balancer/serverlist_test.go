package balancer

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestServerListCopiesOnlyWhatChanges(t *testing.T) {
	var a serverList
	for i := range 150 {
		a.Append(&serverRT{id: i})
	}
	b := a.clone()
	b.Set(70, &serverRT{id: -70})
	b.Append(&serverRT{id: 150})
	if a.At(70).id != 70 || a.Len() != 150 {
		t.Fatalf("the original changed: At(70)=%d Len=%d", a.At(70).id, a.Len())
	}
	if b.At(70).id != -70 || b.Len() != 151 || b.At(150).id != 150 {
		t.Fatalf("the copy: At(70)=%d Len=%d", b.At(70).id, b.Len())
	}
	if &a.chunks[0][0] != &b.chunks[0][0] {
		t.Error("an unchanged chunk was copied")
	}
	c := b.clone()
	c.Delete(0)
	if c.Len() != 150 || c.At(0).id != 1 || c.At(69).id != -70 || b.At(0).id != 0 {
		t.Fatalf("delete: Len=%d At(0)=%d At(69)=%d; source At(0)=%d", c.Len(), c.At(0).id, c.At(69).id, b.At(0).id)
	}
	i := 0
	for j, s := range c.All() {
		if j != i || s != c.At(j) {
			t.Fatalf("All yielded %d for position %d", j, i)
		}
		i++
	}
	if i != c.Len() {
		t.Fatalf("All yielded %d servers, want %d", i, c.Len())
	}
}

// TestIncrementalTableMatchesRebuild applies random server changes and
// checks after each that what the table updates for the changed servers
// only (cookies, indexes, usable count, backup) equals a full recomputation.
func TestIncrementalTableMatchesRebuild(t *testing.T) {
	be := Backend{
		Name:             "app",
		Cookie:           &CookieConfig{Name: "SRV", Mode: CookieInsert, Indirect: true, Dynamic: true},
		DynamicCookieKey: "k",
	}
	for i := range 150 {
		be.Servers = append(be.Servers, Server{Name: fmt.Sprintf("s%d", i), Address: fmt.Sprintf("10.1.0.%d", i+1), Port: 80, PortSet: true, Weight: 1, Backup: i%50 == 49})
	}
	bal, err := New(Config{Frontends: []Frontend{{Name: "fe", DefaultBackend: "app"}}, Backends: []Backend{be}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	modes := []AdminMode{Ready, Drain, Maint}
	for step := range 400 {
		ref := ServerRef{"app", fmt.Sprintf("s%d", rng.IntN(150))}
		var c Change
		switch rng.IntN(4) {
		case 0:
			c = SetAdminState{ServerRef: ref, State: modes[rng.IntN(3)]}
		case 1:
			c = SetWeight{ServerRef: ref, Weight: rng.IntN(3)}
		case 2:
			c = SetAddr{ServerRef: ref, Address: fmt.Sprintf("10.2.%d.%d", rng.IntN(3), rng.IntN(200)+1)}
		default:
			c = SetHealth{ServerRef: ref, Health: ForcedHealth(rng.IntN(3))}
		}
		if err := bal.Apply(c, Origin{}); err != nil {
			continue
		}
		got := bal.tab.Load().byName["app"]
		want := *got
		want.servers = got.servers.clone()
		want.byLive, want.changedAll = nil, true
		want.finish()
		if got.usableCount != want.usableCount || got.backup != want.backup {
			t.Fatalf("step %d (%#v): usable %d backup %v, rebuilt %d %v", step, c, got.usableCount, got.backup != nil, want.usableCount, want.backup != nil)
		}
		for i, s := range got.servers.All() {
			if w := want.servers.At(i); w.cookie != s.cookie || w.dial != s.dial {
				t.Fatalf("step %d: server %s cookie %q dial %q, rebuilt %q %q", step, s.cfg.Name, s.cookie, s.dial, w.cookie, w.dial)
			}
			if j, ok := got.byLive[s.live]; !ok || j != i {
				t.Fatalf("step %d: byLive of %s is %d, want %d", step, s.cfg.Name, j, i)
			}
		}
		for cookie, idx := range want.byCookie {
			if fmt.Sprint(got.byCookie[cookie]) != fmt.Sprint(idx) {
				t.Fatalf("step %d: byCookie[%s] = %v, rebuilt %v", step, cookie, got.byCookie[cookie], idx)
			}
		}
		if len(got.byCookie) != len(want.byCookie) {
			t.Fatalf("step %d: %d cookies indexed, rebuilt %d", step, len(got.byCookie), len(want.byCookie))
		}
	}
}
