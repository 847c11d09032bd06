package compat

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// fetchFrom makes one request from the given loopback source address and
// returns the origin that answered.
func fetchFrom(t *testing.T, base, src string) string {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(base + "/")
	if err != nil {
		t.Fatalf("GET %s from %s: %v", base, src, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Origin")
}

func TestBalanceSourceMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 4)
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
			"backend app\n    balance source\n" +
			fmt.Sprintf("    server web1 %s weight 1\n    server web2 %s weight 2\n    server web3 %s weight 1\n    server web4 %s weight 3\n", o.addrs[0], o.addrs[1], o.addrs[2], o.addrs[3])
	})
	check := func(stage string) {
		t.Helper()
		for i := 1; i <= 40; i++ {
			src := fmt.Sprintf("127.0.%d.%d", i%3, i*5%250+1)
			h, g := fetchFrom(t, p.haproxyURL, src), fetchFrom(t, p.tetherURL, src)
			if h != g {
				t.Errorf("%s: client %s: haproxy chose %s, tether %s", stage, src, h, g)
			}
		}
	}
	check("all servers")
	p.haproxyCmd("set server app/web4 state maint")
	if err := applyCommand(p.tether, "set server app/web4 state maint"); err != nil {
		t.Fatal(err)
	}
	check("web4 in maintenance")
}
