package web

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/runtimeapi"
	"tether/store"
)

// refuseWhenIdle runs the commands of "maintenance when idle" at operator
// level, so that the Runtime API refuses them as it would any change it
// cannot make.
type refuseWhenIdle struct{ Dispatcher }

func (r refuseWhenIdle) Run(ctx context.Context, c runtimeapi.Command, level balancer.Level, o balancer.Origin) runtimeapi.Result {
	if strings.HasSuffix(o.Source, "(when idle)") {
		level = balancer.LevelOperator
	}
	return r.Dispatcher.Run(ctx, c, level, o)
}

// TestDrainWatchNeverEndsSilently checks that "maintenance when idle"
// survives a refused delete, says so when a ready state cancels it, and
// when its own command is refused reports it three ways: a notice for the
// pages, the audit log and the log.
func TestDrainWatchNeverEndsSilently(t *testing.T) {
	e := newEnv(t, Options{}, func(d *Deps) { d.Runtime = refuseWhenIdle{d.Runtime} })
	c := e.login("alice")
	watch := func(sv string) {
		t.Helper()
		res, body := e.post(c, "/backends/servers/servers/"+sv+"/drain", nil, "Accept", "application/json")
		if res.StatusCode != 200 {
			t.Fatalf("watch %s: status %d %s", sv, res.StatusCode, body)
		}
		if !e.server(sv).WhenIdle.Asked {
			t.Fatalf("%s not watched", sv)
		}
	}

	watch("s1")
	res, body := e.post(c, "/backends/servers/servers/s1/delete", nil, "Accept", "application/json")
	if res.StatusCode != 422 || !strings.Contains(body, "Only servers in maintenance mode can be deleted.") {
		t.Fatalf("delete a draining server: status %d %s", res.StatusCode, body)
	}
	if !e.server("s1").WhenIdle.Asked {
		t.Fatalf("a refused delete cancelled maintenance when idle")
	}

	res, body = e.post(c, "/backends/servers/servers/s1/state", url.Values{"state": {"ready"}}, "Accept", "application/json")
	if res.StatusCode != 200 || !strings.Contains(body, "Maintenance when idle (asked by alice) is cancelled") {
		t.Fatalf("set ready: status %d %s, want the cancellation said", res.StatusCode, body)
	}
	if e.server("s1").WhenIdle.Asked {
		t.Fatalf("s1 still watched after set ready")
	}

	watch("s2")
	now := time.Now()
	var notices []wsEvent
	for i := 0; i < 3 && len(notices) == 0; i++ {
		notices = e.srv.afterSample(e.bal.Snapshot(), now.Add(time.Duration(i)*(idleFor+time.Second)))
	}
	if len(notices) != 1 || notices[0].Kind != "warning" || notices[0].Command != "set server servers/s2 state maint" ||
		!strings.Contains(notices[0].Message, "Permission denied") || !strings.Contains(notices[0].Message, "asked by alice") {
		t.Fatalf("notices %+v, want one warning with the command and HAProxy's reply", notices)
	}
	if e.server("s2").WhenIdle.Asked {
		t.Errorf("s2 still watched after its command failed")
	}
	if adminMode(e.server("s2")) != "drain" {
		t.Errorf("s2 is %s, want drain", adminMode(e.server("s2")))
	}
	entries, err := e.st.ListAudit(context.Background(), store.AuditFilter{Actor: "alice"})
	if err != nil {
		t.Fatalf("list audit: %v", err)
	}
	found := false
	for _, a := range entries {
		if a.Command == "set server servers/s2 state maint" && a.Result == "Permission denied" && strings.HasSuffix(a.Source, "(when idle)") {
			found = true
		}
	}
	if !found {
		t.Errorf("the refused command is not in the audit log: %+v", entries)
	}
}

// TestDrainWatchFailureReachesPages runs the console on a clock a hundred
// times faster than the wall, so a watched server is idle long enough within
// a second: the refusal of its maintenance command reaches an open page as a
// warning naming the command.
func TestDrainWatchFailureReachesPages(t *testing.T) {
	start := time.Now()
	fast := func() time.Time { return start.Add(time.Since(start) * 100) }
	e := newEnv(t, Options{Now: fast}, func(d *Deps) { d.Runtime = refuseWhenIdle{d.Runtime} })
	c := e.login("alice")
	conn, _, err := e.dialWS(t, c, e.console.URL)
	if err != nil {
		t.Fatalf("open the websocket: %v", err)
	}
	readMsg(t, conn)
	if res, body := e.post(c, "/backends/servers/servers/s2/drain", nil, "Accept", "application/json"); res.StatusCode != 200 {
		t.Fatalf("watch s2: status %d %s", res.StatusCode, body)
	}
	readUntil(t, conn, "the warning", func(m wsMessage) bool {
		for _, ev := range m.Events {
			if ev.Kind == "warning" && ev.Command == "set server servers/s2 state maint" && strings.Contains(ev.Message, "Permission denied") {
				return true
			}
		}
		return false
	})
}
