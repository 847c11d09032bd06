package main

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"tether/balancer"
	"tether/store"
	"tether/store/storetest"
)

// TestStartupJournalsResolvedAddresses: when init-addr finds other
// addresses than the stored ones, the start journals them as resolutions on
// top of the stored state instead of storing a whole new one.
func TestStartupJournalsResolvedAddresses(t *testing.T) {
	ctx := context.Background()
	cfg := balancer.Config{Backends: []balancer.Backend{{Name: "app", Balance: balancer.RoundRobin, Servers: []balancer.Server{
		{Name: "s1", Address: "app.internal", Port: 80, PortSet: true, Weight: 1, InitAddr: []string{"last", "libc"}},
		{Name: "s2", Address: "127.0.0.1", Port: 81, PortSet: true, Weight: 1},
	}}}}
	stateWith := func(addr string) balancer.State {
		t.Helper()
		b, err := balancer.New(cfg, balancer.Options{Runtime: map[string]balancer.ServerRuntime{
			"app/s1": {Weight: 1, Address: addr}, "app/s2": {Weight: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		return b.State()
	}
	st := storetest.OpenPath(t, filepath.Join(t.TempDir(), "tether.db"))
	stored := stateWith("10.0.0.1")
	if err := st.ReplaceState(ctx, stored, store.AuditEntry{Channel: "import", Command: "import app.cfg"}); err != nil {
		t.Fatal(err)
	}
	running := stateWith("10.0.0.2")
	if _, err := storeRunning(ctx, st, startPlan{state: stored}, running); err != nil {
		t.Fatal(err)
	}
	got, _, err := st.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := store.Normalize(running); !reflect.DeepEqual(got, want) {
		t.Fatalf("stored state %+v, want the running one %+v", got, want)
	}
	rows, err := st.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Channel != "dns" || rows[0].Source != "init-addr" || !strings.Contains(rows[0].Detail, "10.0.0.1 → 10.0.0.2") {
		t.Errorf("journal = %+v, want the import, then one init-addr row with the address change", rows)
	}
}
