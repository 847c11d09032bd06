package balancer

import (
	"net"
	"slices"
	"testing"
	"time"
)

// closeRecorder is a net.Conn that only records being closed.
type closeRecorder struct {
	net.Conn
	closed bool
}

func (c *closeRecorder) Close() error                      { c.closed = true; return nil }
func (c *closeRecorder) SetReadDeadline(t time.Time) error { return nil }

// TestPoolPurgeFollowsHAProxy checks the idle connections a burst leaves:
// kept while the estimate of the server's need still covers them, then
// half the excess closed each period, least recently used first, and
// connections in use never touched.
func TestPoolPurgeFollowsHAProxy(t *testing.T) {
	p := newConnPool(poolSettings{addr: "127.0.0.1:1", maxIdle: -1, purgeDelay: DefaultPoolPurgeDelay})
	conns, socks := activeConns(p, 8)
	// The burst ends: every connection goes idle, conns[0] first.
	for _, c := range conns {
		p.put(c)
	}
	// One request in flight through the purges below.
	p.mu.Lock()
	busy := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	p.addActive(busy)
	p.mu.Unlock()

	// The need estimated from the burst, 8, decays to 4, 2, 1 (the one in
	// use): the idle count follows HAProxy's srv_cleanup_idle_conns.
	for i, want := range []int{7, 7, 5, 3, 1, 0, 0} {
		p.purge()
		p.mu.Lock()
		idle := len(p.idle)
		p.mu.Unlock()
		if idle != want {
			t.Fatalf("after purge %d: %d idle, want %d", i+1, idle, want)
		}
		if i == 2 {
			// The first two closed are the two idle the longest.
			if got := closedOnes(socks); !slices.Equal(got, []int{0, 1}) {
				t.Errorf("closed connections %v, want the least recently used [0 1]", got)
			}
		}
	}
	if got := closedOnes(socks); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6}) {
		t.Errorf("closed connections %v, want every idle one", got)
	}
	if busy != conns[7] || socks[7].closed {
		t.Error("the connection in use was closed")
	}
}

// activeConns adds n connections in use to p, with their sockets.
func activeConns(p *connPool, n int) ([]*upConn, []*closeRecorder) {
	var conns []*upConn
	var socks []*closeRecorder
	for range n {
		rec := &closeRecorder{}
		c := &upConn{pool: p, nc: rec}
		c.takeBuffers()
		socks, conns = append(socks, rec), append(conns, c)
		p.mu.Lock()
		p.addActive(c)
		p.mu.Unlock()
	}
	return conns, socks
}

// TestPoolLimits checks pool-max-conn and pool-purge-delay 0: a
// connection coming back to a full pool is closed, and one that keeps
// none keeps none.
func TestPoolLimits(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxIdle    int
		purgeDelay time.Duration
		wantIdle   int
	}{
		{"no limit", -1, DefaultPoolPurgeDelay, 4},
		{"pool-max-conn 2", 2, DefaultPoolPurgeDelay, 2},
		{"pool-max-conn 0", 0, DefaultPoolPurgeDelay, 0},
		{"pool-purge-delay 0", -1, 0, 0},
	} {
		p := newConnPool(poolSettings{addr: "127.0.0.1:1", maxIdle: tc.maxIdle, purgeDelay: tc.purgeDelay})
		conns, socks := activeConns(p, 4)
		for _, c := range conns {
			p.put(c)
		}
		if len(p.idle) != tc.wantIdle || len(closedOnes(socks)) != 4-tc.wantIdle {
			t.Errorf("%s: %d idle and %v closed after 4 returned, want %d idle and the others closed",
				tc.name, len(p.idle), closedOnes(socks), tc.wantIdle)
		}
		if p.activeCount() != 0 {
			t.Errorf("%s: %d still counted in use", tc.name, p.activeCount())
		}
	}
}

// TestPurgeFollowsEachServersDelay checks that a pool is purged once its
// own pool-purge-delay has passed, and that the purger's next wake-up is
// the earliest pool's.
func TestPurgeFollowsEachServersDelay(t *testing.T) {
	start := time.Now()
	p := newConnPool(poolSettings{addr: "127.0.0.1:1", maxIdle: -1, purgeDelay: 200 * time.Millisecond})
	p.nextPurge = start.Add(200 * time.Millisecond)
	conns, _ := activeConns(p, 4)
	for _, c := range conns {
		p.put(c)
	}
	// Forget the need those 4 showed: a purge then closes half of them.
	p.estNeed, p.maxUsed = 0, 0
	if next := p.purgeIfDue(start.Add(199 * time.Millisecond)); !next.Equal(start.Add(200*time.Millisecond)) || len(p.idle) != 4 {
		t.Fatalf("before the delay: next purge at +%v with %d idle, want +200ms and 4", next.Sub(start), len(p.idle))
	}
	if next := p.purgeIfDue(start.Add(200 * time.Millisecond)); !next.Equal(start.Add(400*time.Millisecond)) || len(p.idle) != 2 {
		t.Fatalf("at the delay: next purge at +%v with %d idle, want +400ms and 2 (half closed)", next.Sub(start), len(p.idle))
	}
	none := newConnPool(poolSettings{addr: "127.0.0.1:2", maxIdle: -1, purgeDelay: 0})
	if next := none.purgeIfDue(start); next.Sub(start) != maxPurgeWait {
		t.Errorf("a pool that keeps nothing asks to be purged at +%v, want no sooner than the purger's longest wait", next.Sub(start))
	}
}

// closedOnes returns the indexes of the closed connections.
func closedOnes(socks []*closeRecorder) []int {
	var closed []int
	for i, s := range socks {
		if s.closed {
			closed = append(closed, i)
		}
	}
	return closed
}

// TestIdleConnectionsHoldNoBuffers checks that a connection back in the
// pool holds no read or write buffer, that one taken again has both, and
// that a connection with a byte left unread or unsent is closed instead of
// kept.
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	p := newConnPool(poolSettings{addr: "127.0.0.1:1", maxIdle: -1, purgeDelay: DefaultPoolPurgeDelay})
	conns, socks := activeConns(p, 2)
	for _, c := range conns {
		p.put(c)
	}
	for i, c := range p.idle {
		if c.br != nil || c.bw != nil {
			t.Errorf("idle connection %d holds its buffers", i)
		}
	}
	c, err := p.get("")
	if err != nil || c != conns[1] {
		t.Fatalf("get = %p, %v; want the idle connection %p", c, err, conns[1])
	}
	if c.br == nil || c.bw == nil || c.br.Size() != 16<<10 || c.bw.Size() != 8<<10 {
		t.Fatal("a connection taken from the pool has no buffers, or buffers of the wrong size")
	}
	c.bw.WriteString("unsent")
	p.put(c)
	if !socks[1].closed || len(p.idle) != 1 {
		t.Errorf("a connection with unsent bytes went back to the pool (closed %v, %d idle)", socks[1].closed, len(p.idle))
	}
	if c.br != nil || c.bw != nil {
		t.Error("a closed connection kept its buffers")
	}
}
