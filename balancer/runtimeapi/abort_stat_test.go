package runtimeapi

import (
	"testing"
	"time"

	"tether/balancer"
)

// TestAbortColumns shows the client and server abort counters in the
// cli_abrt and srv_abrt columns of BACKEND and server rows.
func TestAbortColumns(t *testing.T) {
	be := &balancer.BackendStatus{ID: 2, Config: balancer.Backend{Name: "b"},
		Stats: balancer.BackendCounters{CliAborts: 3, SrvAborts: 4}}
	sv := &balancer.ServerStatus{ID: 1, Config: balancer.Server{Name: "s1", Weight: 1},
		Stats: balancer.ServerCounters{CliAborts: 1, SrvAborts: 2}}
	be.Servers = []balancer.ServerStatus{*sv}
	now := time.Now()
	for _, tc := range []struct {
		row      *statRow
		cli, srv string
	}{
		{backendRow(be, false, now), "3", "4"},
		{serverRow(be, sv, false, now), "1", "2"},
	} {
		if statFields[49].name != "cli_abrt" || statFields[50].name != "srv_abrt" {
			t.Fatalf("columns 49, 50 are %s, %s", statFields[49].name, statFields[50].name)
		}
		if got := tc.row.values[49]; got != tc.cli {
			t.Errorf("%c row cli_abrt %q, want %q", tc.row.kind, got, tc.cli)
		}
		if got := tc.row.values[50]; got != tc.srv {
			t.Errorf("%c row srv_abrt %q, want %q", tc.row.kind, got, tc.srv)
		}
	}
}
