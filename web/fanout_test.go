package web

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"tether/balancer"
)

// BenchmarkFanOutUnderTraffic measures, with the real balancer serving a
// steady stream of client requests, the delay from an admin change to the
// last of N consoles seeing it, and the process CPU per change.
func BenchmarkFanOutUnderTraffic(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run("consoles="+strconv.Itoa(n), func(b *testing.B) {
			e := newEnv(b, Options{})
			s, ts, _ := hubOnly(b, e.bal, Options{Batch: 10 * time.Millisecond, Sample: time.Second, ClientBuffer: 64})

			// Client traffic through the frontend for the whole run.
			var served atomic.Int64
			stop := make(chan struct{})
			var traffic sync.WaitGroup
			for range 4 {
				traffic.Add(1)
				go func() {
					defer traffic.Done()
					c := &http.Client{Timeout: 5 * time.Second}
					for {
						select {
						case <-stop:
							return
						default:
						}
						if resp, err := c.Get(e.frontend.URL + "/"); err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							served.Add(1)
						}
					}
				}()
			}
			defer func() { close(stop); traffic.Wait() }()

			var seen atomic.Int64
			var want atomic.Value
			want.Store([]byte("\x00"))
			conns := make([]*websocket.Conn, n)
			for i := range conns {
				conns[i] = dialHub(b, ts, 0)
			}
			waitFor(b, 30*time.Second, "all consoles connected", func() bool { return s.hub.Clients() == n })
			var readers sync.WaitGroup
			for _, c := range conns {
				readers.Add(1)
				go func() {
					defer readers.Done()
					for {
						_, msg, err := c.ReadMessage()
						if err != nil {
							return
						}
						if bytes.Contains(msg, want.Load().([]byte)) {
							seen.Add(1)
						}
					}
				}()
			}
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			served0 := served.Load()
			start0 := time.Now()
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mode := []balancer.AdminMode{balancer.Drain, balancer.Ready}[i%2]
				want.Store([]byte(`"adm":"` + mode.String() + `"`))
				seen.Store(0)
				start := time.Now()
				if err := e.bal.Apply(balancer.SetAdminState{ServerRef: balancer.ServerRef{Backend: "servers", Server: "s1"}, State: mode}, balancer.Origin{Channel: "bench"}); err != nil {
					b.Fatal(err)
				}
				for seen.Load() < int64(n) {
					time.Sleep(100 * time.Microsecond)
					if time.Since(start) > 30*time.Second {
						b.Fatalf("only %d of %d consoles saw change %d", seen.Load(), n, i)
					}
				}
				total += time.Since(start)
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			elapsed := time.Since(start0)
			cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()+ru1.Stime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-last-console")
			b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/change")
			b.ReportMetric(float64(served.Load()-served0)/elapsed.Seconds(), "traffic-req/s")
			b.ReportMetric(float64(s.hub.Dropped()), "dropped")
			for _, c := range conns {
				c.Close()
			}
			readers.Wait()
		})
	}
}
