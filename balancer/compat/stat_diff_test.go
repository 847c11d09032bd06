package compat

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"tether/balancer"
	"tether/balancer/runtimeapi"
)

// statTable indexes show stat CSV output by "proxy/object" and column.
func statTable(out string) map[string]map[string]string {
	lines := strings.Split(out, "\n")
	if len(lines) == 0 {
		return nil
	}
	cols := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	rows := make(map[string]map[string]string)
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) < 2 {
			continue
		}
		row := make(map[string]string)
		for i, c := range cols {
			if i < len(f) {
				row[c] = f[i]
			}
		}
		rows[f[0]+"/"+f[1]] = row
	}
	return rows
}

// tetherStat returns Tether's show stat output.
func (p *pair) tetherStat() string {
	d := runtimeapi.NewDispatcher(p.tether, runtimeapi.DispatcherOptions{})
	return d.Execute(context.Background(), "show stat", balancer.LevelAdmin, balancer.Origin{Channel: "test"})
}

// statDiff lists the columns of the named rows that differ between
// HAProxy's and Tether's show stat.
func statDiff(haproxy, tether string, rows, cols []string) []string {
	h, g := statTable(haproxy), statTable(tether)
	var diffs []string
	for _, r := range rows {
		for _, c := range cols {
			if hv, gv := h[r][c], g[r][c]; hv != gv {
				diffs = append(diffs, fmt.Sprintf("%s %s: haproxy %q tether %q", r, c, hv, gv))
			}
		}
	}
	return diffs
}

// compareStat waits until the named columns of the named rows agree in
// both proxies' show stat (counters settle when a stream ends, just after
// the client got its answer), and fails with the differences otherwise.
func (p *pair) compareStat(rows, cols []string) {
	p.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		diffs := statDiff(p.haproxyCmd("show stat"), p.tetherStat(), rows, cols)
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Errorf("show stat differs:\n%s", strings.Join(diffs, "\n"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", privateLoopback()+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// get sends one request to both proxies and fails unless both answer the
// same status.
func (p *pair) get(path, cookie string) {
	p.t.Helper()
	h := fetch(p.t, p.haproxyURL, http.MethodGet, path, cookie)
	g := fetch(p.t, p.tetherURL, http.MethodGet, path, cookie)
	if h.Status != g.Status {
		p.t.Errorf("GET %s (cookie %q): haproxy %d, tether %d", path, cookie, h.Status, g.Status)
	}
}

// TestLBTotCountsOnlyBalancedRequestsMatchesHAProxy checks lbtot after
// requests that the algorithm placed, requests routed by a valid cookie
// and requests with an invalid cookie.
func TestLBTotCountsOnlyBalancedRequestsMatchesHAProxy(t *testing.T) {
	o := startOrigins(t, 2)
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
			"backend app\n    cookie SRV insert indirect nocache\n" +
			fmt.Sprintf("    server web1 %s cookie w1\n    server web2 %s cookie w2\n", o.addrs[0], o.addrs[1])
	})
	for _, c := range []string{"", "", "SRV=w1", "SRV=w2", "SRV=w2", "SRV=bad", "other=1", "SRV=w1"} {
		p.get("/", c)
	}
	p.compareStat([]string{"app/web1", "app/web2", "app/BACKEND"}, []string{"lbtot", "stot", "req_tot", "hrsp_2xx"})
}

// resettingOrigin accepts connections, reads a request head and resets
// the connection without answering.
func resettingOrigin(t *testing.T) string {
	t.Helper()
	return tcpOrigin(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		c.Read(buf)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
}

// cannedOrigin answers every connection's first request with answer,
// then closes the connection.
func cannedOrigin(t *testing.T, answer string) string {
	t.Helper()
	return tcpOrigin(t, func(c net.Conn) {
		defer c.Close()
		buf := make([]byte, 4096)
		c.Read(buf)
		c.Write([]byte(answer))
	})
}

// slowOrigin answers after a delay longer than the tests' timeout server.
func slowOrigin(t *testing.T, delay time.Duration) string {
	t.Helper()
	stop := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-stop:
		}
		w.Write([]byte("late"))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { close(stop); srv.Close() })
	return ln.Addr().String()
}

// errorColumns are the request, response and error counters compared
// after failed exchanges.
var errorColumns = []string{"stot", "req_tot", "hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other",
	"ereq", "econ", "eresp", "wretr", "wredis", "cli_abrt", "srv_abrt", "lbtot"}

// TestErrorCountersMatchHAProxy compares the frontend's, the backend's and
// the server's counters after a server's own 500, a server that resets, a
// connection refused after retries and a server timeout.
func TestErrorCountersMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	cases := []struct {
		name    string
		addr    string
		options string
		path    string
		// onceEresp marks a failure HAProxy 2.6 counts twice in eresp
		// (once when the read fails, once when the stream ends); Tether
		// counts each failed response once.
		onceEresp bool
	}{
		{"server 500", o.addrs[0], "", "/?status=500", false},
		{"server resets", resettingOrigin(t), "", "/", true},
		{"connection refused with retries", deadAddr(t), "    retries 3\n    timeout connect 100ms\n", "/", false},
		{"server timeout", slowOrigin(t, 2*time.Second), "    timeout server 200ms\n", "/", false},
		{"invalid chunk size", cannedOrigin(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"), "", "/", false},
		{"chunked body cut off", cannedOrigin(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"), "", "/", false},
		{"Content-Length body cut short", cannedOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"), "", "/", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := startPair(t, func(bind, socket string) string {
				return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
					"backend app\n" + c.options + "    server s1 " + c.addr + "\n"
			})
			p.get(c.path, "")
			p.get(c.path, "")
			cols := errorColumns
			if c.onceEresp {
				cols = slices.DeleteFunc(slices.Clone(cols), func(c string) bool { return c == "eresp" })
				g := statTable(p.tetherStat())
				if g["app/BACKEND"]["eresp"] != "2" || g["app/s1"]["eresp"] != "2" {
					t.Errorf("eresp backend %s server %s, want 2 for two failed responses", g["app/BACKEND"]["eresp"], g["app/s1"]["eresp"])
				}
			}
			p.compareStat([]string{"fe/FRONTEND", "app/BACKEND", "app/s1"}, cols)
		})
	}
}

// TestRedispatchCountersMatchHAProxy compares wretr and wredis with
// retries 3 and option redispatch when a server refuses connections: a
// failed attempt followed by another server counts as a redispatch, one
// followed by the same server as a retry, never both.
func TestRedispatchCountersMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	dead := deadAddr(t)
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
			"backend app\n    cookie SRV insert indirect nocache\n    retries 3\n    option redispatch\n    timeout connect 100ms\n" +
			"    server dead " + dead + " cookie dd\n    server web1 " + o.addrs[0] + " cookie w1\n"
	})
	for _, c := range []string{"", "", "SRV=dd", "", "SRV=w1"} {
		p.get("/", c)
	}
	p.compareStat([]string{"fe/FRONTEND", "app/BACKEND", "app/dead", "app/web1"}, errorColumns)
}

// TestNoServerCountersMatchHAProxy compares the counters of a 503 from a
// backend with no usable server: one without servers, one whose only
// server is in maintenance.
func TestNoServerCountersMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	for _, c := range []struct{ name, servers string }{
		{"no servers", ""},
		{"server in maintenance", "    server s1 " + o.addrs[0] + " disabled\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startPair(t, func(bind, socket string) string {
				return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
					"backend app\n" + c.servers
			})
			p.get("/", "")
			p.get("/", "")
			rows := []string{"fe/FRONTEND", "app/BACKEND"}
			if c.servers != "" {
				rows = append(rows, "app/s1")
			}
			p.compareStat(rows, errorColumns)
		})
	}
}

// TestQueueTimeoutCountersMatchHAProxy compares the counters of a request
// that waited for a server slot (maxconn) longer than timeout queue, in
// the backend's queue and, sent by its cookie, in the server's.
func TestQueueTimeoutCountersMatchHAProxy(t *testing.T) {
	addr := slowOrigin(t, 800*time.Millisecond)
	for _, cookie := range []string{"", "SRV=s1"} {
		t.Run("cookie "+cookie, func(t *testing.T) { queueTimeout(t, addr, cookie) })
	}
}

func queueTimeout(t *testing.T, addr, cookie string) {
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
			"backend app\n    cookie SRV insert indirect nocache\n    timeout queue 200ms\n    server s1 " + addr + " maxconn 1 cookie s1\n"
	})
	for _, base := range []string{p.haproxyURL, p.tetherURL} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
			req.Close = true
			if resp, err := http.DefaultTransport.RoundTrip(req); err == nil {
				resp.Body.Close()
			}
		}()
		// The first request holds the slot: wait until it is in service.
		deadline := time.Now().Add(3 * time.Second)
		for {
			stat := p.tetherStat()
			if base == p.haproxyURL {
				stat = p.haproxyCmd("show stat")
			}
			if statTable(stat)["app/s1"]["scur"] == "1" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: first request never reached the server", base)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if got := fetch(t, base, http.MethodGet, "/", cookie); got.Status != http.StatusServiceUnavailable {
			t.Errorf("%s: queued request got %d, want 503", base, got.Status)
		}
		<-done
	}
	p.compareStat([]string{"fe/FRONTEND", "app/BACKEND", "app/s1"}, errorColumns)
}

// sendUntilClosed sends raw bytes on a new connection to addr, optionally
// half-closes it, and returns what came back before the proxy closed it.
func sendUntilClosed(t *testing.T, addr, raw string, halfClose bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if raw != "" {
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	var out strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// frontendColumns are the frontend's session, request and error counters.
var frontendColumns = []string{"stot", "conn_tot", "req_tot", "ereq", "hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"}

// TestRefusedRequestCountersMatchHAProxy compares the frontend's counters
// after requests the frontend answers itself: malformed (400), too large
// (400), an authority that differs from Host (400), cut short by timeout
// http-request (408), and a connection closed without a byte.
func TestRefusedRequestCountersMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	cases := []struct {
		name      string
		raw       string
		halfClose bool
		status    string
	}{
		{"malformed header", "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", false, " 400 "},
		{"header block too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 17000) + "\r\n\r\n", false, " 400 "},
		{"authority differs from Host", "GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", false, " 400 "},
		{"timeout http-request", "GET / HTTP/1.1\r\nHost: x\r\n", false, " 408 "},
		{"closed without a byte", "", true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := startPair(t, func(bind, socket string) string {
				return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    timeout http-request 300ms\n    default_backend app\n\n" +
					"backend app\n    server s1 " + o.addrs[0] + "\n"
			})
			p.get("/", "")
			for _, u := range []string{p.haproxyURL, p.tetherURL} {
				got := sendUntilClosed(t, strings.TrimPrefix(u, "http://"), c.raw, c.halfClose)
				if status, _, _ := strings.Cut(got, "\r\n"); !strings.Contains(status, c.status) {
					t.Errorf("%s answered %q, want status %q", u, status, c.status)
				}
			}
			p.compareStat([]string{"fe/FRONTEND", "app/BACKEND"}, frontendColumns)
		})
	}
}

// infoValues returns show info's numeric fields by name.
func infoValues(out string) map[string]int64 {
	v := make(map[string]int64)
	for _, l := range strings.Split(out, "\n") {
		name, val, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64); err == nil {
			v[name] = n
		}
	}
	return v
}

// tetherInfo returns Tether's show info output.
func (p *pair) tetherInfo() string {
	d := runtimeapi.NewDispatcher(p.tether, runtimeapi.DispatcherOptions{})
	return d.Execute(context.Background(), "show info", balancer.LevelAdmin, balancer.Origin{Channel: "test"})
}

// within reports whether got is within a third of want, and both are
// non-zero or both zero.
func within(got, want int64) bool {
	if got == 0 || want == 0 {
		return got == want
	}
	d := got - want
	if d < 0 {
		d = -d
	}
	return 3*d <= want
}

// TestTrafficCountersMatchHAProxy compares, after the same traffic (a
// request on its own connection, two on a kept-alive one, three idle
// connections left open): show info's CurrConns, CumConns and CumReq; the
// frontend's scur, stot and conn_tot; bin and bout of the frontend,
// backend and server; and chkdown of a backend whose only server fails
// its checks.
func TestTrafficCountersMatchHAProxy(t *testing.T) {
	o := startOrigins(t, 1)
	dead := deadAddr(t)
	// HAProxy counts its health checks in CumConns: the server whose checks
	// fail runs in a pair of its own.
	p := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend app\n\n" +
			"backend app\n    server s1 " + o.addrs[0] + "\n"
	})
	checked := startPair(t, func(bind, socket string) string {
		return fmt.Sprintf(globalAndDefaults, socket) + "frontend fe\n    bind " + bind + "\n    default_backend checked\n\n" +
			"backend checked\n    server d " + dead + " check inter 100ms fall 1 rise 1\n"
	})
	before := map[string]map[string]int64{"haproxy": infoValues(p.haproxyCmd("show info")), "tether": infoValues(p.tetherInfo())}
	callsBefore := p.haproxyCalls
	for _, u := range []string{p.haproxyURL, p.tetherURL} {
		fetch(t, u, http.MethodGet, "/", "")
		addr := strings.TrimPrefix(u, "http://")
		ka, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ka.Close() })
		br := bufio.NewReader(ka)
		for range 2 {
			io.WriteString(ka, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: keep-alive request: %v", u, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		for range 3 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
		}
	}
	p.compareStat([]string{"fe/FRONTEND"}, []string{"scur", "stot", "conn_tot", "req_tot"})

	// HAProxy counts its own CLI connection and command in CumConns and
	// CumReq (not in CurrConns); Tether's Runtime API is no proxy traffic.
	deadline := time.Now().Add(3 * time.Second)
	for {
		h, g := infoValues(p.haproxyCmd("show info")), infoValues(p.tetherInfo())
		var diffs []string
		for _, f := range []string{"CurrConns", "CumConns", "CumReq"} {
			hd, gd := h[f]-before["haproxy"][f], g[f]-before["tether"][f]
			if f != "CurrConns" {
				hd -= int64(p.haproxyCalls - callsBefore)
			}
			// HAProxy counts a CLI session when it ends, which may be
			// after it answered: the "before" reading may miss its own.
			if f != "CurrConns" && hd == gd+1 {
				hd = gd
			}
			if hd != gd {
				diffs = append(diffs, fmt.Sprintf("%s grew by %d in haproxy, %d in tether", f, hd, gd))
			}
		}
		if len(diffs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("show info differs:\n%s", strings.Join(diffs, "\n"))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Bytes: HAProxy counts its internal representation of the headers,
	// Tether the bytes on the wire; they agree within a third.
	h, g := statTable(p.haproxyCmd("show stat")), statTable(p.tetherStat())
	for _, row := range []string{"fe/FRONTEND", "app/BACKEND", "app/s1"} {
		for _, col := range []string{"bin", "bout"} {
			hv, _ := strconv.ParseInt(h[row][col], 10, 64)
			gv, _ := strconv.ParseInt(g[row][col], 10, 64)
			if !within(gv, hv) {
				t.Errorf("%s %s: haproxy %d, tether %d", row, col, hv, gv)
			}
		}
	}

	deadline = time.Now().Add(5 * time.Second)
	for serverStatus(checked.haproxyCmd("show stat"), "d") != "DOWN" || checked.tether.Snapshot().Backend("checked").Server("d").StatusText() != "DOWN" {
		if time.Now().After(deadline) {
			t.Fatal("the failing server did not go down in both")
		}
		time.Sleep(20 * time.Millisecond)
	}
	checked.compareStat([]string{"checked/BACKEND", "checked/d"}, []string{"chkdown", "chkfail", "status"})
}
