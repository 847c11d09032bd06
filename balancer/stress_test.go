package balancer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTrafficDuringChanges runs client traffic while changes of every kind
// are applied, under the race detector: every request must be answered by
// an origin or with a clean 503, and the sticky counters must add up.
func TestTrafficDuringChanges(t *testing.T) {
	origins := startOrigins(t, 4)
	h := newHarness(t, dynBackend(origins), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	var requests, bad atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cookie := ""
			for i := 0; ctx.Err() == nil && i < 3000; i++ {
				req, _ := http.NewRequest("GET", h.url+"/", nil)
				if cookie != "" && c%2 == 0 {
					req.Header.Set("Cookie", cookie)
				}
				resp, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				requests.Add(1)
				if resp.StatusCode != 200 && resp.StatusCode != 503 {
					bad.Add(1)
				}
				for _, ck := range resp.Cookies() {
					if ck.Name == "SERVER_USED" {
						cookie = "SERVER_USED=" + ck.Value
					}
				}
			}
		}()
	}
	changes := []Change{
		SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Drain},
		SetWeight{ServerRef: ServerRef{"servers", "s1"}, Weight: 10},
		SetDynamicCookies{Backend: "servers", Enabled: false},
		SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Maint},
		SetDynamicCookies{Backend: "servers", Enabled: true},
		SetDynamicCookieKey{Backend: "servers", Key: "rotated"},
		AddServer{Backend: "servers", Server: Server{Name: "extra", Address: "127.0.0.1", Port: int(origins[3].addr.Port()), PortSet: true}},
		SetAdminState{ServerRef: ServerRef{"servers", "extra"}, State: Ready},
		SetAdminState{ServerRef: ServerRef{"servers", "s2"}, State: Ready},
		SetAdminState{ServerRef: ServerRef{"servers", "extra"}, State: Maint},
		DelServer{ServerRef{"servers", "extra"}},
		SetWeight{ServerRef: ServerRef{"servers", "s1"}, Weight: 1},
	}
	applied := 0
	for i := 0; ctx.Err() == nil; i++ {
		c := changes[i%len(changes)]
		if err := h.b.Apply(c, Origin{Channel: "test"}); err == nil {
			applied++
		} else if _, isDel := c.(DelServer); !isDel {
			// Deletion may find connections in flight; anything else must apply.
			if _, isAdd := c.(AddServer); !isAdd {
				t.Errorf("Apply(%T): %v", c, err)
			}
		}
		h.b.Snapshot()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d bad answers out of %d", bad.Load(), requests.Load())
	}
	st := h.b.Snapshot().Backend("servers").Stats
	if st.TotalRequests != requests.Load() {
		t.Fatalf("backend counted %d requests, clients made %d", st.TotalRequests, requests.Load())
	}
	t.Log(fmt.Sprintf("%d requests, %d changes applied, sticky %+v", requests.Load(), applied, st.Sticky))
}
