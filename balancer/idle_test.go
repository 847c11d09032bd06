package balancer

import "testing"

// TestMaintWhenIdleIntent: a request for maintenance when idle is kept by
// drain, ended by ready or maintenance, and restored with the server's
// runtime settings after a restart.
func TestMaintWhenIdleIntent(t *testing.T) {
	b, err := New(Config{Backends: []Backend{{Name: "app", Servers: []Server{{Name: "s1", Address: "127.0.0.1", Port: 80, PortSet: true, Weight: 1}}}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref := ServerRef{Backend: "app", Server: "s1"}
	asked := func() IdleIntent { return b.Snapshot().Backend("app").Server("s1").WhenIdle }
	in := IdleIntent{Asked: true, By: "alice", From: "/backends/app"}
	steps := []struct {
		change Change
		want   IdleIntent
	}{
		{SetMaintWhenIdle{ServerRef: ref, Intent: in}, in},
		{SetAdminState{ServerRef: ref, State: Drain}, in},
		{SetAdminState{ServerRef: ref, State: Ready}, IdleIntent{}},
		{SetMaintWhenIdle{ServerRef: ref, Intent: in}, in},
		{SetAdminState{ServerRef: ref, State: Maint}, IdleIntent{}},
		{SetMaintWhenIdle{ServerRef: ref, Intent: in}, in},
	}
	for _, s := range steps {
		if err := b.Apply(s.change, Origin{}); err != nil {
			t.Fatal(err)
		}
		if got := asked(); got != s.want {
			t.Fatalf("after %s: %+v, want %+v", describeChange(s.change), got, s.want)
		}
	}
	st := b.State()
	b2, err := New(st.Config, Options{Runtime: st.Servers})
	if err != nil {
		t.Fatal(err)
	}
	if got := b2.Snapshot().Backend("app").Server("s1").WhenIdle; got != in {
		t.Errorf("after a restart: %+v, want %+v", got, in)
	}
	if err := b.Apply(SetMaintWhenIdle{ServerRef: ServerRef{Backend: "app", Server: "nope"}, Intent: in}, Origin{}); err == nil {
		t.Error("a request for a server that does not exist was accepted")
	}
}
