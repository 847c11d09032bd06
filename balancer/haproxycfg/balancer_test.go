package haproxycfg

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tether/balancer"
)

// TestBalancerAcceptsParsedConfigs hands every valid testdata Config to the
// real balancer, which must accept it.
func TestBalancerAcceptsParsedConfigs(t *testing.T) {
	for _, tf := range loadTestFiles(t) {
		if tf.kind != "valid" {
			continue
		}
		t.Run(tf.name, func(t *testing.T) {
			cfg, _, err := parse(tf.name, tf.src, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			b, err := balancer.New(cfg, balancer.Options{})
			if err != nil {
				t.Fatalf("balancer.New rejects the parsed Config: %v", err)
			}
			for _, fe := range cfg.Frontends {
				if _, err := b.Handler(fe.Name); err != nil {
					t.Errorf("Handler(%q): %v", fe.Name, err)
				}
			}
		})
	}
}

// TestParsedConfigDrivesBalancer runs snippet 1 of the dynamic cookie page
// (addresses filled in with loopback origins) through the real balancer:
// the inserted cookie names the server, and a request carrying it sticks.
func TestParsedConfigDrivesBalancer(t *testing.T) {
	var origins []*httptest.Server
	for _, name := range []string{"web1", "web2"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		origins = append(origins, srv)
	}
	src := fmt.Sprintf(`defaults
    mode http
frontend fe
    bind 127.0.0.1:8080
    default_backend servers
backend servers
    cookie SERVER_USED insert indirect nocache
    server web1 %s cookie web1
    server web2 %s cookie web2
`, strings.TrimPrefix(origins[0].URL, "http://"), strings.TrimPrefix(origins[1].URL, "http://"))
	cfg, _, err := parse("snippet.cfg", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(cfg, balancer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h, err := b.Handler("fe")
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)

	get := func(cookie string) (body, setCookie string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, front.URL+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		bb, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(bb), resp.Header.Get("Set-Cookie")
	}
	body, set := get("")
	if want := "SERVER_USED=" + body + "; path=/"; set != want {
		t.Fatalf("first response from %q set cookie %q, want %q", body, set, want)
	}
	for i := 0; i < 4; i++ {
		if body, set := get("SERVER_USED=web2"); body != "web2" || set != "" {
			t.Fatalf("request with cookie web2 reached %q (Set-Cookie %q)", body, set)
		}
	}
}
