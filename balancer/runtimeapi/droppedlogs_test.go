package runtimeapi

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"tether/balancer"
	"tether/balancer/accesslog"
	"tether/balancer/haproxycfg"
)

// TestShowInfoCountsDroppedLogs fills an access log's queue, which no
// writer drains, and finds the lines that did not fit in show info's
// DroppedLogs, as HAProxy reports its own.
func TestShowInfoCountsDroppedLogs(t *testing.T) {
	cfg, _, err := haproxycfg.Parse("test.cfg", []byte(`global
    log stdout format raw local0
defaults
    mode http
    log global
    option httplog
frontend fe
    bind 127.0.0.1:8080
    http-request return status 200 content-type text/plain string ok
`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(cfg, balancer.Options{AccessLogs: map[string]*accesslog.Logger{accesslog.Stdout: accesslog.New(io.Discard, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	d := NewDispatcher(b, DispatcherOptions{})
	if out := adminExec(d, "show info"); !strings.Contains(out, "\nDroppedLogs: 2\n") {
		t.Errorf("show info does not report the 2 dropped lines:\n%s", out)
	}
	if out := adminExec(d, "show info typed"); !strings.Contains(out, "58.DroppedLogs.1:MGP:u32:2\n") {
		t.Errorf("show info typed does not report the 2 dropped lines:\n%s", out)
	}
}
