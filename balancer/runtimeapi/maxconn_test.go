package runtimeapi

import (
	"net"
	"strings"
	"testing"

	"tether/balancer"
	"tether/balancer/connlimit"
)

// TestMaxConnReported: show info reports the descriptor plan and the open
// client connections, and show stat a frontend's slim (its own maxconn,
// or the global one), as HAProxy does.
func TestMaxConnReported(t *testing.T) {
	_, cfg := newTestBalancer(t, testCfg)
	cfg.Frontends = append(cfg.Frontends, balancer.Frontend{Name: "capped", Binds: balancer.BindAddrs("127.0.0.1:18090"), DefaultBackend: "be", MaxConn: 40})
	b, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := connlimit.PlanMaxConn(0, 256, connlimit.Sockets{Listeners: 3, Pollers: 1})
	if err != nil {
		t.Fatal(err)
	}
	conns := connlimit.NewLimit(plan.MaxConn)
	d := NewDispatcher(b, DispatcherOptions{MaxConn: plan, Conns: conns})

	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := connlimit.NewListener(inner, nil, conns)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	info := adminExec(d, "show info")
	for _, want := range []string{"Ulimit-n: 256\n", "Maxsock: 256\n", "Maxconn: 115\n", "Hard_maxconn: 115\n", "CurrConns: 1\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("show info lacks %q:\n%s", want, info)
		}
	}
	stat := adminExec(d, "show stat")
	for _, want := range []string{"fe,FRONTEND,,,0,0,115,", "capped,FRONTEND,,,0,0,40,"} {
		if !strings.Contains(stat, want) {
			t.Errorf("show stat lacks %q:\n%s", want, stat)
		}
	}
}
