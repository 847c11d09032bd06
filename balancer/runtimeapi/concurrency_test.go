package runtimeapi

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tether/balancer"
)

// TestConcurrentClientsWithTraffic runs many Runtime API clients changing
// and reading the balancer while HTTP traffic flows through it. Run it
// with -race.
func TestConcurrentClientsWithTraffic(t *testing.T) {
	var origins []string
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("o%d", i)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		origins = append(origins, strings.TrimPrefix(srv.URL, "http://"))
	}
	cfg := fmt.Sprintf(`
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
backend be
    balance roundrobin
    cookie SRV insert indirect nocache dynamic
    dynamic-cookie-key secret
    server s0 %s
    server s1 %s
    server s2 %s
frontend fe
    bind 127.0.0.1:%d
    default_backend be
`, origins[0], origins[1], origins[2], freePort(t))
	b, _ := newTestBalancer(t, cfg)
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	d := NewDispatcher(b, DispatcherOptions{})
	path := filepath.Join(t.TempDir(), "admin.sock")
	l, err := Listen(context.Background(), balancer.StatsSocket{Address: path, Level: balancer.LevelAdmin}, d, balancer.Global{StatsMaxConn: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	client, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var requests, commands atomic.Int64
	errs := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := front.Client().Get(front.URL + "/")
				if err != nil {
					errs <- fmt.Errorf("request: %w", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("request status %d", resp.StatusCode)
					return
				}
				requests.Add(1)
			}
		}()
	}
	cmds := []string{
		"set weight be/s%d %d", "set server be/s%d state drain;set server be/s%d state ready",
		"show stat", "show servers state be", "get weight be/s%d", "show sticky",
		"disable dynamic-cookie backend be;enable dynamic-cookie backend be",
		"show info", "set dynamic-cookie-key backend be k%d", "show stat typed", "clear counters",
	}
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for ctx.Err() == nil {
				tmpl := cmds[rng.IntN(len(cmds))]
				n := rng.IntN(3)
				var line string
				switch strings.Count(tmpl, "%d") {
				case 0:
					line = tmpl
				case 1:
					line = fmt.Sprintf(tmpl, n)
				default:
					line = fmt.Sprintf(tmpl, n, 1+rng.IntN(200))
					if strings.Contains(tmpl, "state") {
						line = fmt.Sprintf(tmpl, n, n)
					}
				}
				reply, err := client.Exec(context.Background(), "set severity-output number;"+line)
				if err != nil {
					errs <- fmt.Errorf("exec %q: %w", line, err)
					return
				}
				if _, failed := SplitSeverity(reply); failed || !strings.HasSuffix(reply, "\n") {
					errs <- fmt.Errorf("%q: reply %q", line, reply)
					return
				}
				commands.Add(1)
			}
		}(uint64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if requests.Load() == 0 || commands.Load() == 0 {
		t.Fatalf("requests %d, commands %d: nothing happened", requests.Load(), commands.Load())
	}
	t.Logf("%d requests and %d commands in 2s", requests.Load(), commands.Load())
	// The state is still coherent and answers like any other time.
	got := adminExec(d, "set weight be/s0 42;get weight be/s0")
	if got != "\n42 (initial 1)\n\n" {
		t.Fatalf("after the storm: %q", got)
	}
}
