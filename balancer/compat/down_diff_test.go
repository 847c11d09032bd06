package compat

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCookieForDownServerMatchesHAProxy sends a cookie that names a server
// whose health check failed, under HAProxy's three rules: redispatch by
// default, option persist (503 once retries are spent), and option persist
// with option redispatch.
func TestCookieForDownServerMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 2)
	dead := deadAddr(t)
	for _, options := range []string{"", "    option persist\n", "    option persist\n    option redispatch\n"} {
		name := strings.TrimSpace(strings.ReplaceAll(options, "    option ", " "))
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			p := startPair(t, func(bind, socket string) string {
				return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
					"backend app\n    cookie SRV insert indirect nocache\n    retries 1\n    timeout connect 200ms\n" + options +
					fmt.Sprintf("    server web1 %s cookie w1\n    server web2 %s cookie w2\n", o.addrs[0], o.addrs[1]) +
					fmt.Sprintf("    server dead %s cookie dd check inter 100ms fall 1 rise 1\n", dead)
			})
			deadline := time.Now().Add(10 * time.Second)
			for {
				hDown := strings.Contains(p.haproxyCmd("show stat"), ",dead,") && serverStatus(p.haproxyCmd("show stat"), "dead") == "DOWN"
				s := p.tether.Snapshot().Backend("app").Server("dead")
				if hDown && s.StatusText() == "DOWN" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("dead server not down in both: haproxy %q, tether %q", serverStatus(p.haproxyCmd("show stat"), "dead"), s.StatusText())
				}
				time.Sleep(20 * time.Millisecond)
			}
			p.run([]step{
				{name: "cookie for the down server", cookie: "SRV=dd", anyServer: true},
				{name: "cookie for a live server", cookie: "SRV=w2"},
			})
		})
	}
}

// serverStatus returns a server's status column from show stat output.
func serverStatus(stat, server string) string {
	lines := strings.Split(stat, "\n")
	cols := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	idx := -1
	for i, c := range cols {
		if c == "status" {
			idx = i
		}
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) > idx && idx >= 0 && f[1] == server {
			return f[idx]
		}
	}
	return ""
}
