package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"time"

	"tether/balancer"
)

// The demo: a frontend on 127.0.0.1:8080 and a dynamic-cookie backend over
// three origins that Tether itself serves on 127.0.0.1:18081-18083.
const (
	demoFrontend  = "demo"
	demoBackend   = "servers"
	demoListen    = "127.0.0.1:8080"
	demoFirstPort = 18081
	demoOrigins   = 3
)

// demoState is the configuration seeded into an empty database.
func demoState() balancer.State {
	var key [12]byte
	rand.Read(key[:])
	be := balancer.Backend{
		Name:               demoBackend,
		Balance:            balancer.RoundRobin,
		Cookie:             &balancer.CookieConfig{Name: "SERVER_USED", Mode: balancer.CookieInsert, Indirect: true, NoCache: true, Dynamic: true},
		DynamicCookieKey:   balancer.Secret(hex.EncodeToString(key[:])),
		Retries:            3,
		Redispatch:         true,
		RedispatchInterval: -1,
		TimeoutConnect:     5 * time.Second,
		TimeoutServer:      30 * time.Second,
		HTTPCheck:          &balancer.HTTPCheck{Method: "GET", URI: "/health"},
	}
	for i := range demoOrigins {
		be.Servers = append(be.Servers, balancer.Server{
			Name: fmt.Sprintf("web%d", i+1), Address: "127.0.0.1", Port: demoFirstPort + i, PortSet: true,
			Weight: 1, Check: true, Inter: 2 * time.Second, Rise: 2, Fall: 3,
		})
	}
	return balancer.State{
		Config: balancer.Config{
			Global:    balancer.Global{StatsTimeout: 10 * time.Second, StatsMaxConn: 10},
			Frontends: []balancer.Frontend{{Name: demoFrontend, Binds: balancer.BindAddrs(demoListen), DefaultBackend: demoBackend, ForwardFor: true, TimeoutClient: 30 * time.Second}},
			Backends:  []balancer.Backend{be},
		},
		Servers: map[string]balancer.ServerRuntime{},
	}
}

// isDemo reports whether cfg is the seeded demo, whose origins Tether serves.
func isDemo(cfg balancer.Config) bool {
	for _, fe := range cfg.Frontends {
		if fe.Name == demoFrontend && fe.DefaultBackend == demoBackend {
			return true
		}
	}
	return false
}

// startDemoOrigins serves the demo backend's servers that point at the
// demo ports on loopback.
func startDemoOrigins(cfg balancer.Config) ([]*http.Server, error) {
	var out []*http.Server
	var errs []error
	for _, be := range cfg.Backends {
		if be.Name != demoBackend {
			continue
		}
		for _, s := range be.Servers {
			if s.Address != "127.0.0.1" || s.Port < demoFirstPort || s.Port >= demoFirstPort+10 {
				continue
			}
			addr := fmt.Sprintf("127.0.0.1:%d", s.Port)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				errs = append(errs, fmt.Errorf("demo origin %s: %w", s.Name, err))
				continue
			}
			srv := &http.Server{Handler: demoOrigin(s.Name), ReadHeaderTimeout: 10 * time.Second}
			go srv.Serve(ln)
			out = append(out, srv)
		}
	}
	return out, errors.Join(errs...)
}

func demoOrigin(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			io.WriteString(w, "ok\n")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>Served by %s</h1><p>Reload: the persistence cookie keeps you here.</p>\n", name, name)
	})
}

// demoTraffic sends requests from a rotating set of simulated clients, each
// with its own cookie jar, so the console shows sticky sessions forming.
func demoTraffic(ctx context.Context, cfg balancer.Config) error {
	var url string
	for _, fe := range cfg.Frontends {
		if len(fe.Binds) > 0 {
			url = "http://" + bindAddr(fe.Binds[0].Addr) + "/"
			if url[7] == ':' {
				url = "http://127.0.0.1" + url[7:]
			}
			break
		}
	}
	if url == "" {
		return errors.New("demo traffic: no frontend to send to")
	}
	const clients = 40
	jars := make([]*http.Client, clients)
	for i := range jars {
		jar, _ := cookiejar.New(nil)
		jars[i] = &http.Client{Jar: jar, Timeout: 5 * time.Second}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		c := jars[i%clients]
		if i%200 == 199 {
			// Now and then a client leaves and a new one arrives.
			jar, _ := cookiejar.New(nil)
			c.Jar = jar
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
