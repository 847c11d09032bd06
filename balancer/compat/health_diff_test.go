package compat

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/runtimeapi"
)

// TestDisabledHealthMatchesHAProxy disables the health checks of servers
// whose checks have run, one failing and one passing, then forces their
// health, and compares with HAProxy 2.6 what show servers state and show
// stat report and where requests go. HAProxy keeps the last check status,
// keeps a DOWN server DOWN (and sends it nothing) and lets "set server
// health" move the health counter.
func TestDisabledHealthMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 2)
	dead := deadAddr(t)
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
			"backend app\n    balance roundrobin\n    timeout connect 200ms\n" +
			fmt.Sprintf("    server web1 %s check inter 100ms\n    server web2 %s check inter 100ms\n", o.addrs[0], o.addrs[1]) +
			fmt.Sprintf("    server dead %s check inter 100ms fall 1 rise 1\n", dead)
	})
	d := runtimeapi.NewDispatcher(p.tether, runtimeapi.DispatcherOptions{})
	tether := func(cmd string) string {
		return d.Execute(context.Background(), cmd, balancer.LevelAdmin, balancer.Origin{Channel: "test"})
	}
	settled := func(cli func(string) string) bool {
		stat := cli("show stat")
		return serverStatus(stat, "dead") == "DOWN" && serverStatus(stat, "web1") == "UP" && serverStatus(stat, "web2") == "UP" &&
			statColumn(stat, "web1", "check_status") == "L4OK"
	}
	deadline := time.Now().Add(10 * time.Second)
	for !settled(p.haproxyCmd) || !settled(tether) {
		if time.Now().After(deadline) {
			t.Fatalf("checks did not settle:\nhaproxy %s\ntether  %s", p.haproxyCmd("show stat"), tether("show stat"))
		}
		time.Sleep(20 * time.Millisecond)
	}

	steps := []struct {
		command string
		servers []string // compared in show servers state and show stat
	}{
		{"disable health app/dead", []string{"dead"}},
		{"disable health app/web1", []string{"web1"}},
		{"set server app/web1 health down", []string{"web1", "dead"}},
		{"set server app/web1 health stopping", []string{"web1"}},
		{"set server app/web1 health up", []string{"web1"}},
		{"set server app/dead health up", []string{"dead"}},
		{"set server app/dead health down", []string{"dead"}},
	}
	for _, s := range steps {
		p.haproxyCmd(s.command)
		tether(s.command)
		if strings.HasPrefix(s.command, "disable health") {
			// A check already under way when HAProxy disables checks
			// still reports, and a success then marks the server UP
			// even after "set server health down". Let it finish first.
			time.Sleep(300 * time.Millisecond)
		}
		for _, sv := range s.servers {
			h, g := healthView(p.haproxyCmd, sv), healthView(tether, sv)
			if h != g {
				t.Errorf("after %q, %s:\nhaproxy %s\ntether  %s", s.command, sv, h, g)
			}
		}
		if h, g := spread(t, p.haproxyURL, 6), spread(t, p.tetherURL, 6); h != g {
			t.Errorf("after %q, 6 requests:\nhaproxy %s\ntether  %s", s.command, h, g)
		}
	}
}

// healthView is what show servers state and show stat say about a
// server's health: op state, admin state, check status, result, health
// and check state, then the status and check columns of show stat.
func healthView(cli func(string) string, server string) string {
	var state string
	for _, l := range strings.Split(cli("show servers state app"), "\n") {
		f := strings.Fields(l)
		if len(f) == 25 && f[3] == server {
			state = strings.Join([]string{f[5], f[6], f[10], f[11], f[12], f[13]}, " ")
		}
	}
	stat := cli("show stat")
	cols := []string{"status", "check_status", "check_code", "chkfail", "check_rise", "check_fall", "check_health"}
	vals := make([]string, len(cols))
	for i, c := range cols {
		vals[i] = statColumn(stat, server, c)
	}
	return "state=" + state + " stat=" + strings.Join(vals, ",")
}

// statColumn returns one column of a server's show stat line.
func statColumn(stat, server, column string) string {
	lines := strings.Split(stat, "\n")
	cols := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	for i, c := range cols {
		if c != column {
			continue
		}
		for _, l := range lines[1:] {
			f := strings.Split(l, ",")
			if len(f) > i && f[1] == server {
				return f[i]
			}
		}
	}
	return ""
}

// spread sends n requests and returns the sorted set of answers
// (status and origin) with counts.
func spread(t *testing.T, base string, n int) string {
	t.Helper()
	count := map[string]int{}
	for range n {
		o := fetch(t, base, "GET", "/", "")
		count[fmt.Sprintf("%d %s", o.Status, o.Origin)]++
	}
	var out []string
	for k, v := range count {
		out = append(out, fmt.Sprintf("%s x%d", k, v))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
